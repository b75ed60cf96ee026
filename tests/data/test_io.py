"""Event folders (parquet / CSV) round trip, on their own and through the store."""

from __future__ import annotations

import pandas as pd
import pytest

from features.io import export_store, read_event_dir, write_event_dir
from features.schemas import TABLES, columns_of
from tests.data.test_customer_attributes import attribute_rows


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_dir_round_trip_keeps_types(tmp_path, make_batch, fmt):
    batch = make_batch()
    batch["invoices"].loc[0, "amount_cents"] = 99_999_999  # exact, not via float
    batch["customer_attributes"] = attribute_rows()  # nullable text and dates
    write_event_dir(batch, tmp_path, fmt)
    frames = read_event_dir(tmp_path)
    assert frames.warnings == []
    for table in TABLES:
        pd.testing.assert_frame_equal(frames[table], batch[table], obj=table)


def test_missing_tables_are_empty_and_unknown_files_warned(tmp_path, make_batch):
    batch = make_batch()
    write_event_dir({"customers": batch["customers"]}, tmp_path, "csv")
    write_event_dir({"invoices": batch["invoices"]}, tmp_path, "parquet")
    write_event_dir({"invoices": batch["invoices"].iloc[:1]}, tmp_path, "csv")  # parquet wins
    (tmp_path / "notes.txt").write_text("hello")
    frames = read_event_dir(tmp_path)
    assert set(frames) == set(TABLES)
    assert len(frames["invoices"]) == len(batch["invoices"])
    assert frames["payments"].empty and list(frames["payments"].columns) == columns_of("payments")
    assert any("notes.txt" in w for w in frames.warnings)
    assert any("invoices.csv" in w for w in frames.warnings)


def test_csv_with_bad_values_is_left_for_ingest_to_report(tmp_path, store, make_batch):
    batch = make_batch()
    write_event_dir(batch, tmp_path, "csv")
    path = tmp_path / "payments.csv"
    text = path.read_text().splitlines()
    cells = text[2].split(",")
    cells[4] = "12.5"  # amount_cents
    text[2] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    frames = read_event_dir(tmp_path)
    from features.store import IngestRejected

    with pytest.raises(IngestRejected) as info:
        store.ingest(frames)
    assert {(e.table, e.column) for e in info.value.report.errors} == {("payments", "amount_cents")}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_store_export_import_round_trip(tmp_path, store, make_batch, fmt):
    batch = make_batch()
    store.ingest(batch)
    export_store(store, tmp_path / "out", fmt)
    frames = read_event_dir(tmp_path / "out")
    stored = store.read_frames()
    for table in TABLES:
        pd.testing.assert_frame_equal(frames[table], stored[table], obj=table)
    again = store.ingest(frames)
    assert again.accepted and again.inserted == 0 and again.duplicates == again.received

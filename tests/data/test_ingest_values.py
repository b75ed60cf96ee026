"""Values ingest must refuse rather than guess: each reported with its row, column and rule,
and a refused batch writes nothing (ARCHITECTURE.md decision 1)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from features.io import read_event_dir, write_event_dir
from features.schemas import TABLES
from features.store import EventStore, IngestRejected


def _rejected(store: EventStore, batch) -> set[tuple[str, int | None, str | None, str]]:
    """The (table, row, column, check) of every error; asserts nothing was written."""
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    assert sum(store.count(t) for t in TABLES) == 0
    return {(e.table, e.row, e.column, e.check) for e in info.value.report.errors}


# ------------------------------------------------------------------ integers are exact


def _object_amounts(batch, first) -> None:
    inv = batch["invoices"]
    values = [first, *[int(x) for x in inv["amount_cents"].iloc[1:]]]
    inv["amount_cents"] = pd.Series(values, index=inv.index, dtype=object)


@pytest.mark.parametrize(
    "value",
    [12345.7, Decimal("12345.67"), "12345.7", True, Decimal("Infinity")],
    ids=["float", "decimal", "text", "bool", "infinity"],
)
def test_non_whole_value_in_an_object_int_column_is_rejected(store, make_batch, value):
    """Mixed JSON values, Decimals and numeric text were truncated by coercion (12345.7 ->
    12345) and True taken as 1 cent; now each is an 'integer' error naming its row."""
    batch = make_batch()
    _object_amounts(batch, value)
    assert _rejected(store, batch) == {("invoices", 0, "amount_cents", "integer")}


def test_fractional_cents_in_a_nullable_object_column_is_rejected(store, make_batch):
    batch = make_batch()
    batch["customers"]["declared_net_income_cents"] = pd.Series(
        [180_000.5, None, None], dtype=object
    )
    assert _rejected(store, batch) == {("customers", 0, "declared_net_income_cents", "integer")}


def test_boolean_column_is_not_an_amount(store, make_batch):
    batch = make_batch(("c1",))
    batch["invoices"]["amount_cents"] = [True, True]
    assert _rejected(store, batch) == {
        ("invoices", 0, "amount_cents", "integer"),
        ("invoices", 1, "amount_cents", "integer"),
    }


def test_parquet_decimal_with_fractional_cents_is_rejected(tmp_path, store, make_batch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    batch = make_batch()
    write_event_dir(batch, tmp_path, "parquet")
    path = tmp_path / "payments.parquet"
    table = pq.read_table(path)
    vals = [Decimal(v) for v in table.column("amount_cents").to_pylist()]
    vals[1] = Decimal("12345.99")
    i = table.schema.get_field_index("amount_cents")
    pq.write_table(table.set_column(i, "amount_cents", pa.array(vals, pa.decimal128(12, 2))), path)
    assert _rejected(store, dict(read_event_dir(tmp_path))) == {
        ("payments", 1, "amount_cents", "integer")
    }


def test_whole_values_of_any_type_are_accepted_exactly(store, make_batch):
    batch = make_batch()
    want = batch["invoices"]["amount_cents"].tolist()
    inv = batch["invoices"]
    inv["amount_cents"] = [Decimal(want[0]), str(want[1]), float(want[2]), *want[3:]]
    store.ingest(batch)
    got = store.read_frames()["invoices"].set_index("invoice_id")["amount_cents"]
    assert got.loc[inv["invoice_id"]].tolist() == want


# ------------------------------------------------------------------ dates are ISO


def _dates(batch, issue: list[object]) -> None:
    inv = batch["invoices"]
    inv["issue_date"] = pd.Series(issue, index=inv.index, dtype=object)
    inv["due_date"] = pd.Timestamp("2024-06-30")


@pytest.mark.parametrize(
    "dates",
    [["05-02-2024", "03-04-2024"], ["05/02/2024", "03/04/2024"], ["05-02-2024", "20-02-2024"]],
    ids=["dd-mm-yyyy", "dd/mm/yyyy", "day-over-12"],
)
def test_non_iso_date_text_is_rejected_not_read_month_first(store, make_batch, dates):
    """'05-02-2024' (5 February, as a Dutch creditor writes it) was stored as 2 May."""
    batch = make_batch(("c1",))
    _dates(batch, dates)
    assert _rejected(store, batch) == {
        ("invoices", 0, "issue_date", "date_format"),
        ("invoices", 1, "issue_date", "date_format"),
    }


def test_non_iso_date_in_a_csv_is_rejected(tmp_path, store, make_batch):
    batch = make_batch(("c1",))
    write_event_dir(batch, tmp_path, "csv")
    path = tmp_path / "payments.csv"
    rows = path.read_text().splitlines()
    cells = rows[2].split(",")
    col = rows[0].split(",").index("paid_at")
    day = pd.Timestamp(cells[col])
    cells[col] = day.strftime("%d-%m-%Y")  # the second payment's date, day first
    rows[2] = ",".join(cells)
    path.write_text("\n".join(rows) + "\n")
    assert _rejected(store, dict(read_event_dir(tmp_path))) == {
        ("payments", 1, "paid_at", "date_format")
    }


@pytest.mark.parametrize(
    "text",
    ["2024-1-5", "20240105", " 2024-01-05", "2024-02-30", "", "2024-01-05 garbage"],
)
def test_date_text_must_be_a_real_iso_date(store, make_batch, text):
    batch = make_batch(("c1",))
    _dates(batch, ["2024-01-05", text])
    assert _rejected(store, batch) == {("invoices", 1, "issue_date", "date_format")}


def test_iso_dates_are_accepted_and_times_still_refused(store, make_batch):
    batch = make_batch(("c1",))
    _dates(batch, ["2024-02-05", "2024-03-04T00:00:00Z"])
    store.ingest(batch)
    got = store.read_frames()["invoices"]["issue_date"].dt.strftime("%Y-%m-%d").tolist()
    assert got == ["2024-02-05", "2024-03-04"]
    for late in ("2024-03-04T00:00:00+01:00", "2024-03-04 13:30"):
        batch = make_batch(("c2",))
        _dates(batch, ["2024-02-05", late])
        with pytest.raises(IngestRejected) as info:
            store.ingest(batch)
        assert [(e.row, e.column, e.check) for e in info.value.report.errors] == [
            (1, "issue_date", "calendar_day")
        ]


# ------------------------------------------------------------------ ids are plain text


def _renamed(batch, customer_id: str):
    for df in batch.values():
        df["customer_id"] = customer_id
    return batch


def test_nul_in_a_customer_id_is_rejected_on_every_backend(store, make_batch):
    """SQLite stored 'x\\x00y'; PostgreSQL raised DataError mid-ingest (a 500 at the API)."""
    batch = _renamed(make_batch(("c1",)), "x\x00y")
    errors = _rejected(store, batch)
    assert ("customers", 0, "customer_id", "no_control_characters") in errors
    for table, df in batch.items():
        for row in range(len(df)):
            assert (table, row, "customer_id", "no_control_characters") in errors


@pytest.mark.parametrize("char", ["\x00", "\t", "\n", "\x1f", "\x7f"], ids=repr)
def test_control_characters_in_event_ids_are_rejected(store, make_batch, char):
    batch = make_batch(("c1",))
    batch["payments"].loc[1, "payment_id"] = f"pay{char}1"
    batch["debit_attempts"].loc[0, "invoice_id"] = f"{char}inv-c1-0"
    assert _rejected(store, batch) == {
        ("payments", 1, "payment_id", "no_control_characters"),
        ("debit_attempts", 0, "invoice_id", "no_control_characters"),
    }


def test_nul_in_other_text_columns_is_rejected(store, make_batch):
    batch = make_batch(("c1",))
    batch["customers"].loc[0, "household_type"] = "single\x00"
    batch["invoices"].loc[1, "product"] = "\x00"
    errors = _rejected(store, batch)
    assert {(t, r, c) for t, r, c, _ in errors} == {
        ("customers", 0, "household_type"),
        ("invoices", 1, "product"),
    }


def test_ids_with_printable_unicode_are_stored(store, make_batch):
    batch = _renamed(make_batch(("c1",)), "klant-ë/Ω 1")
    store.ingest(batch)
    assert store.known_customers(["klant-ë/Ω 1"]) == {"klant-ë/Ω 1"}

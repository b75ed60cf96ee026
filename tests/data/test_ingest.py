"""Ingest on both back ends: all or nothing, idempotent, every error collected and named
by table, row and column; references and immutability checked against the store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.ingest import IngestRejected, IngestReport
from tests.data.store_helpers import assert_frames_equal, row_counts


def test_reingest_changes_nothing(store, make_batch):
    batch = make_batch()
    store.ingest(batch)
    before = store.read_frames()
    again = store.ingest(batch)
    assert again.accepted and again.inserted == 0
    assert again.duplicates == again.received > 0 and again.conflicts == 0
    assert_frames_equal(store.read_frames(), before)


def test_overlapping_batch_inserts_only_new_rows(store, make_batch):
    store.ingest(make_batch(("c1", "c2")))
    report = store.ingest(make_batch(("c1", "c2", "c3")))
    assert report.tables["customers"].inserted == 1
    assert report.tables["customers"].duplicates == 2
    assert report.tables["income_receipts"].inserted == 3
    assert store.customer_ids() == ["c1", "c2", "c3"]
    assert_frames_equal(store.read_frames(), make_batch(("c1", "c2", "c3")))


def test_one_bad_row_writes_nothing_in_any_table(store, make_batch):
    store.ingest(make_batch(("c0",), prefix="old-"))  # something already stored
    before = row_counts(store)
    batch = make_batch()
    batch["invoices"].loc[3, "amount_cents"] = -5
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    report = info.value.report
    assert not report.accepted and report.inserted == 0
    assert row_counts(store) == before
    (err,) = report.errors
    assert (err.table, err.row, err.column) == ("invoices", 3, "amount_cents")
    assert "greater_than" in err.check and err.value == "-5"
    assert "invoices" in report.summary() and "nothing was written" in report.summary()
    json.dumps(report.to_dict())


def test_all_errors_are_collected_across_tables(store, make_batch):
    batch = make_batch()
    batch["invoices"].loc[1, "product"] = "yacht"
    batch["invoices"].loc[2, "due_date"] = pd.Timestamp("2023-01-01")  # before issue_date
    batch["debit_attempts"].loc[0, "reason_code"] = None  # a failed debit needs a reason
    batch["payments"] = batch["payments"].assign(note="typo column")
    batch["income_receipts"] = batch["income_receipts"].drop(columns=["source"])
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    errs = {(e.table, e.row, e.column, e.check) for e in info.value.report.errors}
    assert ("invoices", 1, "product") in {(t, r, c) for t, r, c, _ in errs}
    assert any(t == "invoices" and r == 2 and "due_date" in chk for t, r, _c, chk in errs)
    assert any(t == "debit_attempts" and r == 0 and "reason_code" in chk for t, r, _c, chk in errs)
    assert ("payments", None, "note", "column_in_schema") in errs
    assert ("income_receipts", None, "source", "column_in_dataframe") in errs
    assert sum(row_counts(store).values()) == 0


def test_unknown_customer_is_rejected_naming_the_row(store, make_batch):
    batch = make_batch()
    batch["payments"].loc[4, "customer_id"] = "ghost"
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    errs = [e for e in info.value.report.errors if e.check == "customer_exists"]
    assert [(e.table, e.row, e.column, e.value) for e in errs] == [
        ("payments", 4, "customer_id", "'ghost'")
    ]
    assert sum(row_counts(store).values()) == 0


def test_events_for_stored_customers_are_accepted_without_customer_rows(store, make_batch):
    store.ingest(make_batch())
    later = {k: v for k, v in make_batch(prefix="later-").items() if k not in ("customers",)}
    report = store.ingest(later)
    assert report.accepted and report.inserted == sum(len(v) for v in later.values())


def test_invoice_references_are_checked(store, make_batch):
    store.ingest(make_batch())
    batch = make_batch(prefix="b2-")
    batch["payments"].loc[0, "invoice_id"] = "no-such-invoice"
    batch["debit_attempts"].loc[1, "invoice_id"] = "inv-c3-0"  # stored, but c3's (row 1 is c1's)
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    got = {(e.table, e.row, e.check) for e in info.value.report.errors}
    assert got == {("payments", 0, "invoice_exists"), ("debit_attempts", 1, "invoice_of_customer")}


def test_conflicting_event_is_reported_and_not_applied(store, make_batch):
    store.ingest(make_batch())
    before = store.read_frames()
    batch = make_batch(prefix="new-")  # all new ids ...
    batch["customers"] = make_batch()["customers"]  # ... plus the stored customers, one changed
    batch["customers"].loc[1, "declared_net_income_cents"] = 1
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    report = info.value.report
    counts = report.tables["customers"]
    assert (counts.conflicts, counts.duplicates, counts.conflict_ids) == (1, 2, ["c2"])
    (err,) = report.errors
    assert (err.table, err.row, err.column, err.check) == (
        "customers",
        1,
        "declared_net_income_cents",
        "immutable_event",
    )
    assert "immutable" in err.message and "stored" in err.message
    assert_frames_equal(store.read_frames(), before)  # neither the change nor the new rows


def test_time_of_day_and_fractional_cents_are_rejected(store, make_batch):
    batch = make_batch()
    batch["payments"]["paid_at"] = batch["payments"]["paid_at"].astype("datetime64[ns]")
    batch["payments"].loc[2, "paid_at"] = pd.Timestamp("2024-02-01 13:30")
    batch["income_receipts"]["amount_cents"] = batch["income_receipts"]["amount_cents"].astype(
        float
    )
    batch["income_receipts"].loc[5, "amount_cents"] = 1000.5
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    got = {(e.table, e.row, e.column, e.check) for e in info.value.report.errors}
    assert got == {
        ("payments", 2, "paid_at", "calendar_day"),
        ("income_receipts", 5, "amount_cents", "integer"),
    }


def test_unknown_table_is_rejected(store, make_batch):
    batch = dict(make_batch())
    batch["invoice"] = batch["invoices"]
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    assert [(e.table, e.check) for e in info.value.report.errors] == [("invoice", "known_table")]
    assert sum(row_counts(store).values()) == 0


def test_report_is_json_ready(store, make_batch):
    report = store.ingest(make_batch())
    assert isinstance(report, IngestReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["accepted"] is True and data["tables"]["invoices"]["inserted"] == 6
    assert "Accepted" in report.summary()

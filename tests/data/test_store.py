"""The event store on both back ends: ingest (validated, all-or-nothing, idempotent), reads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from features.schemas import TABLES, columns_of
from features.store import EventStore, IngestRejected, IngestReport


def _sorted(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """The store's read order: customer, date, id."""
    _, pk, date_col = TABLES[table]
    keys = ["customer_id"] if pk == "customer_id" else ["customer_id", date_col, pk]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _counts(store: EventStore) -> dict[str, int]:
    return {t: store.count(t) for t in TABLES}


def _assert_frames_equal(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    assert set(got) == set(TABLES)
    for table in TABLES:
        pd.testing.assert_frame_equal(got[table], _sorted(table, want[table]), obj=table)


def test_round_trip_and_dtypes(store, make_batch):
    batch = make_batch()
    report = store.ingest(batch)
    assert report.accepted and not report.errors
    assert report.inserted == report.received == sum(len(df) for df in batch.values())
    for table, df in batch.items():
        assert report.tables[table].received == len(df) == report.tables[table].inserted
    frames = store.read_frames()
    _assert_frames_equal(frames, batch)
    for table, df in frames.items():
        assert list(df.columns) == columns_of(table)
    c = frames["customers"]
    assert str(c["birth_year"].dtype) == "Int64" and c["birth_year"].isna().sum() == 1
    assert str(c["declared_net_income_cents"].dtype) == "Int64"
    assert c["created_at"].dtype == np.dtype("datetime64[ns]")
    assert frames["invoices"]["amount_cents"].dtype == np.dtype("int64")
    assert frames["arrangements"]["end_date"].isna().sum() == 1
    assert frames["debit_attempts"]["reason_code"].isna().sum() == 3


def test_create_schema_is_idempotent(store, make_batch):
    store.ingest(make_batch())
    before = _counts(store)
    store.create_schema()
    assert _counts(store) == before


def test_reingest_changes_nothing(store, make_batch):
    batch = make_batch()
    store.ingest(batch)
    before = store.read_frames()
    again = store.ingest(batch)
    assert again.accepted and again.inserted == 0
    assert again.duplicates == again.received > 0 and again.conflicts == 0
    _assert_frames_equal(store.read_frames(), before)


def test_overlapping_batch_inserts_only_new_rows(store, make_batch):
    store.ingest(make_batch(("c1", "c2")))
    report = store.ingest(make_batch(("c1", "c2", "c3")))
    assert report.tables["customers"].inserted == 1
    assert report.tables["customers"].duplicates == 2
    assert report.tables["income_receipts"].inserted == 3
    assert store.customer_ids() == ["c1", "c2", "c3"]
    _assert_frames_equal(store.read_frames(), make_batch(("c1", "c2", "c3")))


def test_one_bad_row_writes_nothing_in_any_table(store, make_batch):
    store.ingest(make_batch(("c0",), prefix="old-"))  # something already stored
    before = _counts(store)
    batch = make_batch()
    batch["invoices"].loc[3, "amount_cents"] = -5
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    report = info.value.report
    assert not report.accepted and report.inserted == 0
    assert _counts(store) == before
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
    assert sum(_counts(store).values()) == 0


def test_unknown_customer_is_rejected_naming_the_row(store, make_batch):
    batch = make_batch()
    batch["payments"].loc[4, "customer_id"] = "ghost"
    with pytest.raises(IngestRejected) as info:
        store.ingest(batch)
    errs = [e for e in info.value.report.errors if e.check == "customer_exists"]
    assert [(e.table, e.row, e.column, e.value) for e in errs] == [
        ("payments", 4, "customer_id", "'ghost'")
    ]
    assert sum(_counts(store).values()) == 0


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
    _assert_frames_equal(store.read_frames(), before)  # neither the change nor the new rows


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
    assert sum(_counts(store).values()) == 0


def test_empty_batch(store, make_batch):
    report = store.ingest({})
    assert report.accepted and report.received == 0 and report.inserted == 0
    empties = {t: df.iloc[:0] for t, df in make_batch().items()}
    empties["payments"] = pd.DataFrame()
    assert store.ingest(empties).accepted
    frames = store.read_frames()
    for table, df in frames.items():
        assert df.empty and list(df.columns) == columns_of(table)
    assert store.customer_ids() == [] and list(store.iter_customer_partitions(10)) == []
    cols = store.read_columns(["nobody"])
    assert all(len(a) == 0 for t in cols.values() for a in t.values())


def test_read_columns_matches_read_frames(store, make_batch):
    store.ingest(make_batch(("c1", "c2", "c3", "c4")))
    for ids in (["c1"], ["c2"], ["c3", "c1"], ["c4", "missing"]):
        cols = store.read_columns(ids)
        frames = store.read_frames(ids)
        assert set(cols) == set(TABLES)
        for table, df in frames.items():
            assert list(cols[table]) == columns_of(table)
            for name in df.columns:
                arr, ser = cols[table][name], df[name]
                if ser.dtype.kind == "M":
                    assert arr.dtype == np.dtype("datetime64[D]")
                    np.testing.assert_array_equal(arr, ser.to_numpy().astype("datetime64[D]"))
                elif str(ser.dtype) == "Int64":
                    assert arr.dtype == np.float64
                    np.testing.assert_array_equal(arr, ser.to_numpy(dtype=float, na_value=np.nan))
                elif ser.dtype == np.int64:
                    assert arr.dtype == np.int64
                    np.testing.assert_array_equal(arr, ser.to_numpy())
                else:
                    assert arr.dtype == object
                    want = [None if pd.isna(v) else v for v in ser]
                    assert arr.tolist() == want
    one = store.read_columns(["c1"])
    assert np.isnat(one["arrangements"]["end_date"]).tolist() == [True]
    assert one["customers"]["birth_year"].tolist() == [1960.0]
    assert np.isnan(store.read_columns(["c2"])["customers"]["birth_year"]).tolist() == [True]


def test_read_frames_subset_and_partitions(store, make_batch):
    ids = [f"c{i:02d}" for i in range(7)]
    store.ingest(make_batch(tuple(reversed(ids))))
    assert store.customer_ids() == ids
    parts = list(store.iter_customer_partitions(3))
    assert parts == [ids[0:3], ids[3:6], ids[6:]]
    assert store.known_customers(["c01", "zz", "c06"]) == {"c01", "c06"}
    sub = store.read_frames(["c05", "c02"])
    assert sub["customers"]["customer_id"].tolist() == ["c02", "c05"]
    assert set(sub["income_receipts"]["customer_id"]) == {"c02", "c05"}
    assert len(sub["income_receipts"]) == 6
    assert all(len(df) == 0 for df in store.read_frames([]).values())


def test_report_is_json_ready(store, make_batch):
    report = store.ingest(make_batch())
    assert isinstance(report, IngestReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["accepted"] is True and data["tables"]["invoices"]["inserted"] == 6
    assert "Accepted" in report.summary()


def test_concurrent_reads_while_ingesting(store, make_batch):
    store.ingest(make_batch())

    def read(i: int) -> int:
        return len(store.read_columns(["c1"])["invoices"]["invoice_id"])

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(read, i) for i in range(40)]
        store.ingest(make_batch(("d1", "d2"), prefix="x-"))
        assert {f.result() for f in futures} == {2}
    assert store.count("customers") == 5


def test_bad_urls():
    with pytest.raises(ValueError):
        EventStore("sqlite://")
    with pytest.raises(ValueError):
        EventStore("mysql://x@y/z")


@pytest.mark.postgres
def test_pg_request_read_is_one_snapshot(postgres_url, make_batch):
    """An ingest that commits while a request-path read is running must not yield old
    events under the new version (a stale serving row would then be stored as valid).

    The last table query of the read sleeps; another connection ingests a new invoice and
    commits during that sleep. Without one snapshot for the whole read (READ COMMITTED:
    one per statement) the invoices came from before the ingest, the version after it."""
    import threading
    import time

    import psycopg

    from tests.conftest import _libpq_conninfo

    reader = EventStore(postgres_url.url, schema=postgres_url.schema)
    writer = EventStore(postgres_url.url, schema=postgres_url.schema)
    try:
        reader.create_schema()
        batch = make_batch(("c1",))
        reader.ingest(batch)
        _, before = reader.read_columns_versioned(["c1"])
        assert before == {"c1": 1}
        pid = reader._fast_pg().info.backend_pid  # the request connection of this thread
        new_inv = batch["invoices"].iloc[:1].copy()
        new_inv["invoice_id"] = "inv-new"

        sql = reader._select_sql["account_balances"]
        reader._select_sql["account_balances"] = sql.replace(
            "FROM account_balances", "FROM account_balances, (SELECT pg_sleep(1.0)) AS z"
        )
        committed = threading.Event()
        failure: list[BaseException] = []

        def ingest_during_the_read() -> None:
            try:
                conninfo = _libpq_conninfo(postgres_url.url)
                with psycopg.connect(conninfo, autocommit=True) as mon:
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        row = mon.execute(
                            "SELECT query FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                            (pid,),
                        ).fetchone()
                        if row and "pg_sleep" in row[0]:
                            break
                        time.sleep(0.01)
                    else:
                        raise AssertionError("the read never reached its sleeping query")
                writer.ingest({"invoices": new_inv})
                committed.set()
            except BaseException as exc:  # reported by the test thread
                failure.append(exc)

        thread = threading.Thread(target=ingest_during_the_read)
        thread.start()
        try:
            cols, versions = reader.read_columns_versioned(["c1"])
            raced = committed.is_set()  # the ingest committed before the read ended
        finally:
            thread.join()
            reader._select_sql["account_balances"] = sql
        assert not failure, failure
        assert raced
        invoices = cols["invoices"]["invoice_id"].tolist()
        # The snapshot is from before the ingest: old events, old version.
        assert "inv-new" not in invoices and versions == {"c1": 1}
        fresh, now = reader.read_columns_versioned(["c1"])
        assert "inv-new" in fresh["invoices"]["invoice_id"].tolist() and now == {"c1": 2}
    finally:
        reader.dispose()
        writer.dispose()

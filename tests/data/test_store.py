"""The event store on both back ends: round trip, reads, partitions, concurrency, URLs.

The ingest rules are tested in test_ingest.py and test_ingest_values.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from features.schemas import TABLES, columns_of
from features.store import EventStore
from tests.data.store_helpers import assert_frames_equal, row_counts


def test_round_trip_and_dtypes(store, make_batch):
    batch = make_batch()
    report = store.ingest(batch)
    assert report.accepted and not report.errors
    assert report.inserted == report.received == sum(len(df) for df in batch.values())
    for table, df in batch.items():
        assert report.tables[table].received == len(df) == report.tables[table].inserted
    frames = store.read_frames()
    assert_frames_equal(frames, batch)
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
    before = row_counts(store)
    store.create_schema()
    assert row_counts(store) == before


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

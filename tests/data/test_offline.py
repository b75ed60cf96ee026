"""The offline copy (features.offline): it reads back exactly what the store reads, however
it was written, and its check finds a missing or changed event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.offline import (
    OfflineEvents,
    bucket_of,
    check_offline,
    compact_offline,
    sync_offline,
    write_offline,
)
from features.schemas import TABLES
from features.store import EventStore

BUCKETS = 4


@pytest.fixture(scope="module")
def small_tables(population):
    """The session population cut to its first 150 customers (fast, every table present)."""
    keep = set(population.tables["customers"]["customer_id"].iloc[:150])
    return {
        t: df[df["customer_id"].isin(keep)].reset_index(drop=True)
        for t, df in population.tables.items()
    }


@pytest.fixture
def store(tmp_path, small_tables):
    s = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    s.create_schema()
    s.ingest(small_tables)
    yield s
    s.dispose()


def _assert_same_as_store(offline: OfflineEvents, store: EventStore) -> None:
    seen: list[str] = []
    for b in offline.buckets:
        ids = offline.customer_ids(b)
        assert ids == sorted(ids)
        assert set(bucket_of(ids, offline.n_buckets).tolist()) == {b}
        seen += ids
        got = offline.read_bucket(b)
        want = store.read_frames(ids)
        for table in TABLES:
            pd.testing.assert_frame_equal(got[table], want[table], check_exact=True)
    assert sorted(seen) == store.customer_ids()
    assert offline.count() == store.count("customers")


def test_one_write_reads_back_as_the_store_reads(tmp_path, store, small_tables):
    write_offline(small_tables, tmp_path / "offline", buckets=BUCKETS)
    offline = OfflineEvents(tmp_path / "offline")
    assert offline.buckets == list(range(BUCKETS))
    _assert_same_as_store(offline, store)
    assert check_offline(store, tmp_path / "offline").ok


def test_appended_batches_read_back_sorted(tmp_path, store, small_tables):
    """Ingest batches arrive in any order and split a customer's events across files."""
    root = tmp_path / "offline"
    for part in (1, 0, 2):  # every third row, out of order
        write_offline(
            {t: df.iloc[part::3] for t, df in small_tables.items()}, root, buckets=BUCKETS
        )
    _assert_same_as_store(OfflineEvents(root), store)
    assert compact_offline(root) > 0
    assert all(len(list(d.glob("*.parquet"))) == 1 for d in root.glob("*/customer_bucket=*"))
    _assert_same_as_store(OfflineEvents(root), store)


def test_sync_from_the_store_then_check(tmp_path, store):
    root = tmp_path / "offline"
    written = sync_offline(store, root, buckets=BUCKETS, partition_size=40)
    assert written == {t: store.count(t) for t in TABLES}
    _assert_same_as_store(OfflineEvents(root), store)
    assert check_offline(store, root).ok
    # A second sync replaces the copy, it does not add to it.
    sync_offline(store, root, partition_size=1000)
    assert OfflineEvents(root).count_rows("payments") == store.count("payments")


def test_check_names_a_missing_event(tmp_path, store, small_tables):
    root = tmp_path / "offline"
    payments = small_tables["payments"]
    write_offline({**small_tables, "payments": payments.iloc[1:]}, root, buckets=BUCKETS)
    check = check_offline(store, root)
    assert not check.ok
    assert check.mismatched == ["payments"]
    assert "payments: store" in check.summary() and "(-1)" in check.summary()


def test_check_names_a_changed_event(tmp_path, store, small_tables):
    root = tmp_path / "offline"
    changed = small_tables["invoices"].copy()
    changed.loc[0, "amount_cents"] += 1
    write_offline({**small_tables, "invoices": changed}, root, buckets=BUCKETS)
    check = check_offline(store, root)
    assert check.mismatched == ["invoices"]
    assert "different content" in check.summary()


def test_bucket_is_stable_and_spreads():
    ids = [f"C{i:08d}" for i in range(10_000)]
    b = bucket_of(ids, 16)
    assert b.tolist() == bucket_of(list(ids), 16).tolist()
    assert bucket_of(["C00000001"], 16).tolist() == [b[1]]
    counts = np.bincount(b, minlength=16)
    assert counts.min() > 500 and counts.max() < 750


def test_a_copy_keeps_its_bucket_count(tmp_path, small_tables):
    write_offline(small_tables, tmp_path / "o", buckets=4)
    with pytest.raises(ValueError, match="4 buckets"):
        write_offline(small_tables, tmp_path / "o", buckets=8)
    with pytest.raises(FileNotFoundError, match="offline sync"):
        OfflineEvents(tmp_path / "nothing")


def test_arrow_columns_build_the_same_event_arrays(tmp_path, store, small_tables):
    """The batch path (Arrow strings, dictionary-encoded) and the pandas path agree."""
    import dataclasses

    from features.events import EventArrays

    root = tmp_path / "offline"
    write_offline(small_tables, root, buckets=2)
    write_offline({"payments": small_tables["payments"].iloc[:0]}, root)  # nothing: no file
    offline = OfflineEvents(root)
    for b in offline.buckets:
        ids = offline.customer_ids(b)
        fast = EventArrays.from_columns(offline.read_bucket_columns(b), ids)
        slow = EventArrays.from_frames(store.read_frames(ids), ids)
        for f in dataclasses.fields(fast):
            a, c = getattr(fast, f.name), getattr(slow, f.name)
            if isinstance(a, np.ndarray):
                assert a.tolist() == c.tolist()
                continue
            assert a.cols.keys() == c.cols.keys()
            for k in a.cols:
                np.testing.assert_array_equal(a.cols[k], c.cols[k], err_msg=f"{f.name}.{k}")


def test_vectorised_crc32_is_zlibs():
    import zlib

    import pyarrow as pa

    from features.offline_order import crc32_utf8

    ids = ["", "a", "C00000001", "K00-C000002", "klant-é-ß-日本", "x" * 70, "R1-K03-C099999"]
    got = crc32_utf8(pa.chunked_array([pa.array(ids[:3]), pa.array(ids[3:])])).tolist()
    assert got == [zlib.crc32(i.encode()) for i in ids]
    sliced = pa.array(ids).slice(2, 3)
    assert crc32_utf8(sliced).tolist() == [zlib.crc32(i.encode()) for i in ids[2:5]]


def test_write_order_is_arrows_sort_with_ties_and_duplicates():
    import pyarrow as pa

    from features.offline_order import write_order

    rng = np.random.default_rng(7)
    n = 5_000
    codes = rng.integers(0, 40, n)
    rank = rng.permutation(40)
    days = rng.integers(19_000, 19_006, n)  # many rows share customer and day
    ids = pa.array([f"E{int(i):03d}" for i in rng.integers(0, 900, n)])  # and some the id
    order = write_order(codes, rank, days, ids)
    want = pa.table({"r": rank[codes], "d": days, "id": ids, "pos": np.arange(n)}).sort_by(
        [("r", "ascending"), ("d", "ascending"), ("id", "ascending")]
    )
    assert order.tolist() == want.column("pos").to_pylist()
    assert (
        write_order(codes, rank, None, None).tolist()
        == np.argsort(rank[codes], kind="stable").tolist()
    )

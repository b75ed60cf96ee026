"""Cold batch scoring from the offline copy: the same scores as from the event store, in
this process and on a 2-worker Dask LocalCluster, and the same point-in-time cut."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from features.offline import OfflineEvents, write_offline
from features.store import EventStore
from training.batch_scoring import score_batch

AS_OF = date(2026, 6, 1)
N_CUSTOMERS = 120


@pytest.fixture(scope="module")
def world(population, trained, tmp_path_factory):
    """The first customers of the small population in a SQLite store and an offline copy
    (3 buckets, written in two appended batches), and the bundle."""
    tmp = tmp_path_factory.mktemp("offline_batch")
    ids = population.tables["customers"]["customer_id"].iloc[:N_CUSTOMERS].tolist()
    tables = {
        name: df[df["customer_id"].isin(ids)].reset_index(drop=True)
        for name, df in population.tables.items()
    }
    store = EventStore(f"sqlite:///{tmp / 'events.db'}")
    store.create_schema()
    assert store.ingest(tables).accepted
    for half in (0, 1):
        write_offline({t: df.iloc[half::2] for t, df in tables.items()}, tmp / "offline", 3)
    yield store, OfflineEvents(tmp / "offline"), trained.bundle, tables, tmp
    store.dispose()


def _by_customer(path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("customer_id", ignore_index=True)


@pytest.mark.parametrize("as_of", [AS_OF, AS_OF - timedelta(days=200)], ids=["end", "earlier"])
def test_offline_scores_equal_the_store_scores(world, tmp_path, as_of):
    """Every column, reasons included, bit for bit; events after ``as_of`` are ignored the
    same way on both paths (the earlier day has many of them)."""
    store, offline, bundle, _, _ = world
    from_store = score_batch(
        store, bundle, as_of, tmp_path / "store.parquet", serving_rows=False, partition_size=50
    )
    from_copy = score_batch(None, bundle, as_of, tmp_path / "copy.parquet", source=offline)
    assert (from_copy.customers, from_copy.flagged) == (from_store.customers, from_store.flagged)
    assert from_copy.flagged > 0  # reasons were compared, not only empty columns
    pd.testing.assert_frame_equal(
        _by_customer(tmp_path / "copy.parquet"), _by_customer(tmp_path / "store.parquet")
    )


def test_events_after_as_of_do_not_change_the_offline_scores(world, tmp_path):
    _, _, bundle, tables, tmp = world
    root = tmp_path / "offline"
    write_offline(tables, root, buckets=3)
    before = score_batch(None, bundle, AS_OF, tmp_path / "a.parquet", source=OfflineEvents(root))
    late = tables["invoices"].iloc[:40].copy()
    late["invoice_id"] = "late-" + late["invoice_id"].astype(str)
    late["issue_date"] = pd.Timestamp(AS_OF)  # known from the next day on
    late["due_date"] = pd.Timestamp(AS_OF) + pd.Timedelta(days=14)
    write_offline({"invoices": late}, root)
    after = score_batch(None, bundle, AS_OF, tmp_path / "b.parquet", source=OfflineEvents(root))
    assert after.customers == before.customers
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    )
    # ...while the day after, they count.
    later = AS_OF + timedelta(days=1)
    score_batch(None, bundle, later, tmp_path / "c.parquet", source=OfflineEvents(root))
    score_batch(None, bundle, later, tmp_path / "d.parquet", source=OfflineEvents(tmp / "offline"))
    c, d = pd.read_parquet(tmp_path / "c.parquet"), pd.read_parquet(tmp_path / "d.parquet")
    assert (c["probability"] != d["probability"]).any()


def test_without_reasons_only_the_reason_columns_are_empty(world, tmp_path):
    _, offline, bundle, _, _ = world
    score_batch(None, bundle, AS_OF, tmp_path / "with.parquet", source=offline)
    skipped = score_batch(
        None, bundle, AS_OF, tmp_path / "without.parquet", source=offline, reasons=False
    )
    a, b = pd.read_parquet(tmp_path / "with.parquet"), pd.read_parquet(tmp_path / "without.parquet")
    reason_cols = [c for c in a.columns if c.startswith("reason_")]
    assert (b[reason_cols] == "").all().all() and (a[reason_cols] != "").any().any()
    pd.testing.assert_frame_equal(a.drop(columns=reason_cols), b.drop(columns=reason_cols))
    assert "reasons (flagged only)" not in skipped.seconds


def test_a_two_worker_dask_cluster_writes_the_in_process_file(world, tmp_path):
    """Buckets scored on a 2-process LocalCluster (the copy's path, the bundle and a bucket
    cross to the worker) give the in-process file, row for row."""
    from training.cluster import dask_executor

    _, offline, bundle, _, _ = world
    here = score_batch(None, bundle, AS_OF, tmp_path / "here.parquet", source=offline)
    with dask_executor("local:2") as cluster:
        assert cluster.workers == 2
        there = score_batch(
            None,
            bundle,
            AS_OF,
            tmp_path / "dask.parquet",
            source=offline,
            executor=cluster.executor,
            workers=cluster.workers,
            threads=1,
        )
    assert (there.customers, there.flagged) == (here.customers, here.flagged)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dask.parquet"), pd.read_parquet(tmp_path / "here.parquet")
    )


@pytest.mark.parametrize("spec", ["local:0", "local", "http://x:1", "tcp://host"])
def test_a_bad_dask_value_says_what_is_accepted(spec):
    from training.cluster import parse_dask

    with pytest.raises(ValueError, match=r"local:N|N >= 1"):
        parse_dask(spec)

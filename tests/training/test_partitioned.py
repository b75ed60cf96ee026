"""Training data built partition by partition equals the whole-history path's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from features.labels import LabelConfig
from features.store import EventStore
from training.dataset import build_snapshots, monthly_as_of_dates, out_of_time_split
from training.partitioned import build_partitioned, plan_snapshots
from training.partitions import StorePartitions, in_sample
from training.pipeline import read_events
from training.train import train_candidate

PARAMS = {"num_threads": 1}


@pytest.fixture(scope="module")
def small_store(population, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('part') / 'events.db'}"
    store = EventStore(url)
    store.create_schema()
    store.ingest(population.tables)
    store.dispose()
    return url


@pytest.fixture(scope="module")
def whole(small_store):
    store = EventStore(small_store)
    try:
        events = read_events(store)
    finally:
        store.dispose()
    config = LabelConfig()
    return events, build_snapshots(events, monthly_as_of_dates(events, config), config)


def _partitioned(url, **plan_kw):
    source = StorePartitions(url, partition_customers=150)
    plan = plan_snapshots(source.day_bounds(), LabelConfig(), **plan_kw)
    return build_partitioned(source, plan)


def test_same_matrix_and_labels_as_the_whole_history(small_store, whole):
    _, snaps = whole
    data = _partitioned(small_store, all_dates=True)
    got = data.snapshots
    np.testing.assert_array_equal(got.X, snaps.X)
    np.testing.assert_array_equal(got.y, snaps.y)
    np.testing.assert_array_equal(got.customer, snaps.customer)
    np.testing.assert_array_equal(got.as_of, snaps.as_of)


def test_purged_dates_are_not_built_and_the_split_rows_are_the_same(small_store, whole):
    _, snaps = whole
    split = out_of_time_split(snaps, LabelConfig().horizon_days)
    data = _partitioned(small_store)
    in_split = split.train | split.calibration | split.validation
    assert len(data.snapshots) == int(in_split.sum()) < len(snaps)
    np.testing.assert_array_equal(data.snapshots.X, snaps.X[in_split])


def test_same_model_and_baselines_given_the_same_seed(small_store, whole):
    events, snaps = whole
    config = LabelConfig()
    expected = train_candidate(events, snaps, config, params=PARAMS)
    data = _partitioned(small_store)
    got = train_candidate(
        data.events, data.snapshots, config, params=PARAMS, precomputed=data.precomputed
    )
    assert got.bundle.booster.model_to_string() == expected.bundle.booster.model_to_string()
    assert got.bundle.calibrator == expected.bundle.calibrator
    for name in ("model", "logistic_regression", "plan_kept", "debit_failure"):
        assert got.metrics[name] == pytest.approx(expected.metrics[name], nan_ok=True), name
    assert ("rule_second_reminder" in got.metrics) == ("rule_second_reminder" in expected.metrics)
    # as JSON: a group's undefined rates are NaN, which equals nothing
    fairness = [json.dumps(c.bundle.metadata["fairness"], sort_keys=True) for c in (got, expected)]
    assert fairness[0] == fairness[1]


def test_a_sample_keeps_every_validation_row_and_sampled_training_rows(small_store):
    full = _partitioned(small_store)
    half = _partitioned(small_store, sample_fraction=0.5)
    split = out_of_time_split(full.snapshots, LabelConfig().horizon_days)
    split_half = out_of_time_split(half.snapshots, LabelConfig().horizon_days)
    assert split_half.validation.sum() == split.validation.sum()
    ids = full.events.customer_ids
    sampled = in_sample(ids, 0.5)
    train = half.snapshots.subset(split_half.train)
    assert sampled[train.customer].all()
    assert 0.3 < split_half.train.sum() / split.train.sum() < 0.7


def test_the_customer_sample_is_reproducible_and_nested():
    ids = [f"c{i}" for i in range(2000)]
    a, b = in_sample(ids, 0.3), in_sample(list(reversed(ids)), 0.3)[::-1]
    np.testing.assert_array_equal(a, b)
    assert not (a & ~in_sample(ids, 0.6)).any()
    assert 450 < a.sum() < 750
    with pytest.raises(ValueError, match="got 0"):
        in_sample(ids, 0)


def test_the_offline_copy_gives_the_same_rows_in_its_own_customer_order(
    population, small_store, tmp_path
):
    from features.offline import write_offline
    from training.partitions import OfflinePartitions

    write_offline(population.tables, tmp_path / "offline", buckets=4)
    source = OfflinePartitions(tmp_path / "offline")
    assert len(source.partition_keys()) == 4
    store = StorePartitions(small_store)
    assert source.day_bounds() == store.day_bounds()
    assert source.customers() == store.customers()
    plan = plan_snapshots(source.day_bounds(), LabelConfig())
    got, want = build_partitioned(source, plan), _partitioned(small_store)

    def keyed(data):
        ids = data.events.customer_ids[data.snapshots.customer]
        order = np.lexsort((ids.astype(str), data.snapshots.as_of))
        return data.snapshots.X[order], data.snapshots.y[order], ids[order]

    for a, b in zip(keyed(got), keyed(want), strict=True):
        np.testing.assert_array_equal(a, b)

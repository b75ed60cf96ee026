"""Training on a 2-worker LocalCluster: snapshots per partition and lightgbm.dask there.

lightgbm.dask is not bit-identical to the in-process fit (bins found from each worker's
own rows, histograms summed in another order, bagging per worker), so the test asks for
the same validation rows and an out-of-time ROC AUC within a tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.labels import LabelConfig
from features.store import EventStore
from training.dask_training import dask_client, early_stop_iteration
from training.partitioned import build_partitioned, plan_snapshots
from training.partitions import StorePartitions
from training.train import train_candidate

#: how far the cluster's out-of-time ROC AUC may fall from the in-process one's on the
#: 700-customer population (about 1,900 validation rows)
AUC_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def small_store(population, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('dask') / 'events.db'}"
    store = EventStore(url)
    store.create_schema()
    store.ingest(population.tables)
    store.dispose()
    return url


def test_cluster_training_matches_in_process_out_of_time(small_store):
    from training.dask_training import build_on_cluster

    config = LabelConfig()
    source = StorePartitions(small_store, partition_customers=200)
    plan = plan_snapshots(source.day_bounds(), config)
    local = build_partitioned(source, plan)
    expected = train_candidate(
        local.events,
        local.snapshots,
        config,
        params={"num_threads": 1},
        precomputed=local.precomputed,
    )
    with dask_client("local:2") as client:
        data, fit, facts = build_on_cluster(client, source, plan)
        got = train_candidate(
            data.events,
            data.snapshots,
            config,
            params={"num_threads": 1},
            precomputed=data.precomputed,
            fit_booster=fit,
        )
    assert facts["workers"] == 2 and facts["partitions"] == 4
    assert (
        facts["train_rows_on_cluster"] == int(got.split.train.sum())
        or facts["lr_sample_fraction"] < 1
    )
    # the same validation rows and the same event-derived figures
    np.testing.assert_array_equal(got.validation_y, expected.validation_y)
    assert got.metrics["debit_failure"] == pytest.approx(expected.metrics["debit_failure"])
    auc, want = got.metrics["model"]["roc_auc"], expected.metrics["model"]["roc_auc"]
    assert auc == pytest.approx(want, abs=AUC_TOLERANCE)
    assert got.bundle.booster.model_to_string() != expected.bundle.booster.model_to_string()


@pytest.mark.parametrize(
    ("losses", "patience", "best"),
    [
        ([3, 2, 1, 2, 2, 2], 2, 3),  # stops two rounds after the best
        ([3, 2, 1, 2, 2, 0.5], 2, 3),  # a later improvement beyond the patience is not seen
        ([3, 2, 1, 2, 2, 0.5], 3, 6),
        ([1.0], 5, 1),
    ],
)
def test_early_stop_iteration_is_where_lightgbm_stops(losses, patience, best):
    assert early_stop_iteration(losses, patience) == best


@pytest.mark.parametrize("spec", ["local:0", "local:x", "http://127.0.0.1:8786", "2"])
def test_a_bad_cluster_spec_is_refused(spec):
    with pytest.raises(ValueError, match="local:N"), dask_client(spec):
        pass

"""Training on a Dask cluster: snapshots per partition on the workers, LightGBM there too.

``tijdig train --dask local:N`` starts a ``LocalCluster`` of N worker processes;
``--dask tcp://HOST:PORT`` uses an existing scheduler (:mod:`training.cluster`) (its workers must reach
the event source: the same store URL or offline-copy path). Each partition task reads
its customers' events and builds their rows (:func:`training.partitioned.partition_rows`)
on a worker. The training rows stay there: ``lightgbm.dask.DaskLGBMClassifier`` fits on
them in place (data-parallel: every worker bins and histograms its own rows, the
histograms are summed over the network). The calibration rows are also kept on the
workers, as the early-stopping set; they, the validation rows and a customer sample of
the training rows (for the logistic-regression baseline) come back to this process,
where calibration, the baselines, the components and the rest run as in-process.

Not bit-identical to the in-process fit: distributed LightGBM finds each feature's bins
from the workers' own samples and merges them, sums histograms in another order, and
bags each worker's rows with its own random stream, so the trees differ slightly (the
out-of-time ROC AUC agrees within a tolerance: ``tests/training/test_dask_training.py``).
LightGBM's Dask interface has no early-stopping callback, so the fit runs all
:data:`training.train.MAX_ROUNDS` rounds recording the stopping set's log loss and is
cut where ``lgb.early_stopping`` would have stopped (:func:`early_stop_iteration`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import lightgbm as lgb
import numpy as np

from features.build import FEATURE_NAMES, monotone_constraints
from training.partitioned import (
    CALIBRATION,
    TRAIN,
    PartitionedData,
    PartitionRows,
    SnapshotPlan,
    assemble,
    partition_rows,
)
from training.partitions import PartitionSource, in_sample
from training.train import EARLY_STOPPING_ROUNDS, LR_MAX_ROWS, MAX_ROUNDS, BoosterFit


@contextlib.contextmanager
def dask_client(spec: str) -> Iterator[Any]:
    """The ``distributed.Client`` of the cluster a ``--dask`` value names
    (:func:`training.cluster.dask_executor`: ``local:N`` or ``tcp://HOST:PORT``)."""
    from training.cluster import dask_executor

    with dask_executor(spec) as cluster:
        yield cluster.client


def _build(source: PartitionSource, key: Any, plan: SnapshotPlan) -> PartitionRows:
    return partition_rows(source.read(key), plan)


def _segment(part: PartitionRows, plan: SnapshotPlan, segment: str) -> tuple[np.ndarray, ...]:
    """(X, y) of one partition's rows at the dates of ``segment``, stacked date by date."""
    js = [j for j, k in enumerate(plan.built()) if plan.segments[k] == segment]
    if not js:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0)
    return np.concatenate([part.X[j] for j in js]), np.concatenate([part.y[j] for j in js])


def _rows(part_segment: tuple[np.ndarray, ...]) -> int:
    return len(part_segment[1])


def _for_driver(part: PartitionRows, plan: SnapshotPlan, fraction: float) -> PartitionRows:
    """The partition without its training rows, except those of a ``fraction`` customer
    sample (for the logistic-regression baseline)."""
    keep = in_sample(part.customer_ids, fraction) if fraction < 1 else None
    out = replace(part, X=list(part.X), y=list(part.y), cust=list(part.cust))
    for j, k in enumerate(plan.built()):
        if plan.segments[k] == TRAIN and keep is not None:
            rows = keep[part.cust[j]]
            out.X[j], out.y[j], out.cust[j] = part.X[j][rows], part.y[j][rows], part.cust[j][rows]
    return out


def worker_peaks_mb(client: Any) -> dict[str, float]:
    """Each worker process's lifetime peak resident memory (``VmHWM``), MB."""

    def peak() -> float:
        from training.memory import _hwm_mb

        return _hwm_mb() or 0.0

    return {str(k): round(float(v), 1) for k, v in client.run(peak).items()}


def build_on_cluster(
    client: Any,
    source: PartitionSource,
    plan: SnapshotPlan,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[PartitionedData, BoosterFit, dict[str, Any]]:
    """Build every partition's rows on the cluster; returns this process's
    :class:`PartitionedData` (training rows: a customer sample only), the booster fit
    for :func:`training.train.train_candidate` that trains on the workers' rows, and
    facts for the report (partitions, training rows on the cluster)."""
    from distributed import as_completed

    keys = source.partition_keys()
    built = [client.submit(_build, source, key, plan, pure=False) for key in keys]
    train = [client.submit(_segment, f, plan, TRAIN) for f in built]
    stop = [client.submit(_segment, f, plan, CALIBRATION) for f in built]
    train_sizes = client.gather([client.submit(_rows, t) for t in train])
    stop_sizes = client.gather([client.submit(_rows, s) for s in stop])
    total = int(sum(train_sizes))
    fraction = min(1.0, LR_MAX_ROWS / total) if total else 1.0
    back = [client.submit(_for_driver, f, plan, fraction) for f in built]
    del built  # the workers drop each partition's full rows once its pieces are made
    parts: dict[int, PartitionRows] = {}
    index = {f.key: i for i, f in enumerate(back)}
    for done, future in enumerate(as_completed(back), 1):
        parts[index[future.key]] = future.result()
        future.release()
        if progress:
            progress(done, len(back))
    data = assemble([parts.pop(i) for i in range(len(back))], plan)
    facts = {
        "partitions": len(keys),
        "train_rows_on_cluster": total,
        "lr_sample_fraction": fraction,
        "workers": len(client.scheduler_info()["workers"]),
    }
    fit = _cluster_fit(client, train, train_sizes, stop, stop_sizes)
    return data, fit, facts


def _as_dask(futures: Sequence[Any], sizes: Sequence[int]) -> tuple[Any, Any]:
    """Dask arrays (X, y) over the non-empty ``(X, y)`` futures, one chunk per partition."""
    import dask
    import dask.array as da

    xs, ys = [], []
    for future, n in zip(futures, sizes, strict=True):
        if n == 0:
            continue
        part = dask.delayed(future)
        xs.append(da.from_delayed(part[0], shape=(n, len(FEATURE_NAMES)), dtype=np.float32))
        ys.append(da.from_delayed(part[1], shape=(n,), dtype=np.float64))
    return da.concatenate(xs), da.concatenate(ys)


def _cluster_fit(
    client: Any,
    train: Sequence[Any],
    train_sizes: Sequence[int],
    stop: Sequence[Any],
    stop_sizes: Sequence[int],
) -> BoosterFit:
    def fit(
        _X: np.ndarray,
        _y: np.ndarray,
        _X_stop: np.ndarray,
        _y_stop: np.ndarray,
        names: tuple[str, ...],
        params: dict[str, Any],
    ) -> lgb.Booster:
        return fit_on_cluster(client, train, train_sizes, stop, stop_sizes, names, params)

    return fit


def fit_on_cluster(
    client: Any,
    train: Sequence[Any],
    train_sizes: Sequence[int],
    stop: Sequence[Any],
    stop_sizes: Sequence[int],
    names: tuple[str, ...],
    params: dict[str, Any],
) -> lgb.Booster:
    """``DaskLGBMClassifier`` on the workers' rows with the in-process fit's parameters,
    cut at the early-stopping iteration; a plain :class:`lightgbm.Booster`."""
    from lightgbm.dask import DaskLGBMClassifier

    X, y = _as_dask(train, train_sizes)
    X_stop, y_stop = _as_dask(stop, stop_sizes)
    # the scikit-learn names of the in-process fit's parameters (an alias beside its
    # scikit-learn default would be ambiguous); the rest pass through as they are
    sklearn_names = {
        "seed": "random_state",
        "min_data_in_leaf": "min_child_samples",
        "lambda_l2": "reg_lambda",
        "bagging_fraction": "subsample",
        "bagging_freq": "subsample_freq",
        "feature_fraction": "colsample_bytree",
    }
    p = {sklearn_names.get(k, k): v for k, v in params.items() if k != "num_threads"}
    model = DaskLGBMClassifier(
        client=client,
        n_estimators=MAX_ROUNDS,
        monotone_constraints=monotone_constraints(names),
        **p,
    )
    with warnings.catch_warnings():
        # the scikit-learn API's n_jobs default, which lightgbm.dask replaces by each
        # worker's threads: nothing a user could act on
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored", UserWarning)
        model.fit(X, y, eval_set=[(X_stop, y_stop)], eval_metric="binary_logloss")
    losses = next(iter(model.evals_result_.values()))["binary_logloss"]
    best = early_stop_iteration(losses, EARLY_STOPPING_ROUNDS)
    booster = lgb.Booster(model_str=model.booster_.model_to_string(num_iteration=best))
    booster.best_iteration = best
    return booster


def early_stop_iteration(losses: Sequence[float], patience: int) -> int:
    """The iteration (1-based) ``lgb.early_stopping(patience)`` keeps on this loss curve:
    the best so far when ``patience`` rounds in a row bring no improvement."""
    best, best_at = float("inf"), 0
    for i, loss in enumerate(losses):
        if loss < best:
            best, best_at = loss, i
        elif i - best_at >= patience:
            break
    return best_at + 1

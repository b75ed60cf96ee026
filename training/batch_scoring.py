"""Batch scoring: every customer in the event store → a Parquet file of scores.

``score_batch`` walks the store in customer partitions. Each partition is an
independent unit of work (:func:`score_partition`), scored here or in worker processes
(``workers``), or on any :class:`concurrent.futures.Executor`, a Dask cluster's
included (ARCHITECTURE.md, decision 7). Per partition
it reads the customers' materialised serving rows (:mod:`models.serving`) and computes
the rest from their events with the one feature definition, predicts with all cores, and
gives SHAP reasons **only for flagged customers** (``pred_contrib`` costs far more than
predict; STYLE.md) — stored contributions where the row has them. Output columns: ``customer_id``, ``as_of``,
``probability``, ``band``, ``early_warning``, ``reason_1..k`` (reason codes, empty for
unflagged customers), ``model_version``, ``policy_version``.

Timings per step are returned so ``benchmarks/batch.py`` can say where the time goes.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.store import EventStore
from models.bundle import Bundle, max_threads
from models.policy import RiskPolicy
from models.reasons import top_reason_codes
from models.serving import ServingRows, ServingState

if TYPE_CHECKING:
    from features.offline import OfflineEvents


@dataclass
class BatchReport:
    customers: int = 0
    flagged: int = 0
    materialised: int = 0  # customers served from a valid stored row
    seconds: dict[str, float] = field(default_factory=dict)
    workers: int = 1  # processes that scored partitions (1: this one)

    def add(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds


@dataclass
class PartitionScores:
    """One partition's answer: the Parquet rows and what it took (picklable, so it can
    come back from another process or a Dask worker)."""

    table: Any  # pyarrow.Table
    flagged: int
    materialised: int
    seconds: dict[str, float]


def score_partition(
    store: EventStore,
    bundle: Bundle,
    ids: list[str],
    as_of: date,
    *,
    serving_rows: bool = True,
    with_features: bool = False,
) -> PartitionScores:
    """Score one sorted partition of stored customer ids (see
    :meth:`~features.store.EventStore.iter_customer_partitions`): the unit of work of
    :func:`score_batch`, in this process or another. ``with_features`` adds the scored
    feature rows as columns (what ``tijdig monitor drift --scores`` needs)."""
    seconds: dict[str, float] = {}
    serving = ServingRows(store, enabled=serving_rows)
    state = serving.partition_state(bundle, ids, as_of, timings=seconds, contiguous=True)
    return _scores(bundle, state, ids, as_of, seconds, with_features=with_features)


def score_bucket(
    offline: OfflineEvents,
    bucket: int,
    bundle: Bundle,
    as_of: date,
    *,
    reasons: bool = True,
    with_features: bool = False,
    read: tuple[dict[str, dict[str, Any]], float] | None = None,
) -> PartitionScores:
    """Score one customer bucket of the offline copy: the cold path, every customer
    computed from their events (read from Parquet, no SQL), with the one feature
    definition (:func:`models.serving.compute_state`, what :func:`score_partition` does
    for the customers without a valid serving row). ``reasons=False`` leaves the reason
    columns empty: a flagged customer's reasons then come on first request from the
    online path. Nothing is written back (the copy is read-only here). ``read``: the
    bucket's columns already read (:func:`_read_bucket`, e.g. ahead in a thread)."""
    from features.events import EventArrays
    from models.serving import compute_state

    seconds: dict[str, float] = {}
    columns, seconds["offline read"] = read if read is not None else _read_bucket(offline, bucket)
    ids = [str(c) for c in columns["customers"]["customer_id"].to_pylist()]
    lap = time.perf_counter()
    events = EventArrays.from_columns(columns, ids)
    del columns
    seconds["event arrays"] = time.perf_counter() - lap
    lap = time.perf_counter()
    state = compute_state(bundle, events, as_of, contributions=False)
    seconds["features, predict"] = time.perf_counter() - lap
    return _scores(bundle, state, ids, as_of, seconds, with_features=with_features, reasons=reasons)


def _scores(
    bundle: Bundle,
    state: ServingState,
    ids: list[str],
    as_of: date,
    seconds: dict[str, float],
    *,
    with_features: bool,
    reasons: bool = True,
) -> PartitionScores:
    """Bands, flags and (for the flagged only) reasons of a scored partition, as rows."""
    import pyarrow as pa

    k = bundle.policy.top_reasons
    threshold = bundle.policy.early_warning_threshold
    edges, labels = _band_table(bundle.policy)
    p = state.probability
    started = time.perf_counter()
    flagged = np.flatnonzero(p >= threshold)
    codes = np.full((len(ids), k), "", dtype=object)
    if flagged.size and reasons:
        contrib = state.contributions_of(bundle, flagged.tolist())
        codes[flagged] = top_reason_codes(
            contrib[:, :-1], state.X[flagged], bundle.feature_names, k
        )
    if reasons:
        seconds["reasons (flagged only)"] = time.perf_counter() - started
    band = labels[np.searchsorted(edges, p, side="right")]
    table = pa.table(
        {
            "customer_id": pa.array(ids, pa.string()),
            "as_of": pa.array(np.full(len(ids), np.datetime64(as_of, "D"))),
            "probability": pa.array(p),
            "band": pa.array(band.tolist(), pa.string()),
            "early_warning": pa.array(p >= threshold),
            **{f"reason_{j + 1}": pa.array(codes[:, j].tolist(), pa.string()) for j in range(k)},
            "model_version": pa.array([bundle.version] * len(ids), pa.string()),
            "policy_version": pa.array([bundle.policy.version] * len(ids), pa.string()),
            **(
                {n: pa.array(state.X[:, j]) for j, n in enumerate(bundle.feature_names)}
                if with_features
                else {}
            ),
        }
    )
    return PartitionScores(table, int(flagged.size), int(state.materialised.sum()), seconds)


def score_batch(
    store: EventStore | None,
    bundle: Bundle,
    as_of: date,
    out: Path,
    *,
    partition_size: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
    serving_rows: bool = True,
    workers: int = 1,
    executor: Executor | None = None,
    with_features: bool = False,
    source: OfflineEvents | None = None,
    reasons: bool = True,
    threads: int | None = None,
) -> BatchReport:
    """Score every stored customer at ``as_of``; write ``out`` (Parquet). Returns timings.

    With ``serving_rows`` (default) valid materialised rows are read instead of the
    histories, and the rows computed for the others are stored (so the nightly batch also
    warms the real-time path); without, every customer is computed from the events.

    ``workers`` > 1 scores partitions in that many processes (spawned; each opens the
    store by its URL and predicts on its share of the cores), with partitions made small
    enough that every worker gets several. ``executor`` takes any
    :class:`concurrent.futures.Executor` instead, e.g. a Dask cluster's
    ``distributed.Client(...).get_executor()``: the work is :func:`score_partition` of a
    partition of ids, and what crosses to the worker is the store's URL, the bundle and
    the ids. The output is the same file, rows in customer order, whoever scored them.
    ``with_features`` writes every scored feature as a column too (drift monitoring).

    ``source``: score from this offline copy instead (``store`` may then be None): one
    task per customer bucket (:func:`score_bucket`), every customer computed from their
    events, no serving rows read or written; rows in bucket order, customers sorted
    within a bucket. ``reasons=False`` skips the SHAP reasons of the flagged (they come on
    first request). ``threads``: LightGBM threads per task (default: this machine's cores
    shared by ``workers``).
    """
    if partition_size < 1:
        raise ValueError(f"partition_size must be >= 1; got {partition_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    if source is None and store is None:
        raise ValueError("score_batch needs a store or an offline source; got neither")
    import pyarrow.parquet as pq

    report = BatchReport(workers=workers)
    total = source.count() if source is not None else _required(store).count("customers")
    per_task = threads if threads is not None else max(1, (os.cpu_count() or 1) // workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None

    def write(part: PartitionScores) -> None:
        nonlocal writer
        started = time.perf_counter()
        if writer is None:
            writer = pq.ParquetWriter(out, part.table.schema)
        writer.write_table(part.table)
        report.add("parquet write", time.perf_counter() - started)
        for step, s in part.seconds.items():
            report.add(step, s)
        report.customers += part.table.num_rows
        report.materialised += part.materialised
        report.flagged += part.flagged
        if progress:
            progress(report.customers, total)

    try:
        if source is not None:
            _score_offline(
                source, bundle, as_of, write, workers, executor, per_task, reasons, with_features
            )
        elif executor is None and workers == 1:
            store = _required(store)
            for ids in store.iter_customer_partitions(partition_size):
                write(
                    score_partition(
                        store,
                        bundle,
                        ids,
                        as_of,
                        serving_rows=serving_rows,
                        with_features=with_features,
                    )
                )
        else:
            store = _required(store)
            size = min(partition_size, max(1_000, math.ceil(total / (4 * workers))))
            _in_order(
                executor,
                workers,
                (
                    (
                        _score_partition_elsewhere,
                        store.url,
                        store.schema,
                        bundle,
                        ids,
                        as_of,
                        serving_rows,
                        per_task,
                        with_features,
                    )
                    for ids in store.iter_customer_partitions(size)
                ),
                2 * workers,
                write,
            )
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # empty store: still write an empty, typed file
        pd.DataFrame(
            columns=["customer_id", "as_of", "probability", "band", "early_warning"]
        ).to_parquet(out)
    return report


def _required(store: EventStore | None) -> EventStore:
    if store is None:
        raise ValueError("score_batch needs a store or an offline source; got neither")
    return store


def _score_offline(
    source: OfflineEvents,
    bundle: Bundle,
    as_of: date,
    write: Callable[[PartitionScores], None],
    workers: int,
    executor: Executor | None,
    threads: int,
    reasons: bool,
    with_features: bool,
) -> None:
    """:func:`score_batch` from the offline copy: a task per bucket, here or on
    ``executor`` (what crosses to a worker: the copy's path, the bundle, a bucket)."""
    buckets = list(source.buckets)
    if executor is None and workers == 1:
        # the next bucket is read in a thread while this one is computed: Arrow's read
        # and decode run without the GIL, so the read leaves the critical path
        with ThreadPoolExecutor(1) as reader, max_threads(threads):
            reads = deque(reader.submit(_read_bucket, source, b) for b in buckets[:1])
            for i, b in enumerate(buckets):
                if i + 1 < len(buckets):  # the next read starts before this bucket scores
                    reads.append(reader.submit(_read_bucket, source, buckets[i + 1]))
                read = reads.popleft().result()
                write(
                    score_bucket(
                        source,
                        b,
                        bundle,
                        as_of,
                        reasons=reasons,
                        with_features=with_features,
                        read=read,
                    )
                )
                del read  # before the next read starts: two buckets in memory, not three
        return
    _in_order(
        executor,
        workers,
        (
            (
                _score_bucket_elsewhere,
                str(source.root),
                b,
                bundle,
                as_of,
                threads,
                reasons,
                with_features,
            )
            for b in buckets
        ),
        2 * workers,
        write,
    )


def _read_bucket(source: OfflineEvents, bucket: int) -> tuple[dict[str, dict[str, Any]], float]:
    """A bucket's columns for :func:`score_bucket` and the seconds the read took."""
    started = time.perf_counter()
    columns = source.read_bucket_columns(bucket)
    return columns, time.perf_counter() - started


def _in_order(
    executor: Executor | None,
    workers: int,
    calls: Iterable[tuple[Any, ...]],
    in_flight: int,
    write: Callable[[PartitionScores], None],
) -> None:
    """Submit each ``(function, *args)`` of ``calls`` to ``executor`` (None: a pool of
    ``workers`` spawned processes, closed after) with at most ``in_flight`` pending, and
    ``write`` the results in submission order (so the file is the same whoever scored
    each part)."""
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(
                ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
            )
        pending: deque[Future[PartitionScores]] = deque()
        for fn, *args in calls:
            pending.append(executor.submit(fn, *args))
            if len(pending) >= in_flight:
                write(pending.popleft().result())
        while pending:
            write(pending.popleft().result())


def _score_bucket_elsewhere(
    root: str,
    bucket: int,
    bundle: Bundle,
    as_of: date,
    threads: int,
    reasons: bool,
    with_features: bool,
) -> PartitionScores:
    """:func:`score_bucket` in a worker process or Dask worker, LightGBM held to
    ``threads``."""
    from features.offline import OfflineEvents

    with max_threads(threads):
        return score_bucket(
            OfflineEvents(Path(root)),
            bucket,
            bundle,
            as_of,
            reasons=reasons,
            with_features=with_features,
        )


_worker_stores: dict[tuple[str, str | None], EventStore] = {}


def _score_partition_elsewhere(
    url: str,
    schema: str | None,
    bundle: Bundle,
    ids: list[str],
    as_of: date,
    serving_rows: bool,
    threads: int,
    with_features: bool = False,
) -> PartitionScores:
    """:func:`score_partition` in a worker process: the store opened once per process,
    LightGBM held to this worker's share of the cores."""
    store = _worker_stores.get((url, schema))
    if store is None:
        store = _worker_stores[(url, schema)] = EventStore(url, schema)
    with max_threads(threads):
        return score_partition(
            store, bundle, ids, as_of, serving_rows=serving_rows, with_features=with_features
        )


@functools.lru_cache(maxsize=8)
def _band_table(policy: RiskPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``policy.band``: upper edges and labels, probed from the policy itself
    (10,001 calls, ~14 ms: once per policy and process, not once per partition)."""
    grid = np.linspace(0.0, 1.0, 10_001)
    names = np.array([policy.band(float(x)).value for x in grid], dtype=object)
    change = np.flatnonzero(names[1:] != names[:-1]) + 1
    edges = grid[change]
    labels = np.concatenate([[names[0]], names[change]])
    return edges, labels

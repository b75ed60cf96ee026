"""Training data built partition by partition: never every event in memory at once.

:func:`training.pipeline.read_events` holds the whole event history while the snapshots
are built (about 5 GB of :class:`EventArrays` at 1,000,000 customers, beside a matrix of
as much). Here each customer partition of a :class:`~training.partitions.PartitionSource`
is read, turned into what training needs of it, and dropped:

- its snapshot rows at the dates that fall in a segment of the out-of-time split (the
  purged dates between segments are never built),
- the second-reminder rule at its validation rows, its debit rows
  (``training.debit_failure``) and arrangement rows (``training.plan_kept``),
- its customers table (for the fairness groups).

Everything a customer contributes depends on their own events only, plus two global
facts read first (:meth:`PartitionSource.day_bounds`): the snapshot dates and the last
event day. So the rows and values equal those of the whole-history path, in the same
order (test: ``tests/training/test_partitioned.py``), and so does the fitted model.

:func:`partition_rows` is a pure function of one partition's frames: a Dask worker runs
it as well as this process (:mod:`training.dask_training`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.build import FEATURE_NAMES, build_features
from features.events import EventArrays, Table, to_day
from features.labels import LabelConfig, make_labels
from training.components import Precomputed
from training.dataset import (
    SNAPSHOT_DTYPE,
    Snapshots,
    _segment_dates,
    monthly_dates_between,
    second_reminder_rule,
)
from training.partitions import DayBounds, PartitionSource, in_sample
from training.rejected import TrainingDataRejected

TRAIN, CALIBRATION, VALIDATION, PURGED = "train", "calibration", "validation", "purged"


@dataclass(frozen=True)
class SnapshotPlan:
    """Which snapshot rows to build, decided before any partition is read.

    ``segments[k]`` is the out-of-time segment of ``dates[k]`` (or ``"purged"``: not
    built unless ``all_dates``). ``sample_fraction`` < 1 keeps the train and calibration
    rows of a customer-hash sample only (:func:`training.partitions.in_sample`); the
    validation rows stay every customer's, so the out-of-time figures compare.
    """

    dates: tuple[date, ...]
    segments: tuple[str, ...]
    label_config: LabelConfig
    last_event_day: int
    sample_fraction: float = 1.0
    all_dates: bool = False
    #: build the component rows (debit attempts, arrangements) too
    components: bool = True

    def built(self) -> list[int]:
        """Positions of the dates whose rows are built."""
        return [k for k, s in enumerate(self.segments) if self.all_dates or s != PURGED]


def plan_snapshots(
    bounds: DayBounds | None,
    label_config: LabelConfig,
    validation_dates: int = 3,
    calibration_dates: int = 2,
    *,
    sample_fraction: float = 1.0,
    all_dates: bool = False,
) -> SnapshotPlan:
    """The monthly snapshot dates of a history with ``bounds`` and their segments (the
    same dates and split as :func:`training.dataset.monthly_as_of_dates` and
    :func:`training.dataset.out_of_time_split` give on the whole history)."""
    if bounds is None:
        raise TrainingDataRejected("no events: cannot place snapshot dates; ingest first")
    dates = monthly_dates_between(bounds.first, bounds.last, label_config)
    days = np.array([to_day(d) for d in dates], dtype=np.int64)
    train, cal, val = _segment_dates(
        days, label_config.horizon_days, validation_dates, calibration_dates
    )
    segment = {
        **{int(d): TRAIN for d in train},
        **{int(d): CALIBRATION for d in cal},
        **{int(d): VALIDATION for d in val},
    }
    return SnapshotPlan(
        tuple(dates),
        tuple(segment.get(int(d), PURGED) for d in days),
        label_config,
        bounds.last_event,
        sample_fraction,
        all_dates,
    )


@dataclass
class PartitionRows:
    """What training keeps of one partition (customer positions local to it)."""

    customer_ids: np.ndarray
    customers: Table
    #: per built date (``SnapshotPlan.built()`` order): features, labels, customers
    X: list[np.ndarray]
    y: list[np.ndarray]
    cust: list[np.ndarray]
    #: per built date: the second-reminder rule of its rows (validation dates only)
    rule: list[np.ndarray | None]
    debit_rows: Any = None
    arrangement_rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    def nbytes(self) -> int:
        """Bytes of the arrays kept (the partition's share of training's memory)."""
        arrays = [*self.X, *self.y, *self.cust, *(r for r in self.rule if r is not None)]
        if self.debit_rows is not None:
            arrays += [self.debit_rows.X, self.debit_rows.y]
        if self.arrangement_rows is not None:
            arrays += list(self.arrangement_rows)
        return int(sum(a.nbytes for a in arrays))


def partition_rows(frames: dict[str, pd.DataFrame], plan: SnapshotPlan) -> PartitionRows:
    """One partition's snapshot rows (and component rows) from its event frames."""
    from training.debit_failure import build_debit_rows
    from training.plan_kept import arrangement_rows

    events = EventArrays.from_frames(frames)
    sampled = (
        in_sample(events.customer_ids, plan.sample_fraction) if plan.sample_fraction < 1 else None
    )
    out = PartitionRows(events.customer_ids, events.customers, [], [], [], [])
    for k in plan.built():
        as_of, segment = plan.dates[k], plan.segments[k]
        labels = make_labels(events, as_of, plan.label_config)
        keep = labels.eligible
        if sampled is not None and segment != VALIDATION:
            keep = keep & sampled
        rows = np.flatnonzero(keep)
        out.X.append(build_features(events, as_of)[rows].astype(SNAPSHOT_DTYPE))
        out.y.append(labels.y[rows])
        out.cust.append(rows.astype(np.int64))
        if segment == VALIDATION:
            day = np.full(rows.size, to_day(as_of), dtype=np.int64)
            snaps = Snapshots(out.X[-1], out.y[-1], out.cust[-1], day)
            out.rule.append(second_reminder_rule(events, snaps))
        else:
            out.rule.append(None)
    if plan.components:
        out.debit_rows = build_debit_rows(events)
        out.arrangement_rows = arrangement_rows(events, last_day=plan.last_event_day)
    return out


@dataclass
class PartitionedData:
    """Training's inputs from every partition: the snapshots (dates in the split only),
    the customers-only events and the precomputed event-derived rows for
    :func:`training.train.train_candidate`."""

    snapshots: Snapshots
    events: EventArrays  # customer ids and the customers table; no event rows
    precomputed: Precomputed
    plan: SnapshotPlan
    #: per-partition measurements: customers, kept bytes, seconds (for the scaling docs)
    partitions: list[dict[str, float]] = field(default_factory=list)


def build_partitioned(
    source: PartitionSource,
    plan: SnapshotPlan,
    progress: Callable[[int, int], None] | None = None,
) -> PartitionedData:
    """Read ``source`` one partition at a time in this process (see the module doc)."""
    import time

    keys = source.partition_keys()
    parts, stats = [], []
    for done, key in enumerate(keys, 1):
        started = time.perf_counter()
        part = partition_rows(source.read(key), plan)
        stats.append(
            {"customers": part.n, "bytes": part.nbytes(), "s": time.perf_counter() - started}
        )
        parts.append(part)
        if progress:
            progress(done, len(keys))
    data = assemble(parts, plan)
    data.partitions = stats
    return data


def assemble(parts: Iterable[PartitionRows], plan: SnapshotPlan) -> PartitionedData:
    """The partitions' rows stacked as the whole-history path stacks them: date by date,
    customers in partition order within a date. Each partition's blocks are released as
    they are copied, so the peak is the matrix plus one date's blocks."""
    parts = list(parts)
    if not parts or sum(p.n for p in parts) == 0:
        raise TrainingDataRejected("the event source holds no customers; ingest events first")
    offsets = np.cumsum([0, *(p.n for p in parts[:-1])])
    built = plan.built()
    sizes = [sum(len(p.y[j]) for p in parts) for j in range(len(built))]
    X = np.empty((sum(sizes), len(FEATURE_NAMES)), dtype=SNAPSHOT_DTYPE)
    y: list[np.ndarray] = []
    cust: list[np.ndarray] = []
    as_of: list[np.ndarray] = []
    rule: list[np.ndarray] = []
    row = 0
    for j, k in enumerate(built):
        for p, offset in zip(parts, offsets, strict=True):
            block = p.X[j]
            X[row : row + len(block)] = block
            row += len(block)
            p.X[j] = block[:0]  # release the partition's copy
            y.append(p.y[j])
            cust.append(p.cust[j] + offset)
            flags = p.rule[j]
            if flags is not None:
                rule.append(flags)
        as_of.append(np.full(sizes[j], to_day(plan.dates[k]), dtype=np.int64))
    snaps = Snapshots(
        X=X, y=np.concatenate(y), customer=np.concatenate(cust), as_of=np.concatenate(as_of)
    )
    customers = _concat_customers(parts)
    events = replace(EventArrays.from_frames({}), customer_ids=customers[0], customers=customers[1])
    precomputed = Precomputed(
        rule_second_reminder=np.concatenate(rule) if rule else np.zeros(0),
        debit_rows=_concat_debit_rows(parts, offsets) if plan.components else None,
        arrangement_rows=_concat_arrangements(parts) if plan.components else _no_arrangements(),
    )
    return PartitionedData(snaps, events, precomputed, plan)


def _concat_customers(parts: list[PartitionRows]) -> tuple[np.ndarray, Table]:
    offsets = np.cumsum([0, *(p.n for p in parts[:-1])])
    cols = {
        name: np.concatenate(
            [
                p.customers[name] + (o if name == "cust" else 0)
                for p, o in zip(parts, offsets, strict=True)
            ]
        )
        for name in parts[0].customers.cols
    }
    return np.concatenate([p.customer_ids for p in parts]), Table(cols)


def _concat_debit_rows(parts: list[PartitionRows], offsets: np.ndarray) -> Any:
    """Every partition's debit rows in the whole-history order: by month, then partition
    by partition (a stable sort keeps each partition's own order within a month)."""
    from training.debit_failure import DebitRows

    rows = [p.debit_rows for p in parts]
    X = np.concatenate([r.X for r in rows])
    as_of = np.concatenate([r.as_of for r in rows])
    order = np.argsort(as_of, kind="stable")
    return DebitRows(
        X[order],
        np.concatenate([r.y for r in rows])[order],
        as_of[order],
        np.concatenate([r.cust + o for r, o in zip(rows, offsets, strict=True)])[order],
    )


def _concat_arrangements(parts: list[PartitionRows]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [p.arrangement_rows for p in parts if p.arrangement_rows is not None]
    return (
        np.concatenate([r[0] for r in rows]),
        np.concatenate([r[1] for r in rows]),
        np.concatenate([r[2] for r in rows]),
    )


def _no_arrangements() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((0, 0)), np.zeros(0, int), np.zeros(0, np.int64)

"""Event partition sources: the events of a population, one customer partition at a time.

Training at scale never holds every event at once (see :mod:`training.partitioned`): it
reads one partition of customers, keeps what training needs of it, and drops its events.
A source says how to read the partitions (the transactional event store, or the Parquet
offline copy of :mod:`features.offline`); a *partition key* is what a worker needs to read
one partition on its own (a list of customer ids, or a bucket number), so the same
source also drives a Dask cluster (:mod:`training.dask_training`).

Customers are visited in a fixed order (partition by partition, each partition's
customers sorted by id), which fixes the row order of the training matrix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.events import NEVER, EventArrays

#: Customers per store partition: a partition's frames and their conversion to
#: :class:`EventArrays` take about 60 KB per customer for a while (0.6 GB at this size).
STORE_PARTITION_CUSTOMERS = 10_000

#: Tables that date the history -> (date column, :class:`EventArrays` table, its day
#: column): the first three place the monthly snapshot dates
#: (:func:`training.dataset.monthly_as_of_dates`), all six the last event day
#: (``training.plan_kept``).
DATING = {
    "invoices": ("issue_date", "invoices", "issue_day"),
    "payments": ("paid_at", "payments", "day"),
    "income_receipts": ("received_at", "income", "day"),
    "debit_attempts": ("attempted_at", "debits", "day"),
    "collection_steps": ("step_date", "steps", "day"),
    "account_balances": ("observed_at", "balances", "day"),
}
_SNAPSHOT_DATING = ("invoices", "payments", "income_receipts")


@dataclass(frozen=True)
class DayBounds:
    """Days (since 1970-01-01) that date a history: ``first``/``last`` over invoices,
    payments and income (the snapshot dates), ``last_event`` over every dated table."""

    first: int
    last: int
    last_event: int

    @classmethod
    def of(cls, events: EventArrays) -> DayBounds | None:
        """The bounds of one batch of events (None when it holds no dated event)."""
        found: dict[str, tuple[int, int]] = {}
        for table, (_, name, column) in DATING.items():
            days = getattr(events, name)[column]
            days = days[days < NEVER]
            if days.size:
                found[table] = (int(days.min()), int(days.max()))
        return cls.merge_found(found)

    @classmethod
    def merge_found(cls, found: dict[str, tuple[int, int]]) -> DayBounds | None:
        snap = [found[t] for t in _SNAPSHOT_DATING if t in found]
        if not snap:
            return None
        return cls(
            min(a for a, _ in snap), max(b for _, b in snap), max(b for _, b in found.values())
        )

    def merge(self, other: DayBounds | None) -> DayBounds:
        if other is None:
            return self
        return DayBounds(
            min(self.first, other.first),
            max(self.last, other.last),
            max(self.last_event, other.last_event),
        )


class PartitionSource(Protocol):
    """Where a population's events are read one customer partition at a time."""

    def partition_keys(self) -> list[Any]:
        """One picklable key per partition, in the population's customer order."""
        ...

    def read(self, key: Any) -> dict[str, pd.DataFrame]:
        """The event tables of one partition (as :meth:`EventStore.read_frames`)."""
        ...

    def day_bounds(self) -> DayBounds | None:
        """The dating bounds of the whole population (None when it holds no events)."""
        ...

    def customers(self) -> int:
        """How many customers the population holds."""
        ...

    def describe(self) -> str:
        """Where the events come from, for reports (no credentials)."""
        ...


class StorePartitions:
    """Partitions of :data:`STORE_PARTITION_CUSTOMERS` customers of an event store, read
    by SQL (``store_url``: what the worker connects to; one engine per process)."""

    def __init__(self, store_url: str, partition_customers: int = STORE_PARTITION_CUSTOMERS):
        self.store_url = store_url
        self.partition_customers = partition_customers

    def _store(self) -> Any:
        from features.store import EventStore

        return EventStore(self.store_url)

    def partition_keys(self) -> list[Any]:
        store = self._store()
        try:
            return list(store.iter_customer_partitions(self.partition_customers))
        finally:
            store.dispose()

    def read(self, key: Any) -> dict[str, pd.DataFrame]:
        store = _worker_store(self.store_url)
        frames: dict[str, pd.DataFrame] = store.read_frames(key)
        return frames

    def day_bounds(self) -> DayBounds | None:
        """Minimum and maximum of each dating column, by SQL (no rows read)."""
        import sqlalchemy as sa

        store = self._store()
        found: dict[str, tuple[int, int]] = {}
        try:
            with store.engine.connect() as conn:
                for table, (column, _, _) in DATING.items():
                    lo, hi = conn.execute(
                        sa.text(f"SELECT MIN({column}), MAX({column}) FROM {table}")
                    ).one()
                    if lo is not None:
                        found[table] = (_day(lo), _day(hi))
        finally:
            store.dispose()
        return DayBounds.merge_found(found)

    def customers(self) -> int:
        store = self._store()
        try:
            return int(store.count("customers"))
        finally:
            store.dispose()

    def describe(self) -> str:
        from features.db import public_url

        return f"event store {public_url(self.store_url)}"


_STORES: dict[str, Any] = {}


def _worker_store(url: str) -> Any:
    """One :class:`EventStore` per process and URL (a Dask worker reads many partitions)."""
    if url not in _STORES:
        from features.store import EventStore

        _STORES[url] = EventStore(url)
    return _STORES[url]


def _day(value: Any) -> int:
    from features.events import to_day

    return to_day(pd.Timestamp(value).date())


class OfflinePartitions:
    """The buckets of the Parquet offline copy at ``root`` (:class:`features.offline.OfflineEvents`)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _offline(self) -> Any:
        from features.offline import OfflineEvents  # type: ignore[import-not-found,unused-ignore]

        return OfflineEvents(self.root)

    def partition_keys(self) -> list[Any]:
        return list(self._offline().buckets)

    def read(self, key: Any) -> dict[str, pd.DataFrame]:
        frames: dict[str, pd.DataFrame] = self._offline().read_bucket(key)
        return frames

    def day_bounds(self) -> DayBounds | None:
        """A pass over the buckets' dated tables (Parquet reads are cheap)."""
        offline = self._offline()
        bounds: DayBounds | None = None
        for bucket in offline.buckets:
            frames = offline.read_bucket(bucket, tables=["customers", *DATING])
            part = DayBounds.of(EventArrays.from_frames(frames))
            bounds = part if bounds is None else bounds.merge(part)
        return bounds

    def customers(self) -> int:
        return int(self._offline().count())

    def describe(self) -> str:
        return f"offline copy {self.root}"


def in_sample(customer_ids: Sequence[str] | np.ndarray, fraction: float) -> np.ndarray:
    """Whether each customer falls in a ``fraction`` sample drawn by a hash of its id.

    The same customers are drawn whatever the partitioning, order or machine (BLAKE2b of
    the id's UTF-8 bytes, read as a number in [0, 1)), so a sample is reproducible and a
    larger fraction's sample contains a smaller one's.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"a sample fraction must lie in (0, 1]; got {fraction}")
    if fraction == 1:
        return np.ones(len(customer_ids), dtype=bool)
    cut = int(fraction * 2**64)
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(c).encode(), digest_size=8).digest(), "big") < cut
            for c in customer_ids
        ),
        dtype=bool,
        count=len(customer_ids),
    )

"""The state every part of the decision log shares: its settings, engine, SQLite's own
connections and statements, the writer's queue and the loops' pending rows.

:class:`~service.decision_log.log.DecisionLog` is assembled from mixins over this base:
the writer thread (``writer``), the on-loop path (``loop``) and the reads (``queries``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.decision_log.database import DecisionLogUnavailable, DirectInsert, DirectStatement
from service.decision_log.keys import KeyStatements
from service.decision_log.records import Decision
from service.decision_log.retention import LEGAL_MIN_RETENTION_DAYS, check_min_retention


class DecisionLogBase:
    """The decision log's shared state (see :class:`~service.decision_log.DecisionLog`
    for the parameters)."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 512,
        max_queue: int = 20_000,
        min_retention_days: int = LEGAL_MIN_RETENTION_DAYS,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError(
                f"batch_size and max_queue must be positive; got {batch_size}, {max_queue}"
            )
        self.url = url
        self.min_retention_days = check_min_retention(min_retention_days)
        self.batch_size = batch_size
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self.committed = 0  # rows committed since open (for metrics and tests)
        self._sqlite_insert: DirectInsert | None = None  # set by open() on SQLite
        self._sqlite_keys: KeyStatements | None = None  # likewise
        self._sqlite_pay_later: DirectStatement | None = None  # likewise
        self._writer_conn: Any = None  # the writer thread's own connection (SQLite)
        self._loop_conn: Any = None  # the event loops' connection (SQLite), see log()
        self._loop_conn_lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[list[Decision], Any]]] = {}
        self._rows_since_checkpoint = 0

    @property
    def engine(self) -> Engine:
        """The open log's engine (:class:`DecisionLogUnavailable` when it is not open)."""
        if self._engine is None:
            raise DecisionLogUnavailable("decision log is not open")
        return self._engine

    def ping(self) -> None:
        """Run ``SELECT 1``: raises when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))

""":class:`DecisionLog`, assembled from its parts, and its lifecycle (open, close)."""

from __future__ import annotations

from service.decision_log.database import (
    DirectInsert,
    DirectStatement,
    create_tables,
    make_engine,
)
from service.decision_log.keys import KeyStatements
from service.decision_log.loop import LoopPath
from service.decision_log.queries import PAY_LATER_DECISIONS, Queries
from service.decision_log.records import (
    add_client_column,
    add_pay_later_index,
    decisions,
    metadata,
)
from service.decision_log.shadow import ShadowRows


class DecisionLog(LoopPath, Queries, ShadowRows):
    """Durable, batched decision log. Open with :meth:`open`, stop with :meth:`close`.

    Writing: :meth:`log` from an event loop (``loop``), :meth:`submit` and :meth:`write`
    through the writer thread (``writer``); reading, reviews, purge and export in
    ``queries``; the shadow challenger's rows in ``shadow``.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the log database.
    batch_size : int, default 512
        Most rows committed in one transaction.
    max_queue : int, default 20_000
        Most submissions waiting for the writer; beyond it :meth:`submit` refuses.
    min_retention_days : int, default 183
        The purge never deletes decisions younger than this; at least 183 (the legal
        floor, :mod:`~service.decision_log.retention`).
    """

    def open(self) -> DecisionLog:
        """Connect, create the tables if needed and start the writer thread."""
        self._engine = make_engine(self.url)
        create_tables(self._engine, metadata)  # several workers may open a fresh log at once
        add_client_column(self._engine)  # a log from before tenants
        add_pay_later_index(self._engine)  # a log from before the decline memory's index
        if self._engine.dialect.name == "sqlite":
            self._sqlite_insert = DirectInsert(decisions, self._engine.dialect)
            self._sqlite_keys = KeyStatements(self._engine.dialect)
            self._sqlite_pay_later = DirectStatement(PAY_LATER_DECISIONS, self._engine.dialect)
            # The writer's own connection for its whole life, busy handler off (the
            # writer polls for the lock itself, see WriterThread._insert): a pool
            # checkout, its reset and two PRAGMAs per commit were ~30 µs of every
            # request's share.
            self._writer_conn = self._engine.raw_connection()
            self._writer_conn.driver_connection.execute("PRAGMA busy_timeout=0")
            self._loop_conn = self._engine.raw_connection()
            self._loop_conn.driver_connection.execute("PRAGMA busy_timeout=0")
            self._loop_conn.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        self._start_writer()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit everything queued, stop the writer and release the database."""
        self._hand_pending_to_writer()
        self._stop_writer(timeout_s)
        with self._loop_conn_lock:
            for conn in (self._writer_conn, self._loop_conn):
                if conn is not None:
                    conn.close()  # back to the pool, to be disposed with it
            self._writer_conn = self._loop_conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

"""The decision log's writer thread: group commit of the submissions queued for it.

Callers hand their rows to :meth:`WriterThread.submit` (a bounded queue, never blocks the
event loop) and get a future; one writer thread takes whatever is queued (up to
``batch_size`` rows), inserts it in one transaction and resolves the futures, so
concurrent requests share one commit instead of paying one each. A full queue (the
database stalled) is refused with :class:`DecisionLogUnavailable` rather than holding
memory or blocking: no answer without a log entry. PostgreSQL always commits here (a
network round trip must not block the loop); on SQLite, the loop's batches come here when
another process holds the write lock, and the writer runs the WAL checkpoints the loop's
connection never does.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import structlog

from service.decision_log.base import DecisionLogBase
from service.decision_log.database import DecisionLogUnavailable, commit_failed, sqlite_busy
from service.decision_log.keys import (
    SqlAlchemyKeyOps,
    SqliteKeyOps,
    bind_keys,
    forget_bindings,
    logged_count,
)
from service.decision_log.records import Decision, decisions

_log = structlog.get_logger("tijdig.decision_log")

_STOP = object()
_CHECKPOINT = object()
SQLITE_LOCK_WAIT_S = 5.0  # the writer gives up (503 to the requests) after this long


class _CallerGaveUp(Exception):
    """A submission of the batch being committed was cancelled (its caller's wait timed
    out and it answered that no decision was given): the transaction is rolled back and
    the batch committed again without it."""


def _claim(batch: Sequence[tuple[list[Decision], Future[int]]]) -> bool:
    """Mark each submission of ``batch`` not yet claimed as running, just before its rows
    are committed; False when one was cancelled instead (its caller gave up). Once
    claimed (running), a submission can no longer be cancelled, so what is committed is
    answered. Only the writer marks its futures running."""
    every = True
    for _, fut in batch:
        if not fut.running() and not fut.set_running_or_notify_cancel():
            every = False
    return every


class WriterThread(DecisionLogBase):
    """The writer thread and its submissions (a mixin of :class:`DecisionLog`)."""

    def _start_writer(self) -> None:
        self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._thread.start()

    def _stop_writer(self, timeout_s: float) -> None:
        """Let the writer commit everything queued, then stop it."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout_s)
        self._thread = None

    def _ask_for_checkpoint(self) -> None:
        with contextlib.suppress(queue.Full):  # the next one will ask again
            self._queue.put_nowait(_CHECKPOINT)

    def submit(self, rows: Sequence[Decision]) -> Future[int]:
        """Queue decisions for the writer; the future resolves once they are committed.

        Raises :class:`DecisionLogUnavailable`
        when the writer is not running or the queue is full (never blocks).
        """
        fut: Future[int] = Future()
        if self._thread is None or not self._thread.is_alive():
            raise DecisionLogUnavailable("decision log writer is not running")
        try:
            self._queue.put_nowait((list(rows), fut))
        except queue.Full as exc:
            raise DecisionLogUnavailable("decision log queue is full") from exc
        return fut

    def write(self, rows: Sequence[Decision], timeout_s: float = 10.0) -> int:
        """Submit and wait for the commit (synchronous callers)."""
        return self.submit(rows).result(timeout_s)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Return once everything submitted before the call is committed."""
        if self._thread is not None and self._thread.is_alive():
            self.submit([]).result(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _CHECKPOINT:
                self._checkpoint()
                continue
            stop = item is _STOP
            batch = [] if stop else [item]
            rows = 0 if stop else len(item[0])
            while not stop and rows < self.batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _CHECKPOINT:
                    continue  # the commit below may checkpoint by itself; else the next ask
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
                rows += len(nxt[0])
            if stop:  # drain what is left, then leave
                while True:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is not _STOP and nxt is not _CHECKPOINT:
                        batch.append(nxt)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database without waiting for readers (PASSIVE), on
        the writer thread: the loops' connection never checkpoints by itself."""
        try:
            self._writer_conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # a missed checkpoint only lets the WAL grow until the next
            _log.warning("decision_log_checkpoint_failed", error=f"{type(exc).__name__}: {exc}")

    def _commit(self, batch: list[tuple[list[Decision], Future[int]]]) -> None:
        """Commit the submissions of ``batch``; each is claimed (marked running) only once
        the write lock is held and its rows are written, just before the commit, so a
        caller that gave up while the writer waited for the lock is left out, never
        logged after it answered that no decision was given."""
        live = [(rows_, fut) for rows_, fut in batch if not fut.cancelled()]
        rows = [d for decisions_, _ in live for d in decisions_]
        try:
            if rows:
                self._insert(rows, before_commit=lambda: _claim(live))
        except _CallerGaveUp:
            self._commit(live)  # again, without the ones that gave up
            return
        except Exception as exc:
            if len(live) > 1:  # one bad submission must not fail the others with it
                for one in live:
                    self._commit([one])
                return
            error = commit_failed(exc)
            for _, fut in live:
                if fut.running() or fut.set_running_or_notify_cancel():
                    fut.set_exception(error)
            return
        self.committed += logged_count(rows)
        for rows_, fut in live:
            if fut.running() or fut.set_running_or_notify_cancel():
                fut.set_result(logged_count(rows_))

    def _insert(self, rows: list[Decision], before_commit: Callable[[], bool]) -> None:
        if self._sqlite_insert is None:
            try:
                with self.engine.begin() as conn:
                    if any(d.idempotency is not None for d in rows):
                        # a key another transaction holds uncommitted makes this insert
                        # wait for it: no longer than the writer waits for SQLite's lock
                        conn.exec_driver_sql(
                            f"SET LOCAL lock_timeout = '{int(SQLITE_LOCK_WAIT_S * 1000)}ms'"
                        )
                    to_log = bind_keys(SqlAlchemyKeyOps(conn), rows)
                    if to_log:
                        conn.execute(decisions.insert(), [d.row() for d in to_log])
                    if not before_commit():
                        raise _CallerGaveUp
            except BaseException:
                forget_bindings(rows)
                raise
            return
        # SQLite with several uvicorn workers: each worker's writer competes for the one
        # write lock. SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries,
        # and every request waiting for that commit waited with it (p99 64 ms, max 0.85 s
        # at 2 workers x 8 requests). Instead: take the lock up front (BEGIN IMMEDIATE, so
        # nothing is written before it is held) and poll every 0.2 ms.
        deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
        dbapi = self._writer_conn.driver_connection
        while True:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not sqlite_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)
        self._commit_sqlite(dbapi, rows, before_commit)

    def _commit_sqlite(
        self,
        dbapi: Any,
        rows: Sequence[Decision],
        before_commit: Callable[[], bool] | None = None,
    ) -> None:
        """In the transaction the caller began (holding the write lock): bind the rows'
        idempotency keys, insert the decisions to log, commit; roll all of it back on any
        failure, so no binding outlives a decision that was not committed. With
        ``before_commit`` (the writer's claim of its submissions) returning False, roll
        back and raise :class:`_CallerGaveUp`. The loop path commits through it too."""
        assert self._sqlite_insert is not None and self._sqlite_keys is not None
        try:
            to_log = bind_keys(SqliteKeyOps(dbapi, self._sqlite_keys), rows)
            if to_log:
                self._sqlite_insert.executemany(dbapi, [d.row() for d in to_log])
            if before_commit is not None and not before_commit():
                raise _CallerGaveUp
            dbapi.execute("COMMIT")
        except BaseException:
            dbapi.execute("ROLLBACK")
            forget_bindings(rows)
            raise

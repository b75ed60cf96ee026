"""The decision log's on-loop path: :meth:`LoopPath.log`, what the async routes await.

On SQLite the rows of every request handled in one turn of the event loop are committed
together *on the loop thread*, by a callback scheduled right after them, on a connection
of its own. No thread hop, no cross-thread future: with the writer thread the hand-over
(queue, futures, waking the loop, the GIL passed back and forth) cost more than the
insert itself — one worker under load answered ~45 % more requests with logging stubbed
out. The commit is a ``BEGIN IMMEDIATE`` tried once: when another process holds the
write lock, the batch goes to the writer thread instead of the loop waiting for it. The
loop's connection never checkpoints the WAL (a checkpoint can take milliseconds); it asks
the writer thread to, every :data:`CHECKPOINT_EVERY_ROWS` rows. On PostgreSQL the rows go
to the writer thread.

The risk route awaits the commit before answering (setting
``decision_log_wait_for_commit``), so an answer a client holds is always in the log. With
waiting off the answer goes out at once and the row commits a few milliseconds later;
reads flush first, so a decision is always readable right after its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import structlog

from service.decision_log.database import DecisionLogUnavailable, commit_failed, sqlite_busy
from service.decision_log.keys import held_keys, logged_count
from service.decision_log.records import Decision
from service.decision_log.writer import WriterThread

_log = structlog.get_logger("tijdig.decision_log")

#: Rows committed from the event loop between two WAL checkpoints run by the writer
#: thread (about SQLite's own default of 1,000 pages: a logged row fills about a page).
CHECKPOINT_EVERY_ROWS = 1000


def _log_unawaited_failure(done: asyncio.Future[int] | Future[int]) -> None:
    """An unawaited commit that failed still says so (the caller already answered); for
    the loop's own futures and the writer thread's alike."""
    if not done.cancelled() and done.exception() is not None:
        _log.error("decision_log_commit_failed_unawaited", error=str(done.exception()))


class LoopPath(WriterThread):
    """Logging from an event loop (a mixin of :class:`DecisionLog`)."""

    async def log(
        self, rows: Sequence[Decision], *, wait: bool, timeout_s: float
    ) -> dict[str, tuple[str, str]]:
        """Log decisions from an event loop; with ``wait``, return once they are committed.

        On SQLite the rows join the loop's pending batch, committed on the loop thread by
        one callback after every request of this turn has added its rows (see the module
        docstring); elsewhere they go to the writer thread. Raises
        :class:`DecisionLogUnavailable` (the log is closed, or the commit failed) or
        ``TimeoutError`` (no commit within ``timeout_s``).

        Rows bound to an idempotency key are always awaited (whether they were logged
        decides the answer). Returns, for each row that was not logged because a
        concurrent call holds its key, decision id -> (request hash, decision id) of the
        binding that holds it (committed); empty when every row was logged.
        """
        if self._thread is None or not self._thread.is_alive():
            raise DecisionLogUnavailable("decision log writer is not running")
        wait = wait or any(d.idempotency is not None for d in rows)
        if self._loop_conn is None:  # PostgreSQL: the writer thread
            future = self.submit(rows)
            if not wait:
                future.add_done_callback(_log_unawaited_failure)
                return {}
            async with asyncio.timeout(timeout_s):
                await asyncio.wrap_future(future)
            return held_keys(rows)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush_loop_batch, loop)
        pending.append((list(rows), done))
        if not wait:
            done.add_done_callback(_log_unawaited_failure)
            return {}
        async with asyncio.timeout(timeout_s):
            await done
        return held_keys(rows)

    def _flush_loop_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the loop's pending rows on the loop thread (the callback :meth:`log`
        scheduled); the write lock held elsewhere hands them to the writer thread."""
        batch = self._pending.pop(loop, [])
        if batch:
            self._commit_from_loop(loop, batch)

    def _hand_pending_to_writer(self) -> None:
        """Rows of loops that have not flushed them yet go to the writer (at close)."""
        for loop in list(self._pending):
            self._hand_to_writer(loop, self._pending.pop(loop, []))

    def _commit_from_loop(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[list[Decision], Any]]
    ) -> None:
        rows = [d for decisions_, _ in batch for d in decisions_]
        try:
            committed = self._insert_from_loop(rows)
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail the others with it
                for one in batch:
                    self._commit_from_loop(loop, [one])
                return
            for _, done in batch:
                if not done.done():
                    done.set_exception(commit_failed(exc))
            return
        if not committed:
            self._hand_to_writer(loop, batch)
            return
        logged = logged_count(rows)
        self.committed += logged
        for decisions_, done in batch:
            if not done.done():
                done.set_result(logged_count(decisions_))
        self._rows_since_checkpoint += logged
        if self._rows_since_checkpoint >= CHECKPOINT_EVERY_ROWS:
            self._rows_since_checkpoint = 0
            self._ask_for_checkpoint()

    def _insert_from_loop(self, rows: list[Decision]) -> bool:
        """Insert and commit on the loop's connection (binding keys first); False, having
        written nothing, when the write lock is held elsewhere (the loop must not wait)."""
        if not self._loop_conn_lock.acquire(blocking=False):
            return False  # another thread's loop is committing on this connection
        try:
            if self._loop_conn is None:
                raise DecisionLogUnavailable("decision log is closed")
            dbapi = self._loop_conn.driver_connection
            try:
                dbapi.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if sqlite_busy(exc):
                    return False
                raise
            self._commit_sqlite(dbapi, rows)
            return True
        finally:
            self._loop_conn_lock.release()

    def _hand_to_writer(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[list[Decision], Any]]
    ) -> None:
        """Commit a loop's batch through the writer thread, one submission per request (so
        the writer retries a failing one alone, as the loop does); each future resolves on
        its loop. A request that stops waiting (its timeout) cancels its submission, and
        the writer then leaves its rows out (see :meth:`WriterThread._commit`)."""
        for decisions_, done in batch:
            self._hand_one_to_writer(loop, decisions_, done)

    def _hand_one_to_writer(
        self, loop: asyncio.AbstractEventLoop, decisions_: list[Decision], done: Any
    ) -> None:
        try:
            future = self.submit(decisions_)
        except DecisionLogUnavailable as exc:
            if not done.done():
                done.set_exception(exc)
            return

        def settle(result: Future[int]) -> None:
            if done.done():
                return
            if result.cancelled():
                done.cancel()
            elif (error := result.exception()) is not None:
                done.set_exception(error)
            else:
                done.set_result(logged_count(decisions_))

        def resolve_on_loop(result: Future[int]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: no one waits
                loop.call_soon_threadsafe(settle, result)

        def caller_gave_up(waited: Any) -> None:
            if waited.cancelled():
                future.cancel()  # thread-safe; no effect once the writer has claimed it

        future.add_done_callback(resolve_on_loop)
        done.add_done_callback(caller_gave_up)

"""The app's ingest pool: event batches parsed, validated and stored in processes of their
own, so a bulk upload cannot hold the interpreter of the worker that scores in real time.

Threads would not do: decoding JSON and building frames hold the GIL, and every score
request of that worker waits for it. ``ingest_workers`` processes per uvicorn worker
(0: no pool, the batch runs in the worker's threadpool) take one batch each at a time;
the route spools the body to a temporary file while it arrives and hands over the file's
path, so the worker never holds the body in memory nor parses it.

The processes come from a fork server that imported the ingest code once (a fresh child
starts in milliseconds, not the seconds an import takes), never from a fork of the worker
itself, whose LightGBM/OpenMP state does not survive one. They run at a lower CPU priority
(``ingest_worker_nice``): on shared cores the scheduler favours the scoring workers. A
process is replaced after ``ingest_worker_max_batches`` batches, so the memory a large
batch took goes back to the system. A process that dies (killed, out of memory) breaks
the executor; the pool then starts a new one, and the batch that was running is answered
503 (it may be sent again: ingest is idempotent).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from features.store import EventStore
from service.ingest_batch import IngestOutcome, ingest_body

__all__ = ["IngestPool", "IngestWorkerLost", "ingest_file"]

T = TypeVar("T")

#: The event store of this ingest process, by URL (one per process, opened on first use).
_STORES: dict[str, EventStore] = {}


class IngestWorkerLost(RuntimeError):
    """The process running a batch ended before it answered (the batch may or may not
    have been committed; sending it again is safe)."""


def ingest_file(
    store_url: str, path: str, content_type: str | None, max_rows: int
) -> IngestOutcome:
    """In an ingest process: :func:`~service.ingest_batch.ingest_body` on the body spooled
    to ``path``, into the store at ``store_url``."""
    store = _STORES.get(store_url)
    if store is None:
        store = _STORES[store_url] = EventStore(store_url)
    return ingest_body(store, Path(path).read_bytes(), content_type, max_rows)


def _start_child(nice: int) -> None:
    os.nice(nice)
    # Ctrl-C reaches the whole process group; the worker shuts its pool down itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class IngestPool:
    """``workers`` ingest processes, owned by one app (created in its lifespan, closed
    with it, used from its event loop). :meth:`run` awaits a function's result from one
    of them."""

    def __init__(self, workers: int, *, max_batches: int = 1, nice: int = 10) -> None:
        if workers < 1:
            raise ValueError(f"an ingest pool needs at least 1 process; got {workers}")
        self.workers = workers
        self._max_batches = max_batches
        self._nice = nice
        self._context = multiprocessing.get_context("forkserver")
        # the fork server imports the ingest code once; its children start with it loaded
        self._context.set_forkserver_preload([__name__])
        self._lock = threading.Lock()
        # At most one batch per process is handed over; the rest wait here, never in the
        # executor's queue: Python 3.11-3.13 can deadlock a queued backlog when a process
        # leaves at max_tasks_per_child (CPython gh-115634).
        self._free = asyncio.Semaphore(workers)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self._context,
            initializer=_start_child,
            initargs=(self._nice,),
            max_tasks_per_child=self._max_batches,
        )

    def warm(self) -> None:
        """Start the fork server and a process now rather than at the first batch, in a
        thread: starting them waits for the fork server's imports (seconds), which the
        app's start-up does not."""
        threading.Thread(
            target=self._executor.submit, args=(os.getpid,), name="ingest-pool-warm", daemon=True
        ).start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in an ingest process. Raises :class:`IngestWorkerLost` when the
        process ended before it answered; the pool is usable again afterwards."""
        async with self._free:
            return await self._run(fn, *args)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        # submit() may start a process, which waits for the fork server: not on the loop
        try:
            future = await asyncio.to_thread(executor.submit, fn, *args)
        except BrokenProcessPool:  # broken while idle: nothing of this call has run
            executor = self._replace(executor)
            future = await asyncio.to_thread(executor.submit, fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._replace(executor)
            raise IngestWorkerLost("the ingest process ended before it answered") from exc

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            return self._executor

    def pids(self) -> list[int]:
        """The ingest processes alive now (for tests and operators)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.is_alive()]

    def close(self) -> None:
        """Stop the processes, after the batches already running (queued ones are dropped)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

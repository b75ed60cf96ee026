"""Several processes creating the same fresh database at once — uvicorn workers starting
together on a new data folder — all come up. Before: 13 of 60 opens of a fresh decision
log and 28 of 40 of a fresh event store failed, and such a worker answered every
request with 503."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

PROCESSES = 4
ROUNDS = 3


def _open_all(kind: str, paths: list[str], barrier, results) -> None:
    for path in paths:
        barrier.wait(timeout=60)
        try:
            if kind == "decision_log":
                from service.decision_log import DecisionLog

                DecisionLog(f"sqlite:///{path}").open().close()
            else:
                from features.store import EventStore

                store = EventStore(f"sqlite:///{path}")
                store.create_schema()
                store.dispose()
            results.put("ok")
        except Exception as exc:  # reported to the test, which names it
            results.put(f"{type(exc).__name__}: {exc}"[:300])


@pytest.mark.parametrize("kind", ["decision_log", "event_store"])
def test_workers_opening_one_fresh_database_at_once_all_succeed(kind, tmp_path: Path):
    ctx = mp.get_context("spawn")
    paths = [str(tmp_path / f"{kind}-{i}.db") for i in range(ROUNDS)]
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [
        ctx.Process(target=_open_all, args=(kind, paths, barrier, results))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for w in workers:
        w.join(timeout=60)
    assert [o for o in outcomes if o != "ok"] == []

"""Several processes creating the same fresh database at once — uvicorn workers starting
together on a new data folder — all come up. Before: 13 of 60 opens of a fresh SQLite
decision log and 28 of 40 of a fresh SQLite event store failed, and such a worker
answered every request with 503."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

PROCESSES = 4
SQLITE_ROUNDS = 3


def _open_all(kind: str, targets: list[tuple[str, str | None]], barrier, results) -> None:
    for url, schema in targets:
        barrier.wait(timeout=60)
        try:
            if kind == "decision_log":
                from service.decision_log import DecisionLog

                DecisionLog(url).open().close()
            else:
                from features.store import EventStore

                store = EventStore(url, schema=schema)
                store.create_schema()
                store.dispose()
            results.put("ok")
        except Exception as exc:  # reported to the test, which names it
            results.put(f"{type(exc).__name__}: {exc}"[:300])


def _all_open_at_once(kind: str, targets: list[tuple[str, str | None]]) -> list[str]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [
        ctx.Process(target=_open_all, args=(kind, targets, barrier, results))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * len(targets))]
    for w in workers:
        w.join(timeout=60)
    return [o for o in outcomes if o != "ok"]


@pytest.mark.parametrize("kind", ["decision_log", "event_store"])
def test_sqlite_workers_opening_one_fresh_database_at_once_all_succeed(kind, tmp_path: Path):
    targets = [(f"sqlite:///{tmp_path / f'{kind}-{i}.db'}", None) for i in range(SQLITE_ROUNDS)]
    assert _all_open_at_once(kind, targets) == []


@pytest.mark.postgres
def test_postgres_workers_opening_one_fresh_decision_log_at_once_all_succeed():
    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("dlog_race") as url:
        assert _all_open_at_once("decision_log", [(url, None)]) == []


@pytest.mark.postgres
def test_postgres_workers_creating_one_fresh_store_schema_at_once_all_succeed(postgres_url):
    targets = [(postgres_url.url, postgres_url.schema)]
    assert _all_open_at_once("event_store", targets) == []

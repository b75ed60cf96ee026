"""The decision log: group commit, read-your-writes, retention, audit export, shutdown flush."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from service.decision_log import (
    Decision,
    DecisionLog,
    DecisionLogUnavailable,
    IdempotencyBinding,
    feature_dict,
    new_decision_id,
)


def row(customer_id="C1", created_at=None):
    return Decision(
        decision_id=new_decision_id(),
        created_at=created_at or datetime.now(UTC),
        kind="risk_score",
        customer_id=customer_id,
        as_of=date(2026, 1, 15),
        model_version="m1",
        policy_version="p1",
        inputs={"explain": True},
        features=feature_dict(["a", "b"], [1.0, float("nan")]),
        outputs={"probability": 0.2, "band": "high"},
    )


def bound(decision, scope="checkout:x", key="k", request_hash="h"):
    """``decision`` given under an idempotency key."""
    return replace(decision, idempotency=IdempotencyBinding(scope, key, request_hash))


@pytest.fixture
def log(tmp_path):
    lg = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}", batch_size=8).open()
    yield lg
    lg.close()


def test_submitted_rows_commit_and_read_back(log):
    rows = [row(f"C{i}") for i in range(20)]
    futures = [log.submit([r]) for r in rows]
    assert [f.result(5) for f in futures] == [1] * 20
    got = log.get(rows[7].decision_id)
    assert got is not None
    assert got.customer_id == "C7"
    assert got.features == {"a": 1.0, "b": None}
    assert got.created_at.tzinfo is not None
    assert log.get(new_decision_id()) is None


def test_the_sqlite_writer_stores_rows_exactly_as_sqlalchemy_would(log):
    """The writer's direct DB-API insert (speed) must not change a stored byte."""
    import sqlite3

    from service.decision_log import decisions

    ours = replace(row("C\u00e9"), inputs={"note": "caf\u00e9", "n": [1, 2]})
    theirs = replace(ours, decision_id=new_decision_id())
    log.write([ours])
    with log.engine.begin() as conn:
        conn.execute(decisions.insert(), [theirs.row()])
    con = sqlite3.connect(log.engine.url.database)
    raw = {r[0]: r[1:] for r in con.execute("SELECT * FROM decisions")}
    con.close()
    assert raw[ours.decision_id] == raw[theirs.decision_id]
    assert log.get(ours.decision_id) == ours


def test_get_sees_a_decision_right_after_submit_without_waiting(log):
    r = row()
    log.submit([r])  # not awaited
    assert log.get(r.decision_id) is not None


def test_close_flushes_what_is_queued(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    lg = DecisionLog(url).open()
    rows = [row() for _ in range(50)]
    for r in rows:
        lg.submit([r])
    lg.close()
    again = DecisionLog(url).open()
    try:
        assert again.count() == 50
    finally:
        again.close()


def test_purge_keeps_the_retention_window(log):
    now = datetime.now(UTC)
    old, recent = (
        row(created_at=now - timedelta(days=200)),
        row(created_at=now - timedelta(days=10)),
    )
    log.write([old, recent])
    assert log.purge_older_than(183) == 1
    assert log.get(old.decision_id) is None
    assert log.get(recent.decision_id) is not None


def test_export_writes_json_lines(log, tmp_path):
    log.write([row("A"), row("B")])
    path = tmp_path / "audit" / "decisions.jsonl"
    assert log.export(path) == 2
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(x["customer_id"] for x in lines) == ["A", "B"]
    assert lines[0]["features"] == {"a": 1.0, "b": None}


def test_a_closed_log_refuses(tmp_path):
    lg = DecisionLog(f"sqlite:///{tmp_path / 'd.db'}").open()
    lg.close()
    with pytest.raises(DecisionLogUnavailable):
        lg.submit([row()])


def test_a_failed_commit_fails_the_futures_not_the_writer(log):
    r = row()
    log.write([r])
    dup = log.submit([r])  # same primary key: the batch fails
    with pytest.raises(DecisionLogUnavailable):
        dup.result(5)
    assert log.write([row()]) == 1  # the writer lives on


def test_decision_log_failure_means_no_answer(make_client, monkeypatch):
    from tests.api.conftest import headers

    c = make_client()

    async def refuse(_rows, **_kwargs):
        raise DecisionLogUnavailable("queue full")

    monkeypatch.setattr(c.app.state.decision_log, "log", refuse)
    r = c.post("/v1/risk/scores", json={"customer_ids": ["C-low-1"]}, headers=headers())
    assert r.status_code == 503
    assert r.json()["type"] == "urn:tijdig:problem:decision-log-unavailable"


def test_answers_without_waiting_are_still_readable(make_client):
    from tests.api.conftest import headers

    c = make_client(decision_log_wait_for_commit=False)
    r = c.post("/v1/risk/scores", json={"customer_ids": ["C-risk-1"]}, headers=headers())
    assert r.status_code == 200
    did = r.json()["results"][0]["decision_id"]
    assert c.get(f"/v1/decisions/{did}", headers=headers()).status_code == 200


def test_decision_ids_are_uuid7_and_sort_by_creation_time():
    """Time-ordered ids keep the log's key index append-only (and exports sort by time)."""
    import time
    import uuid as uuid_module

    from service.decision_log import new_decision_id

    ids = []
    for _ in range(5):
        ids.append(new_decision_id())
        time.sleep(0.002)  # ids within one millisecond are random among themselves
    parsed = [uuid_module.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid_module.RFC_4122 for u in parsed)
    assert ids == sorted(ids)
    millis = parsed[0].int >> 80
    assert abs(millis - time.time_ns() // 1_000_000) < 60_000
    assert len(set(new_decision_id() for _ in range(10_000))) == 10_000


# ---------------------------------------------------------------- from the event loop


def test_rows_logged_in_one_loop_turn_commit_together_on_the_loop(log, monkeypatch):
    """SQLite: requests of one loop turn share one commit on the loop thread, no writer hop."""
    import asyncio

    handed = []
    monkeypatch.setattr(log, "submit", lambda rows: handed.append(rows))  # must not be used
    commits = []
    real = log._insert_from_loop
    monkeypatch.setattr(
        log, "_insert_from_loop", lambda rows: commits.append(len(rows)) or real(rows)
    )
    rows = [row(f"C{i}") for i in range(12)]

    async def main():
        await asyncio.gather(*(log.log([r], wait=True, timeout_s=5) for r in rows))

    asyncio.run(main())
    assert commits == [12] and handed == []
    monkeypatch.undo()  # get() flushes the writer thread
    assert all(log.get(r.decision_id) == r for r in rows)


def test_a_write_lock_held_elsewhere_goes_to_the_writer_and_never_blocks_the_loop(log):
    """Another process holding SQLite's write lock: the loop does not wait for it; the
    rows commit through the writer thread once the lock is free."""
    import asyncio
    import sqlite3
    import threading

    other = sqlite3.connect(log.engine.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    r = row()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def main():
        tick = asyncio.create_task(ticker())
        threading.Timer(0.15, other.rollback).start()  # lock released after 150 ms
        await log.log([r], wait=True, timeout_s=5)
        tick.cancel()

    asyncio.run(main())
    other.close()
    assert ticks >= 50  # the loop ran on while the commit waited for the lock
    assert log.get(r.decision_id) == r


def test_a_failed_commit_from_the_loop_fails_that_request_not_the_log(log):
    import asyncio

    r = row()
    log.write([r])

    async def main():
        with pytest.raises(DecisionLogUnavailable):
            await log.log([r], wait=True, timeout_s=5)  # same primary key
        await log.log([row()], wait=True, timeout_s=5)

    asyncio.run(main())
    assert log.count() == 2


def test_close_commits_rows_a_loop_has_not_flushed_yet(tmp_path):
    import asyncio

    url = f"sqlite:///{tmp_path / 'd.db'}"
    lg = DecisionLog(url).open()
    rows = [row() for _ in range(5)]

    async def main():
        for r in rows:
            await lg.log([r], wait=False, timeout_s=5)
        lg.close()  # before the loop ran its flush callback

    asyncio.run(main())
    again = DecisionLog(url).open()
    try:
        assert again.count() == 5
    finally:
        again.close()


def test_the_writer_checkpoints_for_the_loop(log, monkeypatch):
    """The loop's connection never checkpoints the WAL; the writer thread is asked to."""
    import asyncio

    import service.decision_log as module

    monkeypatch.setattr(module, "CHECKPOINT_EVERY_ROWS", 5)
    asked = []
    monkeypatch.setattr(log, "_checkpoint", lambda: asked.append(True))

    async def main():
        for _ in range(12):
            await log.log([row()], wait=True, timeout_s=5)

    asyncio.run(main())
    log.flush()
    assert len(asked) == 2


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_log(request, tmp_path):
    """An open decision log on each back end (PostgreSQL: a fresh database, dropped after;
    skipped with the reason when no server answers)."""
    if request.param == "sqlite":
        lg = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}").open()
        yield lg
        lg.close()
        return
    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("dlog") as url:
        lg = DecisionLog(url).open()
        try:
            yield lg
        finally:
            lg.close()


def test_logging_from_the_loop_commits_and_fails_alike_on_both_back_ends(any_log):
    """The route's path (``log``): concurrent requests all land, awaited or not; a failed
    commit fails its request and the log lives on."""
    import asyncio

    awaited = [row(f"A{i}") for i in range(10)]
    unawaited = [row(f"U{i}") for i in range(3)]

    async def main():
        await asyncio.gather(*(any_log.log([r], wait=True, timeout_s=5) for r in awaited))
        for r in unawaited:
            await any_log.log([r], wait=False, timeout_s=5)
        with pytest.raises(DecisionLogUnavailable):
            await any_log.log([awaited[0]], wait=True, timeout_s=5)  # same primary key

    asyncio.run(main())
    any_log.flush()
    assert any_log.count() == 13
    assert all(any_log.get(r.decision_id) == r for r in awaited + unawaited)


def test_an_unawaited_commit_that_fails_is_logged_on_both_back_ends(any_log):
    """With ``decision_log_wait_for_commit`` off the caller has answered already; a failed
    commit must still leave an error line, whichever back end (loop path or writer)."""
    import asyncio

    from structlog.testing import capture_logs

    first = row("DUP")

    async def main():
        await any_log.log([first], wait=True, timeout_s=5)
        await any_log.log([first], wait=False, timeout_s=5)  # same primary key: fails
        await asyncio.sleep(0)  # the loop path commits on the next turn

    with capture_logs() as logs:
        asyncio.run(main())
        any_log.flush()
    failures = [e for e in logs if e["event"] == "decision_log_commit_failed_unawaited"]
    assert len(failures) == 1, logs
    assert any_log.count() == 1


def test_the_json_columns_hold_valid_json_on_both_back_ends(any_log):
    """NaN is written as null (json.dumps wrote the token NaN, which is not JSON and which
    PostgreSQL refuses); numpy scalars and floats come back as they went in."""
    import dataclasses
    import json

    import numpy as np
    import sqlalchemy as sa

    from service.decision_log import decisions

    d = dataclasses.replace(
        row("C-json"),
        outputs={"probability": np.float64(0.1 + 0.2), "limit": float("nan"), "n": np.int64(3)},
    )
    any_log.write([d])
    back = any_log.get(d.decision_id)
    assert back.outputs == {"probability": 0.30000000000000004, "limit": None, "n": 3}
    with any_log.engine.connect() as conn:
        text = conn.execute(
            sa.select(sa.cast(decisions.c.outputs, sa.Text)).where(
                decisions.c.decision_id == d.decision_id
            )
        ).scalar_one()

    def no_constants(token: str) -> None:
        raise AssertionError(f"not JSON: {token}")

    json.loads(text, parse_constant=no_constants)


def _unreachable_engine(tmp_path):
    import sqlalchemy as sa

    # a database file that cannot be opened: every connection fails (OperationalError)
    return sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'decisions.db'}")


def _pooled_decision_for_key(log, scope, key):
    """``decision_for_key`` the pooled way: with the loops' connection busy (as when
    another thread's loop commits on it) the fast SQLite read steps aside."""
    with log._loop_conn_lock:
        return log.decision_for_key(scope, key)


def test_a_database_that_cannot_answer_is_unavailable_not_an_error(log, tmp_path, monkeypatch):
    # Each reader and writer the routes use says DecisionLogUnavailable (their 503) when
    # the database is down or locked past the busy timeout; it was a raw OperationalError.
    did = row().decision_id
    monkeypatch.setattr(log, "_engine", _unreachable_engine(tmp_path))
    for call in (
        lambda: log.get(did),
        lambda: log.reviews_of(did),
        lambda: log.add_review(did, "ann", "upheld", "ok"),
        lambda: _pooled_decision_for_key(log, "checkout:x", "k"),
    ):
        with pytest.raises(DecisionLogUnavailable, match="OperationalError"):
            call()


def test_a_key_that_cannot_be_bound_is_unavailable_and_leaves_nothing(log, monkeypatch):
    """The key is bound in the decision's commit: a log whose write lock stays held past
    the writer's wait refuses both (the routes' 503), and neither remains."""
    import asyncio
    import sqlite3

    import service.decision_log as module

    monkeypatch.setattr(module, "SQLITE_LOCK_WAIT_S", 0.05)
    other = sqlite3.connect(log.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    d = bound(row(), "checkout:x", "k", "h")
    try:
        with pytest.raises(DecisionLogUnavailable, match="OperationalError"):
            asyncio.run(log.log([d], wait=False, timeout_s=5))  # bound: awaited anyway
    finally:
        other.rollback()
        other.close()
    assert log.decision_for_key("checkout:x", "k") is None
    assert log.count() == 0


def test_a_flush_that_times_out_is_unavailable(log, monkeypatch):
    def slow(timeout_s: float = 10.0) -> None:
        raise TimeoutError

    monkeypatch.setattr(log, "flush", slow)
    with pytest.raises(DecisionLogUnavailable):
        log.get(row().decision_id)


def test_reviews_and_reads_answer_503_when_the_log_is_locked_or_down(
    settings, tmp_path, monkeypatch
):
    import sqlite3

    from fastapi.testclient import TestClient

    import service.decision_log as decision_log_module
    from service.app import create_app
    from tests.api.conftest import headers

    real = decision_log_module.configure_sqlite

    def quick(engine, *, busy_timeout_ms, **kwargs):  # give up on the lock in 50 ms, not 5 s
        return real(engine, busy_timeout_ms=50, **kwargs)

    monkeypatch.setattr(decision_log_module, "configure_sqlite", quick)
    path = tmp_path / "decisions.db"
    app = create_app(settings.model_copy(update={"decision_log_url": f"sqlite:///{path}"}))
    with TestClient(app) as c:
        scored = c.post("/v1/risk/scores", json={"customer_ids": ["C-low-1"]}, headers=headers())
        did = scored.json()["results"][0]["decision_id"]
        review = {"reviewer": "ann", "outcome": "upheld", "reason": "ok"}
        other = sqlite3.connect(path, isolation_level=None)  # e.g. a backup, a sibling's purge
        other.execute("BEGIN IMMEDIATE")
        try:
            locked = c.post(f"/v1/decisions/{did}/review", json=review, headers=headers())
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert locked.status_code == 503, locked.text
        assert locked.json()["type"] == "urn:tijdig:problem:decision-log-unavailable"
        assert "SQL" not in locked.text  # the database's message stays in the log
        monkeypatch.setattr(c.app.state.decision_log, "_engine", _unreachable_engine(tmp_path))
        down = c.get(f"/v1/decisions/{did}", headers=headers())
        assert down.status_code == 503, down.text
        assert down.json()["type"] == "urn:tijdig:problem:decision-log-unavailable"
        monkeypatch.undo()  # the real engine back, for the log to close


# ---------------------------------------------------------------- idempotency keys


def _logged_ids(lg):
    return {d.decision_id for d in lg.iter_decisions()}


def test_concurrent_calls_with_one_key_log_one_decision_on_both_back_ends(any_log):
    """Two retries with the same key race to the log: the key is bound in the commit,
    first writer wins; the other decision is not logged and learns who holds the key."""
    import asyncio

    first, second = bound(row("C1")), bound(row("C1"))

    async def main():
        return await asyncio.gather(
            *(any_log.log([d], wait=True, timeout_s=5) for d in (first, second))
        )

    held_first, held_second = asyncio.run(main())
    assert held_first == {}  # first in the batch (or the first commit) wins
    assert held_second == {second.decision_id: ("h", first.decision_id)}
    assert first.idempotency.held_by is None
    assert _logged_ids(any_log) == {first.decision_id}
    assert any_log.decision_for_key("checkout:x", "k") == ("h", first.decision_id)
    # a later call with the key, from the writer thread this time, is held alike
    third = bound(row("C1"))
    assert any_log.write([third]) == 0
    assert third.idempotency.held_by == ("h", first.decision_id)
    assert _logged_ids(any_log) == {first.decision_id}


@pytest.mark.parametrize("first_writer", ["commits", "rolls back"])
def test_a_key_bound_by_a_concurrent_transaction_decides_on_both_back_ends(any_log, first_writer):
    """Another worker's transaction binds the key first and has not committed yet: the
    log's commit waits for it (SQLite: the write lock; PostgreSQL: the key's row); if it
    commits, its decision holds the key and ours is not logged; if it rolls back, ours is."""
    import asyncio
    import threading

    from service.decision_log import decisions, idempotency_keys

    winner, ours = row("C1"), bound(row("C1"), request_hash="h-ours")
    results: list = []

    def log_ours():
        try:
            results.append(asyncio.run(any_log.log([ours], wait=True, timeout_s=10)))
        except Exception as exc:  # surfaced by the asserts below
            results.append(exc)

    with any_log.engine.connect() as other:
        tx = other.begin()
        other.execute(
            idempotency_keys.insert(),
            [
                {
                    "scope": "checkout:x",
                    "key": "k",
                    "request_hash": "h-winner",
                    "decision_id": winner.decision_id,
                    "created_at": winner.created_at,
                }
            ],
        )
        other.execute(decisions.insert(), [winner.row()])
        thread = threading.Thread(target=log_ours)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waits for the first writer's transaction
        if first_writer == "commits":
            tx.commit()
        else:
            tx.rollback()
        thread.join(10)
    assert not thread.is_alive()
    if first_writer == "commits":
        assert results == [{ours.decision_id: ("h-winner", winner.decision_id)}]
        assert _logged_ids(any_log) == {winner.decision_id}
        assert any_log.decision_for_key("checkout:x", "k") == ("h-winner", winner.decision_id)
    else:
        assert results == [{}]
        assert _logged_ids(any_log) == {ours.decision_id}
        assert any_log.decision_for_key("checkout:x", "k") == ("h-ours", ours.decision_id)


def test_a_batch_retried_row_by_row_still_binds_each_key_once_on_both_back_ends(any_log):
    """One bad request fails its batch; the rows are then committed one by one, and the
    key bindings the failed batch made are gone with it (rolled back), so the key goes
    to one decision only."""
    import asyncio

    dup = row("DUP")
    any_log.write([dup])
    first, second = bound(row("C1")), bound(row("C1"))

    async def main():
        return await asyncio.gather(
            any_log.log([first], wait=True, timeout_s=5),
            any_log.log([dup], wait=True, timeout_s=5),  # same primary key: fails
            any_log.log([second], wait=True, timeout_s=5),
            return_exceptions=True,
        )

    held_first, failed, held_second = asyncio.run(main())
    assert isinstance(failed, DecisionLogUnavailable)
    assert held_first == {} and held_second == {second.decision_id: ("h", first.decision_id)}
    assert _logged_ids(any_log) == {dup.decision_id, first.decision_id}


def test_a_decision_that_fails_to_commit_leaves_no_key_binding_on_both_back_ends(any_log):
    """The key is bound in the decision's transaction: when the decision cannot be
    logged, the binding is rolled back with it, so a retry decides afresh (no 409)."""
    import asyncio

    taken = row("C1")
    any_log.write([taken])
    failing = bound(replace(taken, customer_id="C2"), request_hash="h1")  # id taken: fails

    with pytest.raises(DecisionLogUnavailable):
        asyncio.run(any_log.log([failing], wait=True, timeout_s=5))
    assert failing.idempotency.held_by is None
    assert any_log.decision_for_key("checkout:x", "k") is None
    with pytest.raises(DecisionLogUnavailable):  # through the writer thread alike
        any_log.write([failing])
    assert any_log.decision_for_key("checkout:x", "k") is None

    retry = bound(row("C2"), request_hash="h2")  # even another request may use the key
    assert asyncio.run(any_log.log([retry], wait=True, timeout_s=5)) == {}
    assert any_log.decision_for_key("checkout:x", "k") == ("h2", retry.decision_id)
    assert _logged_ids(any_log) == {taken.decision_id, retry.decision_id}


def test_a_key_whose_decision_is_gone_is_bound_afresh_on_both_back_ends(any_log):
    """A binding left without its decision (the decision purged before its key, as rows
    bound after the commit could be) frees the key: the next decision takes it over."""
    import asyncio

    from service.decision_log import decisions

    old = bound(row("C1"), request_hash="h-old")
    any_log.write([old])
    with any_log.engine.begin() as conn:
        conn.execute(decisions.delete().where(decisions.c.decision_id == old.decision_id))
    assert any_log.decision_for_key("checkout:x", "k") == ("h-old", old.decision_id)
    new = bound(row("C1"), request_hash="h-new")
    assert asyncio.run(any_log.log([new], wait=True, timeout_s=5)) == {}
    assert any_log.decision_for_key("checkout:x", "k") == ("h-new", new.decision_id)
    assert _logged_ids(any_log) == {new.decision_id}


def test_keys_bound_by_the_direct_statements_are_purged_like_sqlalchemy_ones_on_both_back_ends(
    any_log,
):
    """On SQLite the key rows are written through raw DB-API statements: they must hold
    what SQLAlchemy would store, or the purge's ``created_at < cutoff`` misses them."""
    import asyncio

    import sqlalchemy as sa

    from service.decision_log import idempotency_keys

    now = datetime.now(UTC)
    long_ago = now - timedelta(days=200)
    via_loop = bound(row(created_at=long_ago), key="old-loop")
    via_writer = bound(row(created_at=long_ago), key="old-writer")
    recent = bound(row(created_at=now - timedelta(days=10)), key="recent")
    asyncio.run(any_log.log([via_loop], wait=True, timeout_s=5))
    any_log.write([via_writer])
    asyncio.run(any_log.log([recent], wait=True, timeout_s=5))
    with any_log.engine.begin() as conn:  # the same kind of row, stored by SQLAlchemy
        conn.execute(
            idempotency_keys.insert(),
            [
                {
                    "scope": "checkout:x",
                    "key": "old-sqlalchemy",
                    "request_hash": "h",
                    "decision_id": via_writer.decision_id,
                    "created_at": long_ago,
                }
            ],
        )
        stored = dict(
            conn.execute(
                sa.select(
                    idempotency_keys.c.key, sa.cast(idempotency_keys.c.created_at, sa.Text)
                ).where(idempotency_keys.c.key.in_(["old-loop", "old-writer", "old-sqlalchemy"]))
            ).all()
        )
    assert stored["old-loop"] == stored["old-writer"] == stored["old-sqlalchemy"]

    assert any_log.purge_older_than(183) == 2
    for key in ("old-loop", "old-writer", "old-sqlalchemy"):
        assert any_log.decision_for_key("checkout:x", key) is None
    assert any_log.decision_for_key("checkout:x", "recent") == ("h", recent.decision_id)


def test_the_direct_key_lookup_reads_what_the_pooled_path_reads_on_both_back_ends(
    any_log, monkeypatch
):
    import asyncio

    d = bound(row(), scope="checkout:abc", key="order-\u00e9-1", request_hash="f" * 64)
    asyncio.run(any_log.log([d], wait=True, timeout_s=5))
    for scope, key in [
        ("checkout:abc", "order-\u00e9-1"),
        ("checkout:abc", "order-\u00e9-2"),
        ("checkout:other", "order-\u00e9-1"),
    ]:
        pooled = _pooled_decision_for_key(any_log, scope, key)
        if any_log.engine.dialect.name == "sqlite":  # the direct read never takes the pool
            with monkeypatch.context() as m:
                m.setattr(any_log.engine, "connect", _no_pool)
                direct = any_log.decision_for_key(scope, key)
        else:
            direct = any_log.decision_for_key(scope, key)
        assert direct == pooled
    assert pooled is None and direct is None
    assert any_log.decision_for_key("checkout:abc", "order-\u00e9-1") == ("f" * 64, d.decision_id)


def _no_pool(*_args, **_kwargs):
    raise AssertionError("the pooled path was used")


def test_the_direct_key_lookup_steps_aside_when_sqlite_is_busy(log, monkeypatch):
    """The loops' connection in use by another thread, or SQLite busy or locked: the
    lookup reads the pooled way (unchanged behaviour under contention); another error
    is the routes' 503."""
    import sqlite3
    import threading

    d = bound(row())
    log.write([d])
    expected = ("h", d.decision_id)
    used = []
    real_connect = log.engine.connect
    monkeypatch.setattr(log.engine, "connect", lambda: used.append(1) or real_connect())

    held, release = threading.Event(), threading.Event()

    def hold_the_connection():
        with log._loop_conn_lock:
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hold_the_connection)
    thread.start()
    held.wait(5)
    try:
        assert log.decision_for_key("checkout:x", "k") == expected  # does not wait for it
    finally:
        release.set()
        thread.join()
    assert used == [1]

    class Refusing:
        in_transaction = False

        def __init__(self, message):
            self.message = message

        def execute(self, *_args):
            raise sqlite3.OperationalError(self.message)

    class Conn:
        def __init__(self, message):
            self.driver_connection = Refusing(message)

    real_conn = log._loop_conn
    for message in ("database is locked", "database table is locked"):
        monkeypatch.setattr(log, "_loop_conn", Conn(message))
        assert log.decision_for_key("checkout:x", "k") == expected
    assert used == [1, 1, 1]
    monkeypatch.setattr(log, "_loop_conn", Conn("disk I/O error"))
    with pytest.raises(DecisionLogUnavailable, match="OperationalError"):
        log.decision_for_key("checkout:x", "k")
    monkeypatch.setattr(log, "_loop_conn", real_conn)
    assert log.decision_for_key("checkout:x", "k") == expected
    assert used == [1, 1, 1]


def test_a_caller_that_gave_up_is_never_logged_after_its_answer_on_both_back_ends(any_log):
    """The write is held up elsewhere (SQLite: another process's write lock; PostgreSQL:
    another transaction's uncommitted binding of the same key) past the caller's timeout:
    the caller answers that no decision was given, so its decision must never be logged
    and its key must stay free once the writer gets through (it was committed after the
    answer, and a corrected retry got a 409)."""
    import asyncio
    import sqlite3
    import threading
    import time

    from service.decision_log import idempotency_keys

    late = bound(row("C1"), key="k-late")
    if any_log.engine.dialect.name == "sqlite":
        other = sqlite3.connect(
            any_log.engine.url.database, isolation_level=None, check_same_thread=False
        )
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.6, other.rollback)
    else:
        conn = any_log.engine.connect()
        tx = conn.begin()
        conn.execute(
            idempotency_keys.insert(),
            [
                {
                    "scope": "checkout:x",
                    "key": "k-late",
                    "request_hash": "other",
                    "decision_id": "other",
                    "created_at": datetime.now(UTC),
                }
            ],
        )
        release = threading.Timer(0.6, lambda: (tx.rollback(), conn.close()))
    release.start()
    with pytest.raises(TimeoutError):
        asyncio.run(any_log.log([late], wait=True, timeout_s=0.2))
    release.join()
    time.sleep(0.2)
    any_log.flush()
    assert late.decision_id not in _logged_ids(any_log)
    assert any_log.decision_for_key("checkout:x", "k-late") is None
    retry = bound(row("C1"), key="k-late", request_hash="h-corrected")
    assert asyncio.run(any_log.log([retry], wait=True, timeout_s=5)) == {}
    assert any_log.decision_for_key("checkout:x", "k-late") == ("h-corrected", retry.decision_id)


def test_a_loop_batch_handed_to_the_writer_fails_only_the_bad_request(log):
    """Another process holds the write lock, so a loop turn's rows go to the writer: one
    request's bad row (a duplicate id) fails that request alone, as on the loop."""
    import sqlite3
    import threading

    taken = row()
    log.write([taken])
    good, bad = bound(row(), key="k-good"), replace(row(), decision_id=taken.decision_id)
    other = sqlite3.connect(log.engine.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.2, other.rollback).start()

    good_result, bad_result = _log_in_one_turn(log, [good], [bad])
    other.close()
    assert good_result == {}
    assert isinstance(bad_result, DecisionLogUnavailable)
    assert log.get(good.decision_id) == good
    assert log.decision_for_key("checkout:x", "k-good") == ("h", good.decision_id)


def test_a_batch_retried_row_by_row_forgets_who_held_a_key_on_both_back_ends(any_log):
    """In one loop turn A binds key k and then fails (a duplicate id), B waits behind A for
    k: the batch is rolled back and retried row by row, and B, no longer held by A's
    binding that never committed, is logged and holds k."""

    taken = row()
    any_log.write([taken])
    a = replace(bound(row(), key="k"), decision_id=taken.decision_id)
    b = bound(row(), key="k")

    a_result, b_result = _log_in_one_turn(any_log, [a], [b])
    assert isinstance(a_result, DecisionLogUnavailable)
    assert b_result == {}
    assert any_log.get(b.decision_id) == b
    assert any_log.decision_for_key("checkout:x", "k") == ("h", b.decision_id)


def _log_in_one_turn(lg, *requests):
    """Each request's rows logged from one event-loop turn; results or exceptions."""
    import asyncio

    async def main():
        return await asyncio.gather(
            *(lg.log(rows, wait=True, timeout_s=5) for rows in requests), return_exceptions=True
        )

    return asyncio.run(main())

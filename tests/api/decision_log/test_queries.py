"""Reads, reviews, key lookup, retention and export; "not now" is a 503."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from service.decision_log import DecisionLogUnavailable
from tests.api.decision_log.support import bound, row


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

    import service.decision_log.database as decision_log_module
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

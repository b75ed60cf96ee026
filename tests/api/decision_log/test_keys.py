"""Idempotency keys, bound in the transaction that logs their decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.decision_log import DecisionLogUnavailable
from tests.api.decision_log.support import bound, log_in_one_turn, logged_ids, row


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
    assert logged_ids(any_log) == {first.decision_id}
    assert any_log.decision_for_key("checkout:x", "k") == ("h", first.decision_id)
    # a later call with the key, from the writer thread this time, is held alike
    third = bound(row("C1"))
    assert any_log.write([third]) == 0
    assert third.idempotency.held_by == ("h", first.decision_id)
    assert logged_ids(any_log) == {first.decision_id}


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
        assert logged_ids(any_log) == {winner.decision_id}
        assert any_log.decision_for_key("checkout:x", "k") == ("h-winner", winner.decision_id)
    else:
        assert results == [{}]
        assert logged_ids(any_log) == {ours.decision_id}
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
    assert logged_ids(any_log) == {dup.decision_id, first.decision_id}


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
    assert logged_ids(any_log) == {taken.decision_id, retry.decision_id}


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
    assert logged_ids(any_log) == {new.decision_id}


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


def test_a_key_that_cannot_be_bound_is_unavailable_and_leaves_nothing(log, monkeypatch):
    """The key is bound in the decision's commit: a log whose write lock stays held past
    the writer's wait refuses both (the routes' 503), and neither remains."""
    import asyncio
    import sqlite3

    import service.decision_log.writer as module

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
    assert late.decision_id not in logged_ids(any_log)
    assert any_log.decision_for_key("checkout:x", "k-late") is None
    retry = bound(row("C1"), key="k-late", request_hash="h-corrected")
    assert asyncio.run(any_log.log([retry], wait=True, timeout_s=5)) == {}
    assert any_log.decision_for_key("checkout:x", "k-late") == ("h-corrected", retry.decision_id)


def test_a_batch_retried_row_by_row_forgets_who_held_a_key_on_both_back_ends(any_log):
    """In one loop turn A binds key k and then fails (a duplicate id), B waits behind A for
    k: the batch is rolled back and retried row by row, and B, no longer held by A's
    binding that never committed, is logged and holds k."""

    taken = row()
    any_log.write([taken])
    a = replace(bound(row(), key="k"), decision_id=taken.decision_id)
    b = bound(row(), key="k")

    a_result, b_result = log_in_one_turn(any_log, [a], [b])
    assert isinstance(a_result, DecisionLogUnavailable)
    assert b_result == {}
    assert any_log.get(b.decision_id) == b
    assert any_log.decision_for_key("checkout:x", "k") == ("h", b.decision_id)

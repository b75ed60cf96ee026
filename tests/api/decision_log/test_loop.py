"""Logging from the event loop (the routes' path), its hand-over to the writer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.decision_log import DecisionLog, DecisionLogUnavailable
from tests.api.decision_log.support import bound, log_in_one_turn, row


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

    good_result, bad_result = log_in_one_turn(log, [good], [bad])
    other.close()
    assert good_result == {}
    assert isinstance(bad_result, DecisionLogUnavailable)
    assert log.get(good.decision_id) == good
    assert log.decision_for_key("checkout:x", "k-good") == ("h", good.decision_id)

"""The writer thread: group commit, read-your-writes, shutdown flush, failures."""

from __future__ import annotations

import pytest

from service.decision_log import DecisionLog, DecisionLogUnavailable, new_decision_id
from tests.api.decision_log.support import row


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


def test_the_writer_checkpoints_for_the_loop(log, monkeypatch):
    """The loop's connection never checkpoints the WAL; the writer thread is asked to."""
    import asyncio

    import service.decision_log.loop as module

    monkeypatch.setattr(module, "CHECKPOINT_EVERY_ROWS", 5)
    asked = []
    monkeypatch.setattr(log, "_checkpoint", lambda: asked.append(True))

    async def main():
        for _ in range(12):
            await log.log([row()], wait=True, timeout_s=5)

    asyncio.run(main())
    log.flush()
    assert len(asked) == 2

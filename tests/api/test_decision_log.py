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

    def refuse(_rows):
        raise DecisionLogUnavailable("queue full")

    monkeypatch.setattr(c.app.state.decision_log, "submit", refuse)
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

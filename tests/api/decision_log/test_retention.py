"""Retention is enforced by the purge itself: nothing younger than the retention period
is deleted, whatever the caller asks; reviews leave with their decision."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from service.decision_log import DecisionLog, RetentionRefused
from tests.api.decision_log.support import row

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _aged(days: int, customer_id: str = "C1"):
    return row(customer_id, created_at=NOW - timedelta(days=days))


@pytest.mark.parametrize("days", [0, 1, 30, 182, -1])
def test_a_purge_shorter_than_the_legal_floor_is_refused_and_deletes_nothing(log, days):
    log.write([_aged(1), _aged(100), _aged(400)])
    with pytest.raises(RetentionRefused, match="younger than 183 days"):
        log.purge_older_than(days, now=NOW)
    with pytest.raises(RetentionRefused):
        log.purge_count(days, now=NOW)
    assert log.count() == 3


def test_a_purge_shorter_than_the_configured_retention_is_refused(tmp_path):
    lg = DecisionLog(f"sqlite:///{tmp_path / 'd.db'}", min_retention_days=365).open()
    try:
        lg.write([_aged(200), _aged(400)])
        with pytest.raises(RetentionRefused, match="younger than 365 days"):
            lg.purge_older_than(183, now=NOW)
        assert lg.purge_older_than(365, now=NOW) == 1
        assert lg.count() == 1
    finally:
        lg.close()


def test_a_log_cannot_be_configured_below_the_legal_floor(tmp_path):
    with pytest.raises(ValueError, match="at least 183 days"):
        DecisionLog(f"sqlite:///{tmp_path / 'd.db'}", min_retention_days=30)


def test_reviews_leave_with_their_decision_not_by_their_own_date(log):
    old, recent = _aged(300), _aged(10)
    log.write([old, recent])
    log.add_review(old.decision_id, "ann", "upheld", "reviewed late")  # dated today
    log.add_review(recent.decision_id, "bob", "overturned", "income was wrong")
    assert log.purge_count(183, now=NOW).reviews == 1
    assert log.purge_older_than(183, now=NOW) == 1
    assert log.reviews_of(old.decision_id) == []
    assert [r["reviewer"] for r in log.reviews_of(recent.decision_id)] == ["bob"]


def test_the_dry_run_counts_what_the_purge_then_deletes(log):
    log.write([_aged(200), _aged(250), _aged(10)])
    counted = log.purge_count(183, now=NOW)
    assert (counted.decisions, counted.cutoff) == (2, NOW - timedelta(days=183))
    assert log.count() == 3  # a dry run deletes nothing
    assert log.purge_older_than(183, now=NOW) == counted.decisions


def test_an_export_per_customer_holds_only_their_decisions_with_reviews(log, tmp_path):
    mine, theirs = _aged(5, "C-mine"), _aged(5, "C-theirs")
    log.write([mine, theirs])
    log.add_review(mine.decision_id, "ann", "upheld", "checked")
    path = tmp_path / "access-request.jsonl"
    assert log.export(path, customer_id="C-mine") == 1
    (line,) = [json.loads(x) for x in path.read_text().splitlines()]
    assert line["customer_id"] == "C-mine"
    assert [r["reason"] for r in line["reviews"]] == ["checked"]

"""The shadow challenger's rows in the decision log, on each back end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest


def _rows(now):
    return [
        {
            "decision_id": f"d{i}",
            "created_at": now - timedelta(days=i),
            "customer_id": f"C{i}",
            "as_of": date(2026, 1, 15),
            "champion_version": "tijdig-risk/1",
            "challenger_version": "tijdig-risk/2",
            "champion_probability": 0.1 * i,
            "challenger_probability": 0.05 * i,
            "champion_flag": i > 2,
            "challenger_flag": i > 3,
        }
        for i in range(5)
    ]


def test_shadow_rows_round_trip_on_each_back_end(any_log):
    now = datetime.now(UTC)
    rows = _rows(now)
    assert any_log.log_shadow(rows) == 5
    back = list(any_log.iter_shadow(since=now - timedelta(days=2, hours=1)))
    assert [r["decision_id"] for r in back] == ["d2", "d1", "d0"]
    assert back[0]["created_at"] == rows[2]["created_at"]
    assert back[0]["challenger_probability"] == pytest.approx(0.1)
    assert back[0]["champion_flag"] is False
    assert back[0]["as_of"] == date(2026, 1, 15)


def test_the_purge_takes_shadow_rows_with_the_decisions(any_log):
    now = datetime.now(UTC)
    rows = _rows(now)
    rows[4]["created_at"] = now - timedelta(days=400)
    any_log.log_shadow(rows)
    any_log.purge_older_than(365)
    assert sorted(r["decision_id"] for r in any_log.iter_shadow()) == ["d0", "d1", "d2", "d3"]

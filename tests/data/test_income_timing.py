"""Income-timing detection: patterns, closing-day moves, month ends, drift, point in time."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from features.events import EventArrays, from_day, to_day
from features.income_timing import (
    FEATURE_NAMES,
    PATTERNS,
    SOURCES,
    debit_history,
    debit_rows,
    detect_income_timing,
    expected_pay_days,
    first_attempts,
)
from models.calendar import target2

AS_OF = to_day("2026-07-01")


def _events(
    receipts: dict[str, list[date]], debits: dict[str, list[tuple[date, str]]] | None = None
):
    ids = sorted(set(receipts) | set(debits or {}))
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "household_type": "single",
            "birth_year": 1980,
            "declared_net_income_cents": None,
            "created_at": pd.Timestamp("2020-01-01"),
        }
    )
    inc = [
        {
            "receipt_id": f"{c}-{i}",
            "customer_id": c,
            "received_at": pd.Timestamp(d),
            "amount_cents": 200_000,
            "source": "salary",
        }
        for c, days in receipts.items()
        for i, d in enumerate(days)
    ]
    deb = [
        {
            "attempt_id": f"{c}-a{i}",
            "customer_id": c,
            "invoice_id": f"{c}-i{i}",
            "attempted_at": pd.Timestamp(d),
            "amount_cents": 10_000,
            "result": r,
            "reason_code": "AM04" if r == "failed" else None,
        }
        for c, rows in (debits or {}).items()
        for i, (d, r) in enumerate(rows)
    ]
    frames = {"customers": customers}
    if inc:
        frames["income_receipts"] = pd.DataFrame(inc)
    if deb:
        frames["debit_attempts"] = pd.DataFrame(deb)
    return EventArrays.from_frames(frames, ids)


def _shifted_back(days: list[date]) -> list[date]:
    cal = target2()
    return [from_day(int(cal.previous_business_day(to_day(d)))) for d in days]


def _monthly(dom: int, months: int = 12, end: date = date(2026, 6, 1)) -> list[date]:
    out = []
    for k in range(months):
        idx = end.year * 12 + end.month - 1 - k
        y, m = divmod(idx, 12)
        last = (pd.Timestamp(y, m + 1, 1) + pd.offsets.MonthEnd(0)).day
        out.append(date(y, m + 1, min(dom, last)))
    return _shifted_back(sorted(out))


def _periodic(first: date, period: int, until: date = date(2026, 6, 30)) -> list[date]:
    out, d = [], first
    while d < until:
        out.append(d)
        d += timedelta(days=period)
    return _shifted_back(out)


def _detect(receipts, debits=None):
    ev = _events(receipts, debits)
    t = detect_income_timing(ev, AS_OF, target2())
    return ev, t, {cid: i for i, cid in enumerate(ev.customer_ids.tolist())}


@pytest.mark.parametrize(
    ("receipts", "pattern", "dom"),
    [
        (_monthly(25), "monthly_day", 25),
        (_monthly(23), "monthly_day", 23),
        (_monthly(1), "monthly_day", 1),  # 1 Jan / 1 Nov 2025 (Sat) move back into the month before
        (_monthly(28), "monthly_day", 28),
        (_monthly(31), "last_working_day", 31),  # the 31st clipped to month ends = last working day
        (
            _periodic(date(2025, 6, 5), 28),
            "four_weekly",
            None,
        ),  # Thursdays, drifting through the month
        (_periodic(date(2025, 6, 6), 7), "weekly", None),
    ],
)
def test_patterns_are_recognised(receipts, pattern, dom):
    _, t, pos = _detect({"c": receipts})
    i = pos["c"]
    assert PATTERNS[t.pattern[i]] == pattern
    if dom is not None:
        assert t.pay_day_of_month[i] == dom
    assert t.confidence[i] > 0.8
    assert SOURCES[t.source[i]] == "income_receipts"


def test_weekend_and_holiday_moves_count_as_the_same_pay_day():
    receipts = _monthly(25)
    moved = [d for d in receipts if d.day != 25]
    assert moved, "the fixture must contain weekend moves"
    _, t, pos = _detect({"c": receipts})
    assert t.pay_day_of_month[pos["c"]] == 25


def test_four_weekly_pay_drifts_and_next_dates_follow_it():
    receipts = _periodic(date(2025, 6, 5), 28)
    assert len({d.day for d in receipts}) > 8  # it drifts through the month
    _ev, t, pos = _detect({"c": receipts})
    last, nxt = expected_pay_days(
        t, np.array([pos["c"]] * 2), np.array([AS_OF - 1, AS_OF + 27]), target2()
    )
    expected_next = _periodic(date(2025, 6, 5), 28, until=date(2026, 9, 1))
    after = [d for d in expected_next if to_day(d) > AS_OF - 1]
    assert from_day(int(nxt[0])) == after[0]
    assert from_day(int(nxt[1])) == after[1]
    assert from_day(int(last[0])) == receipts[-1]


def test_irregular_and_unknown():
    rng = np.random.default_rng(3)
    irregular = sorted(
        {date(2025, 7, 1) + timedelta(days=int(x)) for x in rng.integers(0, 360, 20)}
    )
    _, t, pos = _detect({"irr": irregular, "none": [], "one": [date(2026, 5, 25)]})
    assert PATTERNS[t.pattern[pos["irr"]]] == "irregular"
    assert PATTERNS[t.pattern[pos["none"]]] == "unknown"
    assert t.confidence[pos["none"]] == 0
    assert t.confidence[pos["one"]] < 0.5  # one receipt: a guess


def test_point_in_time_ignores_receipts_on_or_after_as_of():
    base = _monthly(25)
    future = [date(2026, 7, 1), date(2026, 7, 3), date(2026, 7, 10), date(2026, 8, 12)]
    _, t1, p1 = _detect({"c": base})
    _, t2, p2 = _detect({"c": base + future})
    for field in ("pattern", "pay_day_of_month", "confidence", "n_receipts"):
        np.testing.assert_array_equal(getattr(t1, field)[p1["c"]], getattr(t2, field)[p2["c"]])


def test_without_receipts_the_pay_day_is_inferred_from_debits():
    rows = []
    for m in range(1, 7):  # debit on the 20th fails, the retry 5 business days later succeeds
        fail = date(2026, m, 20)
        rows += [
            (fail, "failed"),
            (from_day(int(target2().add_business_days(to_day(fail), 5))), "success"),
        ]
    _, t, pos = _detect({}, {"d": rows})
    i = pos["d"]
    assert SOURCES[t.source[i]] == "debit_history"
    assert PATTERNS[t.pattern[i]] == "monthly_day"
    assert 21 <= t.pay_day_of_month[i] <= 29
    assert 0 < t.confidence[i] <= 0.6


def test_retries_are_not_first_attempts_and_rows_have_the_contract_shape():
    rows = [
        (date(2026, 5, 20), "failed"),
        (date(2026, 5, 27), "success"),
        (date(2026, 6, 20), "success"),
    ]
    ev, t, pos = _detect({"c": _monthly(25)}, {"c": rows})
    np.testing.assert_array_equal(first_attempts(ev), [True, False, True])
    h = debit_history(ev, AS_OF)
    X = debit_rows(
        t,
        h,
        np.array([pos["c"]] * 2),
        np.array([to_day("2026-07-27"), to_day("2026-07-22")]),
        np.array([10_000] * 2),
        target2(),
    )
    assert X.shape == (2, len(FEATURE_NAMES))
    since = X[:, FEATURE_NAMES.index("days_since_pay")]
    assert since[0] < since[1]  # the 27th is just after pay, the 22nd long after the last
    assert h.failure_rate_365d[pos["c"]] == pytest.approx(1 / 3)


def test_detection_meets_the_target_on_the_simulated_population(population, population_events):
    """Pay day within ±1 day for >= 95 % of customers with >= 3 receipts (simulator truth)."""
    as_of = to_day("2026-01-01")
    t = detect_income_timing(population_events, as_of, target2())
    truth = population.truth_customers.set_index("customer_id").loc[population_events.customer_ids]
    enough = t.n_receipts >= 3
    monthly = enough & (truth["pay_pattern"].to_numpy() == "monthly_day")
    ok = np.abs(t.pay_day_of_month[monthly] - truth["pay_day_of_month"].to_numpy()[monthly]) <= 1
    assert ok.mean() >= 0.95
    names = t.pattern_names()
    assert (names[enough] == truth["pay_pattern"].to_numpy()[enough]).mean() >= 0.9

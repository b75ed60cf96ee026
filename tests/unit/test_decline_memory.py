"""The decline memory (models.decline_memory): the creditor's own pay-later decisions as
of a day, point in time, the same for the service (one customer from its log) and the
simulator (columnar)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from features.events import to_day
from models.decline_memory import (
    DecisionHistory,
    DecisionLogArrays,
    customer_memory,
    decline_memory,
)

RISK, ARREARS, CASE = "B05_HIGH_RISK", "B03_OPEN_ARREARS", "B04_COLLECTION_CASE"


def random_history(rng: np.random.Generator, n: int = 400, customers: int = 6) -> DecisionHistory:
    offer = rng.random(n) < 0.6
    codes = [
        [] if ok else list(rng.choice([RISK, ARREARS, CASE, "B09_ORDER_TOO_LARGE"], 2))
        for ok in offer
    ]
    return DecisionHistory.of(
        rng.integers(0, customers, n),
        rng.integers(0, 500, n),
        offer,
        rng.integers(1, 9e4, n),
        codes,
    )


def take(h: DecisionHistory, keep: np.ndarray) -> DecisionHistory:
    return DecisionHistory(
        h.customer[keep], h.day[keep], h.offer[keep], h.order_cents[keep], h.codes[keep]
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_decision_on_or_after_as_of_never_counts(seed):
    """The memory from the whole log equals the memory from the log cut at as_of: every
    decision dated on or after the day is invisible, however many there are."""
    rng = np.random.default_rng(seed)
    h = random_history(rng)
    cust, as_of = rng.integers(0, 6, 50), rng.integers(0, 520, 50)
    full = decline_memory(h, cust, as_of)
    for i in range(len(cust)):
        cut = decline_memory(take(h, h.day < as_of[i]), cust[i : i + 1], as_of[i : i + 1])
        assert full.row(i) == pytest.approx(cut.row(0), nan_ok=True)


def test_windows_reasons_and_customers_are_counted_apart():
    h = DecisionHistory.of(
        [0, 0, 0, 0, 1],
        [10, 50, 85, 99, 98],
        [False, False, True, False, False],
        [100, 200, 5_000, 300, 400],
        [[RISK], [ARREARS], [], [CASE], [RISK]],
    )
    m = decline_memory(h, [0, 0], [100, 99]).row  # the decision of day 99 counts on 100 only
    assert m(0)["declines_30d"] == 1 and m(0)["declines_90d"] == 3
    assert m(0)["risk_declines_90d"] == 1 and m(0)["arrears_declines_90d"] == 1
    assert m(0)["case_declines_90d"] == 1 and m(0)["days_since_case_decline"] == 1
    assert m(0)["days_since_arrears_decline"] == 50 and m(0)["days_since_risk_decline"] == 90
    assert m(1)["days_since_case_decline"] != m(1)["days_since_case_decline"]  # NaN: not yet
    assert m(0)["approved_recent_eur"] == 0 and m(0)["approved_90d"] == 1
    far = decline_memory(h, [0], [400]).row(0)
    assert far["declines_90d"] == 0 and np.isnan(far["days_since_situation_decline"])
    assert far["approved_matured_365d"] == 1  # approved on day 85, due by now


def test_the_services_one_customer_call_is_the_columnar_computation():
    rng = np.random.default_rng(7)
    h = random_history(rng, customers=1)
    start = date(2025, 1, 1)
    rows = [
        (start + timedelta(days=int(d)), bool(o), int(c), [r for r in (RISK, ARREARS, CASE) if m])
        for d, o, c, m in zip(h.day, h.offer, h.order_cents, h.codes > 0, strict=True)
    ]
    h = DecisionHistory.of(
        [0] * len(rows), [to_day(r[0]) for r in rows], h.offer, h.order_cents, [r[3] for r in rows]
    )
    for as_of in (start + timedelta(days=d) for d in (0, 100, 250, 600)):
        assert customer_memory(rows, as_of) == pytest.approx(
            decline_memory(h, [0], [to_day(as_of)]).row(0), nan_ok=True
        )


def test_the_in_memory_log_is_the_concatenation_of_its_days():
    rng = np.random.default_rng(3)
    h = random_history(rng)
    log = DecisionLogArrays()
    for d in np.unique(h.day):
        log.add(take(h, h.day == d))
    got = decline_memory(log.history(), [1, 2], [300, 480])
    want = decline_memory(h, [1, 2], [300, 480])
    for i in range(2):
        assert got.row(i) == pytest.approx(want.row(i), nan_ok=True)

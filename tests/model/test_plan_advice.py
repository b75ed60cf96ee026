"""The plan answer for one customer (models.plans.advise): a referral offers nothing the
budget cannot carry, and every alternative fits the budget (DOMAIN.md §2, §8)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from features.build import FEATURE_INDEX, FEATURE_NAMES
from features.events import to_day
from models.budget import BudgetView, DeclaredBudget, budget_view
from models.plan_kept import PlanKeptModel
from models.plans import (
    REASON_TEXTS,
    Advice,
    Plan,
    PlanPolicy,
    PlanReason,
    ReferralReason,
    advise,
)

ON = date(2026, 11, 1)
POLICY = PlanPolicy.default()


def row() -> np.ndarray:
    out = np.full(len(FEATURE_NAMES), np.nan)
    for name, value in {
        "household_adults": 1,
        "household_children": 0,
        "household_pensioner": 0,
    }.items():
        out[FEATURE_INDEX[name]] = value
    return out


def model(kept_rate: float) -> PlanKeptModel:
    """The prior model: P(kept) = kept_rate × exp(−monthly / 250), monotone in the amount."""
    return PlanKeptModel(booster=None, calibrator={}, mode="prior", prior_kept_rate=kept_rate)


def budget(free_room_eur: float) -> BudgetView:
    """A single person's budget with exactly ``free_room_eur`` left above the floor."""
    r = row()
    floor = -budget_view(
        r,
        ON,
        DeclaredBudget(net_income_eur=0.0, household_type="single"),
        standard_share=POLICY.standard_share,
        maximum_share=POLICY.maximum_share,
    ).free_room_eur
    b = budget_view(
        r,
        ON,
        DeclaredBudget(net_income_eur=round(floor + free_room_eur, 2), household_type="single"),
        standard_share=POLICY.standard_share,
        maximum_share=POLICY.maximum_share,
    )
    assert b.free_room_eur == pytest.approx(free_room_eur, abs=0.01)
    return b


def answer(kept_rate: float, free_room_eur: float, debt_eur: float) -> tuple[Advice, BudgetView]:
    b = budget(free_room_eur)
    return advise(model(kept_rate), row(), to_day(ON), ON, round(debt_eur * 100), b, POLICY), b


def fits(plan: Plan, b: BudgetView) -> bool:
    assert b.standard_capacity_eur is not None and b.maximum_capacity_eur is not None
    cap = b.maximum_capacity_eur if plan.months <= POLICY.short_plan_max_months else None
    return plan.monthly_amount_eur <= (cap if cap is not None else b.standard_capacity_eur)


def test_no_free_room_is_a_referral_without_any_plan():
    a, _ = answer(0.99, -200.0, 300.0)
    assert a.referral and a.referral_reason == "no_free_room"
    assert a.suggested is None
    assert a.alternatives == []


@pytest.mark.parametrize("room", [0.5, 8.0])
def test_room_below_the_lowest_instalment_is_a_capacity_referral_without_any_plan(room):
    """Some free room, too little for the smallest instalment (EUR 10 minimum; EUR 300 over
    18 months asks EUR 17): the reason says capacity, not 'not likely enough to be kept',
    and no plan the budget cannot carry is offered."""
    a, b = answer(0.99, room, 300.0)
    assert 0 < b.free_room_eur < POLICY.min_monthly_amount_cents / 100
    assert a.referral and a.referral_reason == PlanReason.CAPACITY_TOO_SMALL.value
    assert a.referral_reasons == [ReferralReason.CAPACITY_TOO_SMALL]
    assert a.reasons[0] == PlanReason.CAPACITY_TOO_SMALL
    assert a.suggested is None and a.alternatives == []
    en, nl = REASON_TEXTS[PlanReason.CAPACITY_TOO_SMALL]
    assert "room" in en and "debt help" in en and "ruimte" in nl and "schuldhulp" in nl


def test_a_low_p_kept_is_a_plan_that_fits_not_a_referral():
    """Issue 20: the old policy referred here (nothing reached P(kept) 0.8); a low P(kept)
    now gives the plan with the best expected outcome that the budget carries."""
    a, b = answer(0.5, 100.0, 800.0)
    assert not a.referral and a.referral_reasons == []
    assert a.suggested is not None and fits(a.suggested, b)
    assert PlanReason.LOW_P_KEPT in a.reasons
    assert all(fits(p, b) for p in a.alternatives)


def test_alternatives_to_a_suggested_plan_all_fit_the_budget():
    """EUR 500 with EUR 50 free room: long plans up to EUR 32.50 (standard capacity), so the
    nearest shorter plan (EUR 34 × 15) is not offered as an alternative."""
    a, b = answer(0.99, 50.0, 500.0)
    assert a.suggested is not None and not a.referral and fits(a.suggested, b)
    assert PlanReason.CAPPED_BY_CAPACITY in a.reasons
    assert a.alternatives and all(fits(p, b) for p in a.alternatives)

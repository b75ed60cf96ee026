"""The broken-plan model (models.plan_outcome), the plan policy file and the legal table's
age (issue 20)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from models.legal import legal_table_on, legal_tables, months_past_newest_table
from models.plan_outcome import escalation_costs_cents, expected_outcome
from models.plan_policy import PlanPolicy

POLICY = PlanPolicy.default()
TABLE = legal_table_on(date(2026, 11, 1))


def test_the_expectation_by_hand():
    """EUR 1,000 in 10 × EUR 100, P(kept) 0.25: B = 400, R = 600; C(R) = WIK 90 + interest
    600 × 7 % = 42 + 0.3 × 234.71 = 70.413 → 202.413; E[repaid] = 250 + 0.75 × (400 + 300)
    = 775; E[costs] = 0.75 × 202.413 = 151.80975.

    Time value at the statutory 7 %: v = 1.07^(−1/12); kept: 100 × A(10); broken after
    t_b = 400 / 100 = 4 months: 100 × A(4), the 300 recovered in month 4 + 12 = 16:
    E[PV] = 0.25 × 100 A(10) + 0.75 × (100 A(4) + 300 v¹⁶) = 743.7961."""
    out = expected_outcome(
        np.array([0.25]), np.array([100_00]), np.array([10]), np.array([1000_00]), TABLE, POLICY
    )
    assert out.repaid_if_kept[0] == 1000_00 and out.paid_before_break[0] == 400_00
    assert out.costs_if_broken[0] == pytest.approx(202_41.3)
    assert out.expected_repaid[0] == pytest.approx(775_00)
    assert out.expected_costs[0] == pytest.approx(151_80.975)
    v = 1.07 ** (-1 / 12)

    def annuity(n: int) -> float:
        return sum(v**t for t in range(1, n + 1))

    pv = 0.25 * 100_00 * annuity(10) + 0.75 * (100_00 * annuity(4) + 300_00 * v**16)
    assert pv == pytest.approx(743_79.61, abs=0.01)
    assert out.present_value_repaid[0] == pytest.approx(pv)
    assert out.objective[0] == pytest.approx(pv - 151_80.975)


def test_without_time_value_the_objective_is_the_undiscounted_expectation():
    """time_value_rate 0 gives plan-2026.2's objective: E[repaid] − w × E[costs]."""
    flat = replace(POLICY, time_value_rate=0.0)
    args = (np.array([0.4, 0.9]), np.array([50_00, 21_00]), np.array([10, 24]))
    out = expected_outcome(*args, np.array([500_00, 500_00]), TABLE, flat)
    assert out.present_value_repaid == pytest.approx(out.expected_repaid)
    assert out.objective == pytest.approx(out.expected_repaid - out.expected_costs)


def test_the_time_value_rate_is_the_statutory_interest_in_force():
    assert POLICY.time_value_rate == "statutory_interest_consumer"
    assert POLICY.time_value_annual_pct(TABLE) == TABLE.statutory_interest_consumer_pct
    assert replace(POLICY, time_value_rate=3.5).time_value_annual_pct(TABLE) == 3.5


@pytest.mark.parametrize("rate", ["euribor", -1.0, 100.0])
def test_an_unknown_time_value_rate_is_refused(rate):
    with pytest.raises(ValueError, match="time_value_rate"):
        replace(POLICY, time_value_rate=rate)


def test_money_repaid_sooner_is_worth_more():
    """The same EUR 500, kept for sure: the shorter plan has the higher present value, and
    every plan's present value is below the principal it repays."""
    terms = np.arange(1, 25)
    monthly = np.ceil(500_00 / terms / 100) * 100
    out = expected_outcome(np.ones(24), monthly, terms, np.full(24, 500_00), TABLE, POLICY)
    assert np.all(out.expected_repaid == 500_00)
    assert np.all(np.diff(out.present_value_repaid) < 0)
    assert np.all(out.present_value_repaid < 500_00)


def test_costs_come_from_the_legal_table_and_weigh_by_the_policy():
    remaining = np.array([300_00, 0])
    costs = escalation_costs_cents(remaining, TABLE, POLICY)
    wik = TABLE.wik.costs_cents(300_00)
    interest = 300_00 * TABLE.statutory_interest_consumer_pct / 100
    bailiff = POLICY.escalation_bailiff_share * TABLE.bailiff.total_cents
    assert costs[0] == pytest.approx(wik + interest + bailiff) and costs[1] == 0
    heavy = replace(POLICY, cost_weight=3.0)
    args = (np.array([0.5]), np.array([50_00]), np.array([10]), np.array([500_00]), TABLE)
    light_out, heavy_out = expected_outcome(*args, POLICY), expected_outcome(*args, heavy)
    assert heavy_out.objective[0] == pytest.approx(
        heavy_out.present_value_repaid[0] - 3.0 * heavy_out.expected_costs[0]
    )
    assert heavy_out.objective[0] < light_out.objective[0]


def test_a_likelier_plan_scores_higher_for_the_same_debt():
    p = np.linspace(0.0, 1.0, 11)
    out = expected_outcome(
        p, np.full(11, 50_00), np.full(11, 10), np.full(11, 500_00), TABLE, POLICY
    )
    assert np.all(np.diff(out.objective) > 0)
    assert out.expected_costs[-1] == 0 and out.expected_repaid[-1] == 500_00


def test_the_policy_file_is_the_new_version_and_complete():
    assert POLICY.version == "plan-2026.4"
    assert POLICY.horizon_months >= POLICY.max_months == 24
    assert POLICY.to_dict()["safety_net"]["pause_max_months"] >= 1
    assert PlanPolicy.from_dict(POLICY.to_dict()) == POLICY


def test_a_bundle_policy_of_the_old_schema_gives_the_current_policy():
    old = {"version": "plan-2026.1", "target_p_kept": 0.8, "max_months": 18}
    assert PlanPolicy.from_dict(old) == POLICY


def test_a_horizon_shorter_than_the_longest_plan_is_refused():
    doc = json.loads(json.dumps(POLICY.to_dict()))
    doc["horizon_months"] = POLICY.max_months - 1
    with pytest.raises(ValueError, match="horizon_months"):
        PlanPolicy.from_dict(doc)


@pytest.mark.parametrize(
    ("day", "months"),
    [(date(2026, 6, 30), 0), (date(2026, 7, 1), 0), (date(2027, 1, 31), 6), (date(2027, 2, 1), 7),
     (date(2027, 3, 1), 8)],
)  # fmt: skip
def test_months_past_the_newest_table(day, months):
    assert legal_tables()[-1].effective_from == date(2026, 7, 1)
    assert months_past_newest_table(day) == months


def test_carried_forward_amounts_are_marked_unconfirmed():
    for table in legal_tables():
        if table.effective_from.year == 2026:
            assert {"bijstandsnorm_incl_holiday_cents", "statutory_interest_consumer_pct"} <= set(
                table.unconfirmed
            )
    assert legal_table_on(date(2024, 6, 1)).unconfirmed == ()

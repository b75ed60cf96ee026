"""Issue 21 in the pay-later policy: declines that stick (the decline memory), limits
that grow with on-time repayment and never exceed the affordability view, what would
raise the limit, every reason code with both texts, and the operating-point rule."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from features.build import FEATURE_INDEX
from features.events import to_day
from models.bnpl import (
    BNPL_TEXTS,
    RULES_ONLY_ARREARS_GRACE_DAYS,
    BnplPolicy,
    BnplReasonCode,
    decide,
)
from models.bnpl_operating_point import choose_operating_point
from models.budget import budget_arrays
from tests.model.test_bnpl_policy import ADULT, ON, POLICY, WITH_ARREARS, customer

NO_MEMORY = {
    "approved_matured_365d": 0.0,
    "approved_recent_eur": 0.0,
    "days_since_risk_decline": float("nan"),
    "days_since_arrears_decline": float("nan"),
    "days_since_case_decline": float("nan"),
    "situation_declines_365d": 0.0,
}
THIN = {"tenure_days": 40, "invoices_365d": 1}
# the decline memory's declining rules as bnpl-2026.12.1 set them (the shipped policy has
# none since the evidence chose none); the tests of those rules state them
MEMORY_RULES = replace(
    POLICY, sticky_codes=("B05_HIGH_RISK",), sticky_days=90, after_decline_cutoff_factor=0.5
)


def run(row, p=0.02, order=50.0, memory=None, policy=POLICY):
    return decide(
        policy,
        order_eur=order,
        currency="EUR",
        age=ADULT,
        on=ON,
        features=row,
        probability=p,
        open_case=False,
        memory=memory,
    )


def repaid(n: float, **memory: float) -> dict[str, float]:
    return {**NO_MEMORY, "approved_matured_365d": n, **memory}


def test_every_reason_code_has_an_english_and_a_dutch_text():
    assert set(BNPL_TEXTS) == set(BnplReasonCode)
    for code, (en, nl) in BNPL_TEXTS.items():
        assert en.strip() and nl.strip() and en != nl, code


def test_a_thin_file_starts_at_the_starter_limit_and_grows_stepwise_to_the_cap():
    limits = [run(customer(**THIN), memory=repaid(n)).limit_eur for n in range(12)]
    step, cap = POLICY.growth_step_up_eur, POLICY.growth_cap_eur
    assert limits[0] == POLICY.starter_limit_eur
    assert all(b - a in (0.0, step) for a, b in itertools.pairwise(limits))
    assert max(limits) == cap and limits[-1] == cap


def test_a_late_pay_later_order_lowers_the_limit_and_says_so():
    on_time = run(customer(**THIN), memory=repaid(4))
    late = run(customer(**THIN, bnpl_late_365d=1), memory=repaid(5))  # 5 due, 1 of them late
    assert late.limit_eur == on_time.limit_eur - POLICY.growth_step_down_eur
    assert BnplReasonCode.LATE_PAY_LATER in [r.code for r in late.reasons if not r.declines]


def test_the_answer_says_what_would_raise_the_limit():
    d = run(customer(**THIN), memory=repaid(1))
    assert d.limit_raise is BnplReasonCode.RAISE_ON_TIME
    assert d.next_limit_eur == d.limit_eur + POLICY.growth_step_up_eur
    top = run(customer(**THIN), memory=repaid(50))
    assert top.limit_raise is not BnplReasonCode.RAISE_ON_TIME  # at the ladder's cap
    best = run(customer(), p=0.01)
    assert best.limit_raise is BnplReasonCode.AT_MAXIMUM and best.next_limit_eur is None
    tight = run(customer(income_monthly_365d_eur=1500, income_monthly_90d_eur=1500))
    assert tight.limit_raise is BnplReasonCode.RAISE_BUDGET
    declined = run(customer(current_days_past_due=30), policy=WITH_ARREARS)
    assert not declined.offer and declined.limit_raise is None


@pytest.mark.parametrize(
    ("income", "on_time", "thin", "p"),
    list(
        itertools.product(
            (900, 1340, 1500, 2000, 3000, np.nan), (0, 2, 6, 40), (True, False), (0.01, 0.08)
        )
    ),
)
def test_a_limit_never_exceeds_half_the_monthly_free_room_where_income_is_known(
    income, on_time, thin, p
):
    row = customer(
        income_monthly_365d_eur=income, income_monthly_90d_eur=income, **(THIN if thin else {})
    )
    if np.isnan(income):
        row[FEATURE_INDEX["has_income_data"]] = 0
    d = run(row, p=p, memory=repaid(on_time))
    _, room = budget_arrays(row[None, :], np.array([to_day(ON)]), prudent=True)
    if np.isfinite(room[0]):
        assert d.limit_eur <= max(0.0, POLICY.free_room_share * float(room[0])) + 1e-9
    assert 0 <= d.available_eur <= d.limit_eur


@pytest.mark.parametrize("code", MEMORY_RULES.sticky_codes)
def test_a_recent_decline_on_the_situation_sticks_for_the_policys_days(code):
    field = {
        "B05_HIGH_RISK": "days_since_risk_decline",
        "B03_OPEN_ARREARS": "days_since_arrears_decline",
        "B04_COLLECTION_CASE": "days_since_case_decline",
    }[code]
    days = MEMORY_RULES.sticky_days
    inside = run(customer(), memory={**NO_MEMORY, field: days}, policy=MEMORY_RULES)
    assert not inside.offer and inside.declined_by == [BnplReasonCode.RECENT_DECLINE]
    later = {**NO_MEMORY, field: days + 1}
    assert run(customer(), memory=later, policy=MEMORY_RULES).offer
    assert run(customer(), memory=None, policy=MEMORY_RULES).offer
    rules = MEMORY_RULES.rules_only()  # the yardstick has no memory
    assert run(customer(), memory={**NO_MEMORY, field: 1}, policy=rules).offer


def test_after_a_decline_in_the_last_year_a_stricter_cutoff_applies():
    rules = MEMORY_RULES
    p = rules.risk_cutoff * (1 + rules.after_decline_cutoff_factor) / 2  # between the two
    remembered = {**NO_MEMORY, "situation_declines_365d": 1.0}
    assert run(customer(), p=p, policy=rules).offer
    assert run(customer(), p=p, memory=NO_MEMORY, policy=rules).offer
    d = run(customer(), p=p, memory=remembered, policy=rules)
    assert not d.offer and d.declined_by == [BnplReasonCode.RECENT_DECLINE]
    low = rules.risk_cutoff * rules.after_decline_cutoff_factor * 0.9
    assert run(customer(), p=low, memory=remembered, policy=rules).offer  # lower risk: offered
    assert run(customer(), p=p, memory=remembered, policy=rules.rules_only()).offer
    assert run(customer(), p=p, memory=remembered).offer  # the shipped policy has no such rule


def test_approvals_not_yet_in_the_event_store_count_as_open_orders():
    limit = run(customer(), p=0.01).limit_eur
    d = run(customer(), p=0.01, order=100.0, memory=repaid(0, approved_recent_eur=limit - 50))
    assert not d.offer and d.declined_by == [BnplReasonCode.EXPOSURE_LIMIT]


def test_a_policy_document_without_the_new_sections_has_neither():
    doc = {k: v for k, v in POLICY.to_dict().items() if k not in ("decline_memory", "limit_growth")}
    old = BnplPolicy.from_dict(doc)
    assert old.sticky_codes == () and old.growth_step_up_eur == 0
    d = run(customer(**THIN), memory=repaid(9, days_since_risk_decline=3.0), policy=old)
    assert d.offer and d.limit_eur == POLICY.starter_limit_eur


CURVE = [
    {"cutoff": 0.05, "approval_rate": 0.60, "collection_rate_approved": 0.0010},
    {"cutoff": 0.10, "approval_rate": 0.695, "collection_rate_approved": 0.0016},
    {"cutoff": 0.12, "approval_rate": 0.70, "collection_rate_approved": 0.0018},
    {"cutoff": 0.30, "approval_rate": 0.72, "collection_rate_approved": 0.0030},
]
RULES = {"approval_rate": 0.72, "collection_rate_approved": 0.0035}
RULE = {"rule": "lowest_collection_within_points_of_rules_only", "max_points_below_rules_only": 3}


def test_the_operating_point_is_the_lowest_risk_cutoff_within_n_points_of_the_rules():
    chosen = choose_operating_point(CURVE, RULES, RULE)
    assert chosen["cutoff"] == 0.10 and chosen["meets_rule"]
    wider = choose_operating_point(CURVE, RULES, {**RULE, "max_points_below_rules_only": 12})
    assert wider["cutoff"] == 0.05
    none = choose_operating_point(CURVE, {**RULES, "approval_rate": 0.9}, RULE)
    assert none["cutoff"] == 0.30 and not none["meets_rule"]
    with pytest.raises(ValueError, match=r"operating_point\.rule"):
        choose_operating_point(CURVE, RULES, {**RULE, "rule": "by hand"})


def test_the_shipped_policy_states_its_rule_and_a_new_version():
    assert POLICY.version == "bnpl-2026.12.2"
    # what bnpl-eval's rule chose on 10,000 customers (docs/experiments/bnpl-issue21.md)
    assert POLICY.risk_cutoff == 0.25 and POLICY.arrears_grace_days is None
    assert POLICY.sticky_codes == () and POLICY.after_decline_cutoff_factor == 1.0
    assert POLICY.operating_point["rule"] == "lowest_collection_within_points_of_rules_only"
    assert choose_operating_point(CURVE, RULES, POLICY.operating_point)["meets_rule"]


def test_the_yardstick_keeps_its_own_arrears_rule_whatever_the_policy_file_says():
    """Issue 21's yardstick is issue 5's rules, arrears a hard rule at fixed grace days:
    a policy's own arrears choice (none, or other grace days) never moves it."""
    grace = RULES_ONLY_ARREARS_GRACE_DAYS
    for policy in (POLICY, replace(POLICY, arrears_grace_days=30), WITH_ARREARS):
        rules = policy.rules_only()
        assert rules.arrears_grace_days == grace
        assert rules.rules_only() == rules
        assert run(customer(current_days_past_due=grace), policy=rules).offer
        d = run(customer(current_days_past_due=grace + 1), policy=rules)
        assert d.declined_by == [BnplReasonCode.OPEN_ARREARS]

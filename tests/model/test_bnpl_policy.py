"""Pay-later policy: each rule, and that a decline always carries its reasons."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from features.build import FEATURE_INDEX, FEATURE_NAMES
from models.bnpl import RULES_ONLY_ARREARS_GRACE_DAYS, AgeCheck, BnplPolicy, BnplReasonCode, decide

ON = date(2026, 11, 1)
ADULT = AgeCheck(verified=True, birth_date=date(1990, 5, 1), method="idin")
POLICY = BnplPolicy.default()
# the shipped policy leaves arrears to the model (bnpl-2026.12.2); tests of the arrears
# rule itself state it, as the yardstick does
WITH_ARREARS = replace(POLICY, arrears_grace_days=RULES_ONLY_ARREARS_GRACE_DAYS)


def customer(**values: float) -> np.ndarray:
    """A customer with a long, clean history and a comfortable income, plus overrides."""
    row = np.zeros(len(FEATURE_NAMES))
    base = {
        "tenure_days": 700,
        "invoices_365d": 12,
        "has_income_data": 1,
        "income_monthly_365d_eur": 4800,
        "income_monthly_90d_eur": 4800,
        "household_adults": 1,
        "household_children": 0,
        "household_pensioner": 0,
        "monthly_billed_eur": 120,
        "declared_income_eur": np.nan,
    }
    for name, value in {**base, **values}.items():
        row[FEATURE_INDEX[name]] = value
    return row


def run(row=None, p=0.01, order=200.0, age=ADULT, open_case=False, currency="EUR", policy=POLICY):
    return decide(
        policy,
        order_eur=order,
        currency=currency,
        age=age,
        on=ON,
        features=row if row is not None else customer(),
        probability=p,
        open_case=open_case,
    )


def test_a_clean_customer_gets_the_offer_and_the_limit_of_their_band():
    d = run()
    assert d.offer and d.limit_eur == POLICY.limit_for(0.01) and not d.declined_by


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"age": AgeCheck(verified=False)}, BnplReasonCode.AGE_NOT_VERIFIED),
        ({"age": AgeCheck(verified=True)}, BnplReasonCode.AGE_NOT_VERIFIED),  # no birth date
        ({"age": AgeCheck(verified=True, birth_date=date(2010, 1, 1))}, BnplReasonCode.UNDER_AGE),
        ({"order": 5000.0}, BnplReasonCode.ORDER_TOO_LARGE),
        ({"currency": "USD"}, BnplReasonCode.CURRENCY),
        ({"open_case": True}, BnplReasonCode.COLLECTION_CASE),
        (
            {"row": customer(current_days_past_due=20), "policy": WITH_ARREARS},
            BnplReasonCode.OPEN_ARREARS,
        ),
        ({"p": 0.5}, BnplReasonCode.HIGH_RISK),
        ({"row": customer(bnpl_open_eur=950), "order": 100.0}, BnplReasonCode.EXPOSURE_LIMIT),
    ],
)
def test_each_rule_declines_with_its_own_reason(kwargs, code):
    d = run(**kwargs)
    assert not d.offer
    assert d.declined_by[0] == code
    assert all(r.text_en and r.text_nl for r in d.reasons)


def test_age_is_checked_on_the_decision_day():
    turns_18 = AgeCheck(verified=True, birth_date=date(2008, 11, 1))
    assert run(age=turns_18).offer
    assert not run(age=AgeCheck(verified=True, birth_date=date(2008, 11, 2))).offer


def test_several_problems_are_all_named_most_decisive_first():
    d = run(age=AgeCheck(verified=False), open_case=True, p=0.9)
    assert d.declined_by == [
        BnplReasonCode.AGE_NOT_VERIFIED,
        BnplReasonCode.COLLECTION_CASE,
        BnplReasonCode.HIGH_RISK,
    ]
    assert d.limit_eur == 0.0


def test_arrears_within_the_grace_days_do_not_decline():
    grace = RULES_ONLY_ARREARS_GRACE_DAYS
    assert run(row=customer(current_days_past_due=grace), policy=WITH_ARREARS).offer
    assert not run(row=customer(current_days_past_due=grace + 1), policy=WITH_ARREARS).offer
    # without the hard rule (the shipped policy) arrears reach the decision through the model
    assert run(row=customer(current_days_past_due=grace + 30)).offer


def test_a_new_customer_gets_a_starter_limit_not_a_blanket_answer():
    new = decide(
        POLICY,
        order_eur=100,
        currency="EUR",
        age=ADULT,
        on=ON,
        features=None,
        probability=None,
        open_case=False,
    )
    assert new.offer and new.thin_file and new.limit_eur == POLICY.starter_limit_eur
    assert BnplReasonCode.THIN_FILE in [r.code for r in new.reasons]
    too_much = decide(
        POLICY,
        order_eur=POLICY.starter_limit_eur + 1,
        currency="EUR",
        age=ADULT,
        on=ON,
        features=None,
        probability=None,
        open_case=False,
    )
    assert not too_much.offer and too_much.declined_by == [BnplReasonCode.EXPOSURE_LIMIT]


def test_a_short_history_is_a_thin_file_too():
    d = run(row=customer(tenure_days=30, invoices_365d=1))
    assert d.thin_file and d.limit_eur == POLICY.starter_limit_eur


def test_the_limit_respects_the_budget_where_income_is_known():
    tight = run(row=customer(income_monthly_365d_eur=1500, income_monthly_90d_eur=1500), order=50.0)
    assert BnplReasonCode.AFFORDABILITY in [r.code for r in tight.reasons]
    assert tight.limit_eur < POLICY.limit_for(0.01)
    no_room = run(row=customer(income_monthly_365d_eur=900, income_monthly_90d_eur=900), order=50.0)
    assert not no_room.offer and no_room.limit_eur == 0.0


def test_higher_risk_never_raises_the_limit():
    limits = [run(p=p).limit_eur for p in np.linspace(0.0, 0.2, 41)]
    assert all(a >= b for a, b in itertools.pairwise(limits))


def test_policy_round_trips_and_rejects_nonsense():
    assert BnplPolicy.from_dict(POLICY.to_dict()) == POLICY
    with pytest.raises(ValueError, match="risk_cutoff must be in"):
        POLICY.with_cutoff(1.5)


def test_the_evaluation_counts_what_declines_each_order():
    """bnpl-eval's decline table: share declined per reason, and by that reason alone."""
    import pandas as pd

    from training.bnpl_replay import evaluate_policy

    rows = np.vstack([customer(), customer(current_days_past_due=40), customer()])
    orders = pd.DataFrame(
        {
            "amount_cents": [5_000, 5_000, 5_000],
            "issue_date": pd.to_datetime([ON] * 3),
            "collection": [False, True, True],
        }
    )
    declines: dict[str, dict[str, float]] = {}
    rates = evaluate_policy(
        WITH_ARREARS,
        orders,
        rows,
        np.array([0.01, 0.5, 0.01]),  # the one in arrears is also above the cut-off
        np.array([False, False, True]),  # the last has a claim at an agency
        np.array([1990.0, 1990.0, 1990.0]),
        declines,
    )
    assert rates["approval_rate"] == pytest.approx(1 / 3)
    assert rates["collection_rate_approved"] == 0.0
    assert declines[BnplReasonCode.OPEN_ARREARS.value]["declined_share"] == pytest.approx(1 / 3)
    assert declines[BnplReasonCode.OPEN_ARREARS.value]["declined_alone_share"] == 0.0
    assert declines[BnplReasonCode.COLLECTION_CASE.value]["declined_alone_share"] == pytest.approx(
        1 / 3
    )
    assert declines[BnplReasonCode.COLLECTION_CASE.value]["collection_rate_declined"] == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"age": AgeCheck(verified=True, birth_date=date(2010, 1, 1)), "row": None},
        {"age": AgeCheck(verified=False), "row": None},
        {"p": 0.5},
        {"open_case": True},
        {"row": customer(current_days_past_due=20), "policy": WITH_ARREARS},
    ],
)
def test_a_decline_on_the_situation_leaves_nothing_available(kwargs):
    """A declined answer never tells the checkout that money is available: with no limit
    (limit 0) nothing is available, whatever the starter or band limit would have been."""
    row = kwargs.get("row", customer())
    d = decide(
        kwargs.get("policy", POLICY),
        order_eur=50.0,
        currency="EUR",
        age=kwargs.get("age", ADULT),
        on=ON,
        features=row,
        probability=kwargs.get("p", None if row is None else 0.01),
        open_case=kwargs.get("open_case", False),
    )
    assert not d.offer and d.limit_eur == 0.0
    assert d.available_eur == 0.0


def test_a_decline_on_exposure_keeps_the_limit_and_says_what_is_left():
    d = run(row=customer(bnpl_open_eur=950), order=100.0)
    assert d.declined_by == [BnplReasonCode.EXPOSURE_LIMIT]
    assert d.limit_eur == POLICY.limit_for(0.01)
    assert d.available_eur == d.limit_eur - 950 <= d.limit_eur


TIGHT = {"income_monthly_365d_eur": 1340, "income_monthly_90d_eur": 1340}  # limit 30


def test_a_budget_cap_below_the_order_declines_on_affordability_not_exposure():
    """No open pay-later orders and a budget-capped limit below the order: the decisive
    reason is the budget (B07), not 'together with open purchases' (B06)."""
    capped = run(row=customer(**TIGHT), order=50.0).limit_eur
    assert 0 < capped < 50  # the affordability cap made the limit too small
    d = run(row=customer(**TIGHT), order=50.0)
    assert not d.offer
    assert d.declined_by == [BnplReasonCode.AFFORDABILITY]
    assert d.reasons[0].code == BnplReasonCode.AFFORDABILITY and d.reasons[0].declines
    assert d.limit_eur == capped and d.available_eur == capped  # the limit stands
    no_room = run(row=customer(income_monthly_365d_eur=900, income_monthly_90d_eur=900), order=50.0)
    assert no_room.declined_by == [BnplReasonCode.AFFORDABILITY]


def test_open_exposure_declines_on_exposure_and_the_budget_cap_is_named_when_it_counts():
    capped = run(row=customer(**TIGHT), order=1.0).limit_eur
    # the order alone fits the capped limit, the open orders make it too much: B06 decides,
    # the budget cap only shaped the limit
    fits_alone = run(row=customer(bnpl_open_eur=capped - 5, **TIGHT), order=10.0)
    assert fits_alone.declined_by == [BnplReasonCode.EXPOSURE_LIMIT]
    assert [(r.code, r.declines) for r in fits_alone.reasons][-1] == (
        BnplReasonCode.AFFORDABILITY,
        False,
    )
    # the order alone is above the capped limit and there are open orders too: both decline,
    # the budget cap first (most decisive)
    both = run(row=customer(bnpl_open_eur=5, **TIGHT), order=capped + 1)
    assert both.declined_by == [BnplReasonCode.AFFORDABILITY, BnplReasonCode.EXPOSURE_LIMIT]
    assert both.limit_eur == capped and both.available_eur == capped - 5


def test_a_limit_decline_names_a_true_decisive_reason_first():
    """Every limit decline's first reason is B06 only with open orders or without a budget
    cap, and B07 only when the budget cap is below the order."""
    for income in (900, 1300, 1340, 1500, 1800, 4800):
        for open_eur in (0.0, 20.0, 200.0):
            for order in (10.0, 50.0, 140.0, 400.0):
                row = customer(
                    income_monthly_365d_eur=income,
                    income_monthly_90d_eur=income,
                    bnpl_open_eur=open_eur,
                )
                d = run(row=row, order=order)
                capped = BnplReasonCode.AFFORDABILITY in [r.code for r in d.reasons]
                if d.offer:
                    continue
                first = d.declined_by[0]
                if first == BnplReasonCode.EXPOSURE_LIMIT:
                    assert open_eur > 0 or not capped
                    assert order + open_eur > d.limit_eur
                else:
                    assert first == BnplReasonCode.AFFORDABILITY and capped
                    assert order > d.limit_eur
                assert d.available_eur <= d.limit_eur


def test_a_limit_rests_on_the_income_as_it_is_now():
    """Review, 1 Dec 2026: after a job loss the limit rested on the old salary's 12-month
    mean. An income that fell counts at its last 90 days' rate."""
    steady = run(row=customer(income_monthly_365d_eur=2600, income_monthly_90d_eur=2600))
    fell = run(row=customer(income_monthly_365d_eur=2600, income_monthly_90d_eur=1900))
    assert fell.limit_eur < steady.limit_eur
    assert (
        fell.limit_eur
        == run(row=customer(income_monthly_365d_eur=1900, income_monthly_90d_eur=1900)).limit_eur
    )

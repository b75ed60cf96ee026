"""The issue-20 yardstick's bookkeeping (training.studies.plan_eval, plan_cohort) on
hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.simulation import ArrangementAnswer
from training.studies.plan_cohort import same_cohort, summarise_cohort
from training.studies.plan_eval import RecordedPolicy, first_request_cohort, goal_verdicts

T = pd.Timestamp
DATA_END = T("2027-06-01")


def _tables() -> dict[str, pd.DataFrame]:
    invoices = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "J1"],
            "customer_id": ["A", "A", "A", "B"],
            "issue_date": [T("2025-01-01"), T("2025-02-01"), T("2025-04-01"), T("2025-01-01")],
            "due_date": [T("2025-01-15"), T("2025-02-15"), T("2025-04-15"), T("2025-01-15")],
            "amount_cents": [100_00, 50_00, 70_00, 200_00],
        }
    )
    payments = pd.DataFrame(
        {
            "invoice_id": ["I1", "I1", "I2", "I3", "J1", "J1"],
            "paid_at": [
                T("2025-02-01"),  # before the request: not repaid under the policy
                T("2025-04-10"),
                T("2027-01-01"),  # after 12 months, within 24
                T("2025-05-01"),  # an invoice not yet overdue at the request
                T("2025-06-01"),
                T("2025-07-01"),
            ],
            "amount_cents": [30_00, 70_00, 50_00, 70_00, 120_00, 80_00],
        }
    )
    steps = pd.DataFrame(
        {
            "invoice_id": ["I1", "I1", "I2", "J1"],
            "customer_id": ["A", "A", "A", "B"],
            "step_date": [T("2025-03-01"), T("2025-08-01"), T("2025-08-01"), T("2025-03-01")],
            "step": ["agency", "bailiff", "agency", "agency"],
            "cost_cents": [40_00, 120_00, 0, 40_00],
        }
    )
    arrangements = pd.DataFrame(
        {
            "arrangement_id": ["ARR-1"],
            "customer_id": ["B"],
            "start_date": [T("2025-03-01")],
            "debt_cents": [200_00],
            "monthly_amount_cents": [120_00],
            "term_months": [2],
            "outcome": ["kept"],
            "end_date": [T("2025-07-01")],
        }
    )
    return {
        "invoices": invoices,
        "payments": payments,
        "collection_steps": steps,
        "arrangements": arrangements,
    }


def _requests() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "start_date": [T("2025-03-01"), T("2025-09-01"), T("2025-03-01")],
            "debt_cents": [120_00, 50_00, 200_00],
            "monthly_cents": [0, 0, 120_00],
            "referral": [True, True, False],
            "pause_max_months": [0, 0, 2],
            "referral_reason": ["no_free_room", "no_free_room", None],
        }
    )


def test_first_request_cohort_counts_repaid_and_costs_on_the_covered_debt() -> None:
    cohort = first_request_cohort(_tables(), _requests(), DATA_END).set_index("customer_id")
    assert list(cohort.index) == ["A", "B"]  # the first request per customer only
    assert cohort["observable"].all()  # 24 months after 2025-03-01 lie before the end
    a, b = cohort.loc["A"], cohort.loc["B"]
    # A: I1 (70 of 100 left) and I2 (50) overdue at the request; I3 not yet due
    assert a["covered_cents"] == 120_00
    assert a["repaid_12m_cents"] == 70_00  # I1's rest; I2 paid after 12 months ...
    assert a["repaid_24m_cents"] == 120_00  # ... but within 24
    assert a["costs_24m_cents"] == 120_00  # the bailiff after the request; not the WIK before
    assert a["bailiff_24m"]
    assert np.isnan(a["kept_24m"])  # a referral is not a plan
    assert b["repaid_24m_cents"] == 200_00 and b["kept_24m"] == 1.0
    assert b["costs_24m_cents"] == 0 and not b["bailiff_24m"]  # the step on the request day


def test_a_request_without_24_months_of_data_after_it_is_not_observable() -> None:
    cohort = first_request_cohort(_tables(), _requests(), T("2027-02-28"))
    assert not cohort["observable"].any()


def test_summary_shares_reasons_and_goal_verdicts() -> None:
    cohort = first_request_cohort(_tables(), _requests(), DATA_END)
    s = summarise_cohort(cohort)
    assert s["customers"] == 2 and s["referrals"] == 1 and s["referral_share"] == 0.5
    assert s["plans_kept_share_24m"] == 1.0
    assert s["principal_repaid_24m_eur"] == 320.0 and s["principal_repaid_12m_eur"] == 270.0
    assert s["collection_costs_24m_eur"] == 120.0 and s["customers_reaching_bailiff_24m"] == 1
    assert s["referral_reasons"] == {"no_free_room": 1} and s["referrals_without_reason"] == 0
    assert s["plans_with_pause"] == 1
    naive = [
        {"principal_repaid_24m_eur": 300.0, "collection_costs_24m_eur": 200.0},
        {"principal_repaid_24m_eur": 350.0, "collection_costs_24m_eur": 400.0},
    ]
    goals = goal_verdicts(s, naive)
    assert goals["referral_share"]["met"] is False
    assert goals["referral_share"]["missed_by"] == 0.5 - 0.2
    assert goals["plans_kept_share_24m"]["met"] is True
    assert goals["principal_repaid_24m_eur"] == {
        "value": 320.0, "goal": 350.0, "met": False, "missed_by": 30.0
    }  # fmt: skip
    assert goals["collection_costs_24m_eur"]["goal"] == 100.0  # half the cheaper naive policy's
    assert goals["every_referral_has_a_structural_reason"] is True


def test_same_cohort_finds_a_request_that_differs() -> None:
    cohort = first_request_cohort(_tables(), _requests(), DATA_END)
    other = cohort.assign(debt_cents=cohort["debt_cents"].where(cohort["customer_id"] == "A", 1))
    assert same_cohort({"x": cohort, "y": cohort})["identical"]
    check = same_cohort({"x": cohort, "y": other})
    assert not check["identical"] and check["requests_differing"] == {"y": 2}


def test_recorded_policy_marks_zero_as_a_referral_and_keeps_the_pause() -> None:
    class Request:
        customer_id = np.array(["A", "B"])
        day = T("2025-03-01").date()
        debt_cents = np.array([100_00, 300_00])

    answer = ArrangementAnswer(np.array([0, 60_00]), np.array([0, 2]), 1)
    recorded = RecordedPolicy(lambda req: answer)
    assert recorded(Request()) is answer  # type: ignore[arg-type]
    requests = recorded.requests()
    assert list(requests["referral"]) == [True, False]
    assert list(requests["pause_max_months"]) == [0, 2]
    plain = RecordedPolicy(lambda req: np.array([0, 60_00]))
    assert list(plain(Request())) == [0, 60_00]  # type: ignore[arg-type]
    assert list(plain.requests()["pause_max_months"]) == [0, 0]


def test_trade_off_rows_vary_one_knob_only() -> None:
    from training.studies.plan_eval import _trade_off

    def run(weight: float, rate: float) -> dict[str, float]:
        return {"cost_weight": weight, "plan_pause_ask_rate": rate, "referral_share": weight}

    policies = {
        "debt_over_5_months": {"referral_share": 0.0},
        "tijdig": run(1.0, 0.5),
        "tijdig_cost_weight_0": run(0.0, 0.5),
        "tijdig_pause_ask_1": run(1.0, 1.0),
    }
    weights = _trade_off(policies, "cost_weight")
    assert [row["policy"] for row in weights] == ["tijdig_cost_weight_0", "tijdig"]
    rates = _trade_off(policies, "plan_pause_ask_rate")
    assert [row["policy"] for row in rates] == ["tijdig", "tijdig_pause_ask_1"]

"""The issue-3 yardstick's bookkeeping (training.studies.plan_eval) on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.studies.plan_eval import RecordedPolicy, first_request_cohort

T = pd.Timestamp


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
                T("2027-01-01"),  # after the 12 months
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


def test_first_request_cohort_counts_repaid_and_costs_on_the_covered_debt() -> None:
    requests = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "start_date": [T("2025-03-01"), T("2025-09-01"), T("2025-03-01")],
            "debt_cents": [120_00, 50_00, 200_00],
            "monthly_cents": [0, 0, 120_00],
            "referral": [True, True, False],
        }
    )
    cohort = first_request_cohort(_tables(), requests).set_index("customer_id")
    assert list(cohort.index) == ["A", "B"]  # the first request per customer only
    a, b = cohort.loc["A"], cohort.loc["B"]
    # A: I1 (70 of 100 left) and I2 (50) overdue at the request; I3 not yet due
    assert a["repaid_12m_cents"] == 70_00  # I1's rest in the window, I2 paid too late
    assert a["costs_12m_cents"] == 120_00  # the bailiff after the request; not the WIK before
    assert np.isnan(a["kept_12m"])  # a referral is not a plan
    assert b["repaid_12m_cents"] == 200_00 and b["kept_12m"] == 1.0
    assert b["costs_12m_cents"] == 0  # the agency step on the request day was before it


def test_recorded_policy_marks_zero_as_a_referral() -> None:
    class Request:
        customer_id = np.array(["A", "B"])
        day = T("2025-03-01").date()
        debt_cents = np.array([100_00, 300_00])

    recorded = RecordedPolicy(lambda req: np.array([0, 60_00]))
    answer = recorded(Request())  # type: ignore[arg-type]
    assert list(answer) == [0, 60_00]
    assert list(recorded.requests()["referral"]) == [True, False]

"""The expected outcome of a payment plan: principal repaid and the customer's collection costs.

The model of a plan, for a debt ``D`` (cents), a monthly amount ``m`` over ``T`` months, the
horizon ``H`` (policy ``horizon_months``, at least the longest plan) and ``p`` = P(kept)::

    kept   (probability p):      the plan repays  K = min(D, m × min(T, H)); no costs.
    broken (probability 1 − p):  before breaking the customer pays  B = s × K
                                 (s = ``broken_paid_share``: the average share of the
                                 scheduled instalments paid before a plan breaks);
                                 the rest  R = D − B  goes to escalation, which
                                 recovers  r × R  within the horizon
                                 (r = ``escalation_recovery_share``) and charges the
                                 customer  C(R) = WIK(R)                       (statutory scale)
                                              + R × i × n / 12                 (statutory interest
                                                                                 at the consumer
                                                                                 rate i, for n =
                                                                                 ``escalation_interest_months``)
                                              + b × bailiff                    (summons and service
                                                                                 of judgment, Btag,
                                                                                 with probability
                                                                                 b = ``escalation_bailiff_share``)

    E[repaid] = p × K + (1 − p) × (B + r × R)
    E[costs]  = (1 − p) × C(R)
    objective = E[repaid] − w × E[costs]          (w = ``cost_weight``)

The WIK scale, the interest rate and the bailiff's tariffs come from the legal table in
force (:mod:`models.legal`); the shares and the weight from the plan policy. P(kept) is an
input to the expectation, never a cut-off: a plan more likely to be kept scores higher
because a broken plan repays less and costs the customer more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.legal import LegalTable
from models.plan_policy import PlanPolicy


@dataclass
class PlanOutcome:
    """Expected outcomes per plan (arrays of the shape of the inputs, cents)."""

    repaid_if_kept: np.ndarray  # K
    paid_before_break: np.ndarray  # B
    costs_if_broken: np.ndarray  # C(R)
    expected_repaid: np.ndarray  # E[repaid] within the horizon
    expected_costs: np.ndarray  # E[costs] borne by the customer
    objective: np.ndarray  # E[repaid] − w × E[costs]


def escalation_costs_cents(
    remaining_cents: np.ndarray, table: LegalTable, policy: PlanPolicy
) -> np.ndarray:
    """C(R): the collection costs a customer bears on ``remaining_cents`` after a broken
    plan (see the module doc); 0 where nothing remains."""
    remaining = np.asarray(remaining_cents, dtype=np.int64)
    values, inverse = np.unique(remaining, return_inverse=True)
    wik = np.array([table.wik.costs_cents(int(v)) if v > 0 else 0 for v in values], float)
    interest = (
        values
        * table.statutory_interest_consumer_pct
        / 100
        * policy.escalation_interest_months
        / 12
    )
    bailiff = policy.escalation_bailiff_share * table.bailiff.total_cents
    costs = np.where(values > 0, wik + interest + bailiff, 0.0)
    return costs[inverse].reshape(remaining.shape)


def expected_outcome(
    p_kept: np.ndarray,
    monthly_cents: np.ndarray,
    months: np.ndarray,
    debt_cents: np.ndarray,
    table: LegalTable,
    policy: PlanPolicy,
) -> PlanOutcome:
    """The expectation of the module doc, elementwise over broadcastable arrays."""
    p = np.asarray(p_kept, dtype=float)
    debt = np.asarray(debt_cents, dtype=np.int64)
    scheduled = np.asarray(monthly_cents, dtype=np.int64) * np.minimum(
        np.asarray(months), policy.horizon_months
    )
    kept = np.minimum(debt, scheduled)
    before = np.round(policy.broken_paid_share * kept).astype(np.int64)
    remaining = np.broadcast_to(debt - before, np.broadcast_shapes(p.shape, before.shape))
    costs = escalation_costs_cents(remaining, table, policy)
    repaid = p * kept + (1 - p) * (before + policy.escalation_recovery_share * remaining)
    expected_costs = (1 - p) * costs
    return PlanOutcome(
        repaid_if_kept=np.broadcast_to(kept, remaining.shape),
        paid_before_break=np.broadcast_to(before, remaining.shape),
        costs_if_broken=costs,
        expected_repaid=repaid,
        expected_costs=expected_costs,
        objective=repaid - policy.cost_weight * expected_costs,
    )

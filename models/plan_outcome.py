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

**Time value** (plan-2026.3). Money repaid sooner is worth more to the creditor, so the
objective counts each euro of principal at its present value, discounted monthly at the
annual rate ``a`` the policy names (``time_value_rate``: ``"statutory_interest_consumer"``
takes the consumer statutory interest of the legal table in force, art. 6:119 BW — the
rate the law itself sets as a creditor's compensation for money paid late; DOMAIN.md §1;
a number is an annual percentage, 0 switches the term off). With ``v = (1 + a)^(−1/12)``
and ``A(n) = v + v² + … + vⁿ`` (extended to fractional ``n`` as ``v(1 − vⁿ)/(1 − v)``):

    kept:    instalments m in months 1 … T−1 and the rest K − m(T−1) in month T
             PV_kept  = m × A(T − 1) + (K − m(T − 1)) × v^T
    broken:  B paid at m a month until month  t_b = B / m,  the recovery r × R in month
             t_r = min(H, t_b + n)  (n = ``escalation_interest_months``: the months the
             rest stays open in escalation, the same n the interest is charged for)
             PV_broken = m × A(t_b) + r × R × v^t_r

    E[PV repaid] = p × PV_kept + (1 − p) × PV_broken
    objective    = E[PV repaid] − w × E[costs]          (w = ``cost_weight``)

Why: without it, with the longest plan inside the horizon, every plan repays the whole
debt if kept and the same remainder if broken, so the objective was a constant plus a
multiple of P(kept) and no cost weight could change a decision (README, plan-2026.2's
finding). With it a shorter plan is worth more when kept and a longer, likelier plan
saves expected costs: ``w`` trades one against the other. The customer's costs are not
discounted: ``w`` weighs a euro of them against a euro of principal repaid today.

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
    present_value_repaid: np.ndarray  # E[PV repaid]: E[repaid] discounted (time value)
    objective: np.ndarray  # E[PV repaid] − w × E[costs]


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


def monthly_discount_factor(table: LegalTable, policy: PlanPolicy) -> float:
    """v = (1 + a)^(−1/12) for the policy's annual time-value rate ``a`` (module doc)."""
    return float((1 + policy.time_value_annual_pct(table) / 100) ** (-1 / 12))


def annuity_factor(months: np.ndarray, v: float) -> np.ndarray:
    """A(n) = v + … + vⁿ, the present value of 1 a month paid at the end of months 1 … n
    (fractional ``n`` by the same closed form; ``n`` itself when ``v`` = 1)."""
    n = np.asarray(months, dtype=float)
    if v >= 1.0:
        return n
    return v * (1 - v**n) / (1 - v)


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
    recovered = policy.escalation_recovery_share * remaining
    repaid = p * kept + (1 - p) * (before + recovered)
    expected_costs = (1 - p) * costs
    v = monthly_discount_factor(table, policy)
    m = np.asarray(monthly_cents, dtype=float)
    term = np.minimum(np.asarray(months, dtype=float), policy.horizon_months)
    pv_kept = m * annuity_factor(term - 1, v) + (kept - m * (term - 1)) * v**term
    broken_month = before / m
    recovery_month = np.minimum(
        policy.horizon_months, broken_month + policy.escalation_interest_months
    )
    pv_broken = m * annuity_factor(broken_month, v) + recovered * v**recovery_month
    present_value = p * pv_kept + (1 - p) * pv_broken
    return PlanOutcome(
        repaid_if_kept=np.broadcast_to(kept, remaining.shape),
        paid_before_break=np.broadcast_to(before, remaining.shape),
        costs_if_broken=costs,
        expected_repaid=repaid,
        expected_costs=expected_costs,
        present_value_repaid=present_value,
        objective=present_value - policy.cost_weight * expected_costs,
    )

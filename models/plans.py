"""Plan suggestion: the monthly amount and term with the best expected outcome.

For a debt, every term of 1..``max_months`` months gives a monthly amount (the debt
split evenly, rounded up to ``amount_step_cents``, never below ``min_monthly_amount``).
The P(kept) model scores each, and :mod:`models.plan_outcome` turns P(kept) into the
expected principal repaid and the expected collection costs the customer bears if the
plan breaks, over a horizon in which the longest plan finishes. The suggestion maximises

    objective = E[repaid] − cost_weight × E[costs]

among the plans the budget can carry (a hard cap: short plans up to the Nibud *maximum*
capacity, longer ones up to the *standard* capacity, when the free room is known),
preferring the shortest term that comes within ``tie_tolerance`` of the best: within that
share of the spread between the best and the worst plan the budget carries (a share of
the spread, not of the debt, so the level of P(kept) alone does not move the choice to a
higher amount). P(kept) is an
input to the expectation, never a cut-off. When the choice's P(kept) is below the policy's
target (plan-2026.4), a promise likely to break helps no one: every term is held to the
standard capacity, and the suggestion moves to a lower amount over a longer term where the
model says it is kept more often: the shortest plan whose P(kept) reaches the lower of the
target and ``low_p_kept_share`` of the best those plans reach. It
comes with the pause option and an earlier check-in, never a referral.

A referral to debt help (CCD2 art. 36) has structural reasons only
(:class:`~models.plan_reasons.ReferralReason`): no free room; the debt cannot be repaid
within the debt-scheme term (legal table) at the standard capacity; or signs of
problematic debt the caller passes in (:class:`DebtSignals`). Every plan names its safety
net (CCD2 art. 35): the pause the customer may ask for and when the creditor checks in.
Policy numbers live in ``models/config/plan_policy.json`` (versioned), never here.

For each term the grid uses the smallest whole-step amount that repays the debt in that
term: a larger amount with the same term has a lower P(kept) (monotone model) and repays
no more, so searching terms covers every amount worth considering.

:func:`plan_grid` is columnar over many customers (the simulator's policy hook);
:func:`advise` shapes the answer for one customer (the endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Final

import numpy as np

from features.build import FEATURE_INDEX
from features.events import from_day
from models.budget import BudgetView, Confidence
from models.legal import legal_table_on, months_past_newest_table
from models.plan_kept import PlanKeptModel, plan_matrix
from models.plan_outcome import expected_outcome
from models.plan_policy import PlanPolicy, SafetyNetPolicy
from models.plan_reasons import REASON_TEXTS, SAFETY_NET_TEXT, PlanReason, ReferralReason

__all__ = [
    "REASON_TEXTS",
    "Advice",
    "DebtSignals",
    "EscalationComparison",
    "Plan",
    "PlanGrid",
    "PlanPolicy",
    "PlanReason",
    "ReferralReason",
    "SafetyNet",
    "SafetyNetPolicy",
    "advise",
    "debt_signals_from_features",
    "escalation_comparison",
    "plan_grid",
]

#: the window of the ``expected_repaid_12m`` diagnostic (cash from instalments in a year)
DIAGNOSTIC_MONTHS: Final = 12


@dataclass
class PlanGrid:
    """Every candidate term for every customer (arrays are customers × terms)."""

    terms: np.ndarray  # (T,)
    monthly_cents: np.ndarray  # (n, T)
    p_kept: np.ndarray  # (n, T)
    expected_repaid_cents: np.ndarray  # (n, T) principal, within the horizon
    acceptable: np.ndarray  # (n, T) bool: valid, fits the budget, and no structural referral
    valid: np.ndarray  # (n, T) bool: a distinct, allowed amount for that term
    choice: np.ndarray  # (n,) index into terms, -1 = referral
    best_effort: np.ndarray  # (n,) index of the highest-P(kept) valid term (a diagnostic)
    # (n,) index of the valid term with the best objective among those that fit the
    # budget (else among all valid terms): the simulator's fallback, it cannot refer
    best_expected: np.ndarray
    referral: np.ndarray  # (n,) bool: a structural budget referral
    referral_reason: np.ndarray  # (n,) object: ReferralReason value or None
    fits: np.ndarray  # (n, T) bool: the amount fits the budget's capacity (when known)
    # (n,) index of the best-objective valid term that fits the budget; -1 when none fits
    # or there is no free room (nothing may be offered then)
    best_fitting: np.ndarray
    expected_costs_cents: np.ndarray  # (n, T) collection costs the customer is expected to bear
    costs_if_broken_cents: np.ndarray  # (n, T) those costs should the plan break
    objective_cents: np.ndarray  # (n, T) expected repaid − cost_weight × expected costs
    expected_repaid_12m_cents: np.ndarray  # (n, T) instalments expected in the first 12 months


def plan_grid(
    model: PlanKeptModel,
    X_base: np.ndarray,
    as_of_days: np.ndarray | int,
    debt_cents: np.ndarray,
    policy: PlanPolicy,
    *,
    income_eur: np.ndarray | None = None,
    free_room_eur: np.ndarray | None = None,
    standard_capacity_eur: np.ndarray | None = None,
    maximum_capacity_eur: np.ndarray | None = None,
) -> PlanGrid:
    """Score every term 1..max_months for every customer and pick the plan (see module doc)."""
    n = X_base.shape[0]
    debt = np.asarray(debt_cents, dtype=np.int64)
    if np.any(debt <= 0):
        raise ValueError("debt_cents must be positive")
    terms = np.arange(1, policy.max_months + 1)
    monthly = _monthly_for_terms(debt, terms, policy)
    real_terms = -(-debt[:, None] // monthly)  # the term the amount really gives
    valid = real_terms == terms[None, :]  # drop duplicates (same amount, other nominal term)
    days = np.broadcast_to(np.asarray(as_of_days, dtype=np.int64), (n,))
    T = len(terms)
    rows = plan_matrix(
        np.repeat(X_base, T, axis=0),
        np.repeat(days, T),
        monthly.reshape(-1) / 100,
        np.repeat(debt, T) / 100,
        income_eur=None if income_eur is None else np.repeat(np.asarray(income_eur, float), T),
        free_room_eur=None
        if free_room_eur is None
        else np.repeat(np.asarray(free_room_eur, float), T),
    )
    p = model.predict(rows).reshape(n, T)
    repaid = np.zeros((n, T))
    costs = np.zeros((n, T))
    costs_if_broken = np.zeros((n, T))
    objective = np.zeros((n, T))
    scheme_months = np.zeros(n, np.int64)
    for day in np.unique(days):
        at = days == day
        table = legal_table_on(from_day(int(day)))
        out = expected_outcome(p[at], monthly[at], terms[None, :], debt[at, None], table, policy)
        repaid[at], costs[at] = out.expected_repaid, out.expected_costs
        costs_if_broken[at], objective[at] = out.costs_if_broken, out.objective
        scheme_months[at] = table.max_debt_scheme_months
    year = np.minimum(debt[:, None], monthly * np.minimum(terms, DIAGNOSTIC_MONTHS)[None, :])
    repaid_12m = p * year + (1 - p) * policy.broken_paid_share * year

    fits = np.ones((n, T), bool)
    short = terms[None, :] <= policy.short_plan_max_months
    if maximum_capacity_eur is not None:
        cap_max = np.asarray(maximum_capacity_eur, float)[:, None] * 100
        fits &= ~short | ~np.isfinite(cap_max) | (monthly <= cap_max)
    beyond_scheme = np.zeros(n, bool)
    if standard_capacity_eur is not None:
        cap_std = np.asarray(standard_capacity_eur, float) * 100
        fits &= short | ~np.isfinite(cap_std[:, None]) | (monthly <= cap_std[:, None])
        # the smallest instalment that repays within the debt-scheme term (legal table)
        needed = _monthly_for_terms(debt, scheme_months[:, None], policy)[:, 0]
        beyond_scheme = np.isfinite(cap_std) & (needed > cap_std)
    no_room = np.zeros(n, bool)
    if free_room_eur is not None:
        room = np.asarray(free_room_eur, float)
        no_room = np.isfinite(room) & (room <= 0)
    fit_valid = valid & fits
    capacity = beyond_scheme | ~fit_valid.any(axis=1)
    referral = no_room | capacity
    acceptable = fit_valid & ~referral[:, None]
    any_plan = acceptable.any(axis=1)
    score = np.where(acceptable, objective, -np.inf)
    best = np.where(any_plan, score.max(axis=1), 0.0)
    worst = np.where(any_plan, np.where(acceptable, objective, np.inf).min(axis=1), 0.0)
    near = acceptable & (score >= (best - policy.tie_tolerance * (best - worst))[:, None])
    choice = np.where(any_plan, np.argmax(near, axis=1), -1)
    choice = _careful_when_unlikely_kept(
        choice, p, acceptable, monthly, objective, standard_capacity_eur, policy
    )
    best_effort = np.argmax(np.where(valid, p, -np.inf), axis=1)
    pool = np.where(fit_valid.any(axis=1)[:, None], fit_valid, valid)
    best_expected = np.argmax(np.where(pool, objective, -np.inf), axis=1)
    offerable = fit_valid & ~no_room[:, None]
    best_fitting = np.where(
        offerable.any(axis=1), np.argmax(np.where(offerable, objective, -np.inf), axis=1), -1
    )
    reason = np.full(n, None, dtype=object)
    reason[capacity] = ReferralReason.CAPACITY_TOO_SMALL.value
    reason[no_room] = ReferralReason.NO_FREE_ROOM.value
    return PlanGrid(
        terms=terms,
        monthly_cents=monthly,
        p_kept=p,
        expected_repaid_cents=repaid,
        acceptable=acceptable,
        valid=valid,
        choice=choice,
        best_effort=best_effort,
        best_expected=best_expected,
        referral=referral,
        referral_reason=reason,
        fits=fits,
        best_fitting=best_fitting,
        expected_costs_cents=costs,
        costs_if_broken_cents=costs_if_broken,
        objective_cents=objective,
        expected_repaid_12m_cents=repaid_12m,
    )


def _careful_when_unlikely_kept(
    choice: np.ndarray,
    p: np.ndarray,
    acceptable: np.ndarray,
    monthly: np.ndarray,
    objective: np.ndarray,
    standard_capacity_eur: np.ndarray | None,
    policy: PlanPolicy,
) -> np.ndarray:
    """plan-2026.4: where the objective's choice has P(kept) below ``target_p_kept``, only
    plans within the standard capacity count (every term held to it; unknown capacity:
    every acceptable plan), and of those the longer of (a) the objective's choice and (b)
    the shortest plan whose P(kept) reaches the lower of the target and
    ``low_p_kept_share`` of the best they reach. So never a higher amount than the
    objective asks within that capacity, a lower one where the model says it is kept
    clearly more often, and with a flat P(kept) the objective's (shorter) plan stays. Just
    below the target it moves to the first plan that meets it where one does. Rows at
    or above the target are unchanged."""
    rows = np.arange(choice.shape[0])
    low = (choice >= 0) & (p[rows, np.maximum(choice, 0)] < policy.target_p_kept)
    if not low.any():
        return choice
    careful = acceptable.copy()
    if standard_capacity_eur is not None:
        cap_std = np.asarray(standard_capacity_eur, float)[:, None] * 100
        careful &= ~np.isfinite(cap_std) | (monthly <= cap_std)
    low &= careful.any(axis=1)
    score = np.where(careful, objective, -np.inf)
    best = score.max(axis=1)
    worst = np.where(careful, objective, np.inf).min(axis=1)
    spread = np.where(np.isfinite(best) & np.isfinite(worst), best - worst, 0.0)
    by_objective = np.argmax(
        careful & (score >= (best - policy.tie_tolerance * spread)[:, None]), 1
    )
    best_p = np.where(careful, p, -np.inf).max(axis=1)
    # the target, or a share of the best reachable P(kept) where that is lower: a plan
    # need not stretch to the longest term for the last points below the target
    bar = np.minimum(policy.target_p_kept, best_p * policy.low_p_kept_share)
    by_p_kept = np.argmax(careful & (p >= bar[:, None]), axis=1)
    return np.where(low, np.maximum(by_objective, by_p_kept), choice)


def _monthly_for_terms(debt: np.ndarray, terms: np.ndarray, policy: PlanPolicy) -> np.ndarray:
    """The smallest whole-step amount, at least the minimum, that repays ``debt`` in each
    term (never more than the debt): (n, T) for terms (T,), or per customer for (n, 1)."""
    step = policy.amount_step_cents
    t = np.asarray(terms)
    t = t[None, :] if t.ndim == 1 else t
    raw = np.ceil(debt[:, None] / t / step) * step
    return np.minimum(np.maximum(raw, policy.min_monthly_amount_cents), debt[:, None]).astype(
        np.int64
    )


# ---------------------------------------------------------------------------- one customer


@dataclass(frozen=True)
class DebtSignals:
    """Signs of problematic debt the caller knows (e.g. from features); ``None`` = unknown,
    which never refers."""

    open_collection_cases: int | None = None  # open collection cases, any creditor
    open_payment_plans: int | None = None  # running payment plans, any creditor
    broken_plans: int | None = None  # payment plans broken before
    income_below_protected_minimum: bool | None = None


def debt_signals_from_features(row: np.ndarray) -> DebtSignals:
    """The signals this creditor's own history shows: its broken and running plans. Open
    collection cases with other creditors and the income test are the caller's to add."""

    def count(name: str) -> int | None:
        value = row[FEATURE_INDEX[name]]
        return int(value) if np.isfinite(value) else None

    return DebtSignals(
        open_payment_plans=count("arrangement_active"), broken_plans=count("arrangements_broken")
    )


@dataclass
class Plan:
    monthly_amount_eur: float
    months: int
    last_instalment_eur: float
    p_kept: float
    expected_repaid_12m_eur: float  # instalments expected in the first 12 months
    meets_target: bool  # P(kept) ≥ the policy's target_p_kept (informational, never a cut-off)
    kind: str  # suggested | shorter | longer | lowest_amount | best_effort
    expected_repaid_eur: float  # principal expected within the horizon (plan or escalation)
    expected_costs_eur: float  # collection costs the customer is expected to bear
    costs_if_broken_eur: float  # those costs should the plan break
    expected_value_eur: float  # the objective: expected repaid − weight × expected costs


@dataclass
class SafetyNet:
    """The forbearance a plan carries (CCD2 art. 35), with its text for the customer."""

    pause_max_months: int
    pause_times: int
    check_in_after_missed_instalments: int
    check_in_month: int
    text_en: str
    text_nl: str


@dataclass
class EscalationComparison:
    """What escalation would add on top of the principal, beside what a kept plan avoids."""

    principal_eur: float
    wik_costs_eur: float  # extrajudicial collection costs (WIK scale)
    statutory_interest_eur: float  # over the plan's term at the consumer rate
    total_on_top_eur: float
    expected_avoided_eur: float  # P(kept) × total on top
    legal_table_version: str


@dataclass
class Advice:
    suggested: Plan | None
    alternatives: list[Plan]
    referral: bool
    referral_reason: str | None  # the first of referral_reasons
    reasons: list[PlanReason]
    escalation: EscalationComparison
    policy_version: str
    model_version: str
    notes: list[str] = field(default_factory=list)
    referral_reasons: list[ReferralReason] = field(default_factory=list)
    safety_net: SafetyNet | None = None  # with every plan; None on a referral
    horizon_months: int = 0  # the horizon of expected_repaid / expected_costs
    legal_table_version: str = ""
    legal_table_stale: bool = False  # as_of lies too far past the newest legal table
    legal_notices: list[str] = field(default_factory=list)


def _plan(grid: PlanGrid, j: int, debt_cents: int, kind: str, policy: PlanPolicy) -> Plan:
    m = int(grid.monthly_cents[0, j])
    months = int(grid.terms[j])
    last = debt_cents - m * (months - 1)
    p = float(grid.p_kept[0, j])

    def eur(values: np.ndarray) -> float:
        return round(float(values[0, j]) / 100, 2)

    return Plan(
        monthly_amount_eur=m / 100,
        months=months,
        last_instalment_eur=round(last / 100, 2),
        p_kept=round(p, 4),
        expected_repaid_12m_eur=eur(grid.expected_repaid_12m_cents),
        meets_target=p >= policy.target_p_kept,
        kind=kind,
        expected_repaid_eur=eur(grid.expected_repaid_cents),
        expected_costs_eur=eur(grid.expected_costs_cents),
        costs_if_broken_eur=eur(grid.costs_if_broken_cents),
        expected_value_eur=eur(grid.objective_cents),
    )


def escalation_comparison(
    debt_cents: int, on: date, months: int, p_kept: float
) -> EscalationComparison:
    table = legal_table_on(on)
    wik = table.wik.costs_cents(debt_cents) / 100
    interest = debt_cents / 100 * table.statutory_interest_consumer_pct / 100 * max(months, 1) / 12
    total = wik + interest
    return EscalationComparison(
        principal_eur=debt_cents / 100,
        wik_costs_eur=round(wik, 2),
        statutory_interest_eur=round(interest, 2),
        total_on_top_eur=round(total, 2),
        expected_avoided_eur=round(p_kept * total, 2),
        legal_table_version=table.version,
    )


def signal_referral_reasons(signals: DebtSignals, policy: PlanPolicy) -> list[ReferralReason]:
    """The problematic-debt reasons the signals show (unknown signals show none)."""
    reasons: list[ReferralReason] = []
    counts = [c for c in (signals.open_collection_cases, signals.open_payment_plans) if c]
    if counts and sum(counts) >= policy.several_open_debts_min:
        reasons.append(ReferralReason.SEVERAL_OPEN_DEBTS)
    if (
        signals.broken_plans is not None
        and signals.broken_plans >= policy.repeated_broken_plans_min
    ):
        reasons.append(ReferralReason.REPEATED_BROKEN_PLANS)
    if signals.income_below_protected_minimum:
        reasons.append(ReferralReason.INCOME_BELOW_PROTECTED_MINIMUM)
    return reasons


def safety_net(policy: PlanPolicy, months: int, low_p_kept: bool) -> SafetyNet:
    """The pause and check-ins of a plan of ``months`` (an earlier check-in when P(kept)
    is below the policy's target)."""
    net = policy.safety_net
    month = net.check_in_month_low_p_kept if low_p_kept else net.check_in_month
    month = max(1, min(month, months))
    values = {
        "pause": net.pause_max_months,
        "times": net.pause_times,
        "missed": net.check_in_after_missed_instalments,
        "month": month,
    }
    return SafetyNet(
        pause_max_months=net.pause_max_months,
        pause_times=net.pause_times,
        check_in_after_missed_instalments=net.check_in_after_missed_instalments,
        check_in_month=month,
        text_en=SAFETY_NET_TEXT[0].format(**values),
        text_nl=SAFETY_NET_TEXT[1].format(**values),
    )


def legal_notices(on: date, policy: PlanPolicy) -> tuple[bool, list[str]]:
    """(stale, notices): whether ``on`` lies more than the policy's months past the newest
    legal table, and the amounts of the table in force that no source confirmed."""
    table = legal_table_on(on)
    notices: list[str] = []
    past = months_past_newest_table(on)
    stale = past > policy.legal_table_stale_after_months
    if stale:
        notices.append(
            f"the newest legal table ({table.version}) took effect {past} months before "
            f"{on.isoformat()}: legal amounts may be out of date"
        )
    if table.unconfirmed:
        notices.append(
            f"legal table {table.version} carries amounts forward that no source confirmed: "
            + ", ".join(table.unconfirmed)
        )
    return stale, notices


def advise(
    model: PlanKeptModel,
    features_row: np.ndarray,
    as_of_day: int,
    on: date,
    debt_cents: int,
    budget: BudgetView,
    policy: PlanPolicy,
    *,
    signals: DebtSignals | None = None,
) -> Advice:
    """The plan answer for one customer: suggestion, alternatives, safety net, referral,
    reasons. ``signals``: signs of problematic debt (default: none known)."""

    def arr(v: float | None) -> np.ndarray:
        return np.array([np.nan if v is None else float(v)])

    grid = plan_grid(
        model,
        features_row.reshape(1, -1),
        as_of_day,
        np.array([debt_cents]),
        policy,
        income_eur=arr(budget.income.amount_eur),
        free_room_eur=arr(budget.free_room_eur),
        standard_capacity_eur=arr(budget.standard_capacity_eur),
        maximum_capacity_eur=arr(budget.maximum_capacity_eur),
    )
    referral_reasons = [ReferralReason(str(grid.referral_reason[0]))] if grid.referral[0] else []
    referral_reasons += signal_referral_reasons(signals or DebtSignals(), policy)
    reasons: list[PlanReason] = [PlanReason(r.value) for r in referral_reasons]
    alternatives: list[Plan] = []
    suggested: Plan | None = None
    net: SafetyNet | None = None
    j = int(grid.choice[0])
    if referral_reasons:
        # debt help first; a plan the budget carries is still shown when only the signals
        # refer (DOMAIN.md §2, §8), never one it cannot carry
        if j >= 0:
            alternatives.append(_plan(grid, j, debt_cents, "best_effort", policy))
        p_ref, months_ref = 0.0, policy.max_months
    else:
        suggested = _plan(grid, j, debt_cents, "suggested", policy)
        alternatives = _alternatives(grid, j, debt_cents, policy)
        reasons += _plan_reasons(grid, j, budget, policy)
        net = safety_net(policy, suggested.months, PlanReason.LOW_P_KEPT in reasons)
        p_ref, months_ref = suggested.p_kept, suggested.months
    if features_row[FEATURE_INDEX["arrangements_broken"]] > 0:
        reasons.append(PlanReason.PAST_PLANS_BROKEN)
    if budget.income.amount_eur is None:
        reasons.append(PlanReason.INCOME_UNKNOWN)
    elif budget.income.confidence == Confidence.LOW:
        reasons.append(PlanReason.INCOME_LOW_CONFIDENCE)
    stale, notices = legal_notices(on, policy)
    return Advice(
        suggested=suggested,
        alternatives=alternatives[:3],
        referral=bool(referral_reasons),
        referral_reason=referral_reasons[0].value if referral_reasons else None,
        reasons=reasons,
        escalation=escalation_comparison(debt_cents, on, months_ref, p_ref),
        policy_version=policy.version,
        model_version=model.version,
        referral_reasons=referral_reasons,
        safety_net=net,
        horizon_months=policy.horizon_months,
        legal_table_version=legal_table_on(on).version,
        legal_table_stale=stale,
        legal_notices=notices,
    )


def _alternatives(grid: PlanGrid, j: int, debt_cents: int, policy: PlanPolicy) -> list[Plan]:
    """Beside the suggestion, only plans the budget carries: the nearest shorter one, a
    longer one (up to three terms on), and the lowest amount."""
    acceptable = np.flatnonzero(grid.acceptable[0])
    shorter = [k for k in acceptable if k < j]
    longer = [k for k in acceptable if k > j]
    out: list[Plan] = []
    if shorter:
        out.append(_plan(grid, int(shorter[-1]), debt_cents, "shorter", policy))
    if longer:
        out.append(_plan(grid, int(longer[min(len(longer) - 1, 2)]), debt_cents, "longer", policy))
    if longer and acceptable[-1] != longer[min(len(longer) - 1, 2)]:
        out.append(_plan(grid, int(acceptable[-1]), debt_cents, "lowest_amount", policy))
    return out


def _plan_reasons(
    grid: PlanGrid, j: int, budget: BudgetView, policy: PlanPolicy
) -> list[PlanReason]:
    reasons: list[PlanReason] = []
    if budget.free_room_eur is not None and budget.free_room_eur > 0:
        reasons.append(PlanReason.FITS_FREE_ROOM)
    earlier = range(j)
    if any(grid.valid[0, k] and not grid.fits[0, k] for k in earlier):
        reasons.append(PlanReason.CAPPED_BY_CAPACITY)
    # only where a shorter plan the budget carries is really less likely to be kept (a
    # flat P(kept) with the low-P(kept) rule is a capacity reason, not this one)
    if any(
        grid.acceptable[0, k] and grid.p_kept[0, k] < grid.p_kept[0, j] - 0.005 for k in earlier
    ):
        reasons.append(PlanReason.LONGER_FOR_KEEPING)
    if grid.p_kept[0, j] < policy.target_p_kept:
        reasons.append(PlanReason.LOW_P_KEPT)
    return reasons

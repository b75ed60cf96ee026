"""Plan suggestion: the monthly amount and term that repay most while the plan is kept.

For a debt, every term of 1..``max_months`` months gives a monthly amount (the debt
split evenly, rounded up to ``amount_step_cents``, never below ``min_monthly_amount``).
The P(kept) model scores each. A plan is *acceptable* when P(kept) ≥ the policy target
and its amount fits the budget (short plans up to the Nibud *maximum* capacity, longer
ones up to the *standard* capacity, when the free room is known). Among acceptable plans
the suggestion maximises the expected amount repaid within the horizon (12 months)::

    E[repaid] = P(kept) × min(debt, monthly × min(term, H))
              + (1 − P(kept)) × broken_share × monthly × min(term, H)

preferring the shortest term within ``tie_tolerance`` of the best. For each term the
grid uses the smallest whole-step amount that repays the debt in that term: any larger
amount with the same term has a lower P(kept) (monotone model) and, for terms within the
horizon, repays no more — so searching terms 1..``max_months`` covers every amount worth
considering (beyond the horizon it is a one-amount-per-term approximation). No acceptable plan
within ``max_months`` (18, the debt-scheme length) or no free room → a referral to debt
help instead of a plan (CCD2 art. 36), with the reason: no free room, free room too small
for any plan's instalment (capacity), or no plan likely enough to be kept. Alternatives
are only plans the budget can carry, and a capacity referral offers none. Policy numbers
live in ``models/config/plan_policy.json`` (versioned), never here.

:func:`plan_grid` is columnar over many customers (the simulator's policy hook);
:func:`advise` shapes the answer for one customer (the endpoint).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import Any

import numpy as np

from models.budget import BudgetView
from models.legal import legal_table_on
from models.plan_kept import PlanKeptModel, plan_matrix


@dataclass(frozen=True)
class PlanPolicy:
    version: str
    target_p_kept: float
    max_months: int
    min_monthly_amount_cents: int
    amount_step_cents: int
    standard_share: float
    maximum_share: float
    short_plan_max_months: int
    horizon_months: int
    broken_plan_repaid_share: float
    tie_tolerance: float
    effective_from: str = ""

    @classmethod
    def default(cls) -> PlanPolicy:
        text = resources.files("models").joinpath("config/plan_policy.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PlanPolicy:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReferralReason(StrEnum):
    NO_FREE_ROOM = "no_free_room"
    # some free room, but too little for the smallest instalment any plan within the
    # maximum term asks (below the policy's minimum amount, or the debt needs longer)
    CAPACITY_TOO_SMALL = "capacity_too_small"
    NO_PLAN_MEETS_TARGET = "no_plan_meets_target"


class PlanReason(StrEnum):
    """Why the answer is what it is (stable codes; texts below)."""

    FITS_FREE_ROOM = "fits_free_room"
    CAPPED_BY_CAPACITY = "capped_by_capacity"
    LONGER_FOR_KEEPING = "longer_for_keeping"
    PAST_PLANS_BROKEN = "past_plans_broken"
    INCOME_UNKNOWN = "income_unknown"
    INCOME_LOW_CONFIDENCE = "income_low_confidence"
    NO_FREE_ROOM = "no_free_room"
    CAPACITY_TOO_SMALL = "capacity_too_small"
    NO_PLAN_MEETS_TARGET = "no_plan_meets_target"


REASON_TEXTS: dict[PlanReason, tuple[str, str]] = {
    PlanReason.FITS_FREE_ROOM: (
        "The monthly amount fits the free room left after the protected minimum.",
        "Het maandbedrag past in de vrije ruimte boven het beschermde minimum.",
    ),
    PlanReason.CAPPED_BY_CAPACITY: (
        "Larger amounts would exceed the standard (long plans) or maximum (short plans) capacity.",
        "Hogere bedragen gaan boven de standaard (lange regeling) of maximale (korte regeling) afloscapaciteit.",
    ),
    PlanReason.LONGER_FOR_KEEPING: (
        "A lower amount over more months is far more likely to be kept.",
        "Een lager bedrag over meer maanden wordt veel vaker volgehouden.",
    ),
    PlanReason.PAST_PLANS_BROKEN: (
        "Earlier payment plans were broken; the amount is kept modest.",
        "Eerdere betalingsregelingen zijn niet volgehouden; het bedrag is bescheiden gehouden.",
    ),
    PlanReason.INCOME_UNKNOWN: (
        "Income is unknown: the amount rests on payment history only. Ask for the budget.",
        "Het inkomen is onbekend: het bedrag rust alleen op het betaalgedrag. Vraag naar het budget.",
    ),
    PlanReason.INCOME_LOW_CONFIDENCE: (
        "Income detection is uncertain; check the budget with the customer.",
        "Het inkomen is onzeker vastgesteld; controleer het budget met de klant.",
    ),
    PlanReason.NO_FREE_ROOM: (
        "There is no room above the protected minimum: refer to debt help instead of a plan.",
        "Er is geen ruimte boven het beschermde minimum: verwijs naar schuldhulp in plaats van een regeling.",
    ),
    PlanReason.CAPACITY_TOO_SMALL: (
        "The room above the protected minimum is too small for any plan within the maximum "
        "term (below the lowest instalment): refer to debt help instead of a plan.",
        "De ruimte boven het beschermde minimum is te klein voor een regeling binnen de "
        "maximale looptijd (lager dan de laagste termijn): verwijs naar schuldhulp in plaats "
        "van een regeling.",
    ),
    PlanReason.NO_PLAN_MEETS_TARGET: (
        "No plan within the maximum term is likely enough to be kept: refer to debt help.",
        "Geen regeling binnen de maximale looptijd wordt waarschijnlijk volgehouden: verwijs naar schuldhulp.",
    ),
}


@dataclass
class PlanGrid:
    """Every candidate term for every customer (arrays are customers × terms)."""

    terms: np.ndarray  # (T,)
    monthly_cents: np.ndarray  # (n, T)
    p_kept: np.ndarray  # (n, T)
    expected_repaid_cents: np.ndarray  # (n, T) within the horizon
    acceptable: np.ndarray  # (n, T) bool
    valid: np.ndarray  # (n, T) bool: a distinct, allowed amount for that term
    choice: np.ndarray  # (n,) index into terms, -1 = referral
    # (n,) index of the highest-P(kept) valid term, fitting the budget or not: how far the
    # target is out of reach (a diagnostic, never offered; see best_fitting)
    best_effort: np.ndarray
    best_expected: np.ndarray  # (n,) index of the valid term with the highest expected repaid
    referral: np.ndarray  # (n,) bool
    referral_reason: np.ndarray  # (n,) object: ReferralReason value or None
    fits: np.ndarray  # (n, T) bool: the amount fits the budget's capacity (when known)
    # (n,) index of the highest-P(kept) valid term that fits the budget; -1 when none fits
    # or there is no free room (nothing may be offered then)
    best_fitting: np.ndarray


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
    step = policy.amount_step_cents
    raw = np.ceil(debt[:, None] / terms[None, :] / step) * step
    monthly = np.minimum(np.maximum(raw, policy.min_monthly_amount_cents), debt[:, None]).astype(
        np.int64
    )
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
    h = np.minimum(terms, policy.horizon_months)[None, :]
    paid_if_kept = np.minimum(debt[:, None], monthly * h)
    paid_if_broken = policy.broken_plan_repaid_share * np.minimum(monthly * h, debt[:, None])
    expected = p * paid_if_kept + (1 - p) * paid_if_broken
    fits = np.ones((n, T), bool)
    short = terms[None, :] <= policy.short_plan_max_months
    if maximum_capacity_eur is not None:
        cap_max = np.asarray(maximum_capacity_eur, float)[:, None] * 100
        fits &= ~short | ~np.isfinite(cap_max) | (monthly <= cap_max)
    if standard_capacity_eur is not None:
        cap_std = np.asarray(standard_capacity_eur, float)[:, None] * 100
        fits &= short | ~np.isfinite(cap_std) | (monthly <= cap_std)
    acceptable = valid & fits & (p >= policy.target_p_kept)
    no_room = np.zeros(n, bool)
    if free_room_eur is not None:
        room = np.asarray(free_room_eur, float)
        no_room = np.isfinite(room) & (room <= 0)
    acceptable &= ~no_room[:, None]
    score = np.where(acceptable, expected, -np.inf)
    best = score.max(axis=1)
    near = acceptable & (score >= (1 - policy.tie_tolerance) * best[:, None])
    choice = np.where(acceptable.any(axis=1), np.argmax(near, axis=1), -1)
    best_effort = np.argmax(np.where(valid, p, -np.inf), axis=1)
    # the fallback when there is no acceptable plan (a simulator cannot refer): the most
    # expected repayment among plans that fit the budget, else among all valid plans
    fit_valid = valid & fits
    pool = np.where(fit_valid.any(axis=1)[:, None], fit_valid, valid)
    best_expected = np.argmax(np.where(pool, expected, -np.inf), axis=1)
    referral = choice < 0
    offerable = fit_valid & ~no_room[:, None]
    best_fitting = np.where(
        offerable.any(axis=1), np.argmax(np.where(offerable, p, -np.inf), axis=1), -1
    )
    reason = np.full(n, None, dtype=object)
    reason[referral] = ReferralReason.NO_PLAN_MEETS_TARGET.value
    reason[referral & ~fit_valid.any(axis=1)] = ReferralReason.CAPACITY_TOO_SMALL.value
    reason[referral & no_room] = ReferralReason.NO_FREE_ROOM.value
    return PlanGrid(
        terms,
        monthly,
        p,
        expected,
        acceptable,
        valid,
        choice,
        best_effort,
        best_expected,
        referral,
        reason,
        fits,
        best_fitting,
    )


# ---------------------------------------------------------------------------- one customer


@dataclass
class Plan:
    monthly_amount_eur: float
    months: int
    last_instalment_eur: float
    p_kept: float
    expected_repaid_12m_eur: float
    meets_target: bool
    kind: str  # suggested | shorter | longer | lowest_amount | best_effort


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
    referral_reason: str | None
    reasons: list[PlanReason]
    escalation: EscalationComparison
    policy_version: str
    model_version: str
    notes: list[str] = field(default_factory=list)


def _plan(grid: PlanGrid, j: int, debt_cents: int, kind: str) -> Plan:
    m = int(grid.monthly_cents[0, j])
    months = int(grid.terms[j])
    last = debt_cents - m * (months - 1)
    return Plan(
        monthly_amount_eur=m / 100,
        months=months,
        last_instalment_eur=round(last / 100, 2),
        p_kept=round(float(grid.p_kept[0, j]), 4),
        expected_repaid_12m_eur=round(float(grid.expected_repaid_cents[0, j]) / 100, 2),
        meets_target=bool(grid.acceptable[0, j]),
        kind=kind,
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


def advise(
    model: PlanKeptModel,
    features_row: np.ndarray,
    as_of_day: int,
    on: date,
    debt_cents: int,
    budget: BudgetView,
    policy: PlanPolicy,
) -> Advice:
    """The plan answer for one customer: suggestion, alternatives, referral, reasons."""
    from models.budget import Confidence

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
    reasons: list[PlanReason] = []
    valid = np.flatnonzero(grid.valid[0])
    fitting = np.flatnonzero(grid.valid[0] & grid.fits[0])
    acceptable = np.flatnonzero(grid.acceptable[0])
    alternatives: list[Plan] = []
    suggested: Plan | None = None
    if grid.referral[0]:
        reason = str(grid.referral_reason[0])
        reasons.append(PlanReason(reason))
        # no free room or too little for any plan: refer, offer nothing the budget cannot
        # carry (DOMAIN.md §2, §8); otherwise the plan most likely kept among those that fit
        if int(grid.best_fitting[0]) >= 0:
            alternatives.append(_plan(grid, int(grid.best_fitting[0]), debt_cents, "best_effort"))
        p_ref = 0.0
        months_ref = policy.max_months
    else:
        j = int(grid.choice[0])
        suggested = _plan(grid, j, debt_cents, "suggested")
        shorter = [k for k in fitting if k < j]  # only plans the budget can carry
        longer = [k for k in acceptable if k > j]
        if shorter:
            # the nearest shorter plan, flagged when it misses the target
            alternatives.append(_plan(grid, int(shorter[-1]), debt_cents, "shorter"))
        if longer:
            k = int(longer[min(len(longer) - 1, 2)])
            alternatives.append(_plan(grid, k, debt_cents, "longer"))
        if acceptable[-1] != j and (
            not longer or acceptable[-1] != longer[min(len(longer) - 1, 2)]
        ):
            alternatives.append(_plan(grid, int(acceptable[-1]), debt_cents, "lowest_amount"))
        if budget.free_room_eur is not None and budget.free_room_eur > 0:
            reasons.append(PlanReason.FITS_FREE_ROOM)
        if any(
            grid.p_kept[0, k] >= policy.target_p_kept and not grid.acceptable[0, k]
            for k in valid
            if k < j
        ):
            reasons.append(PlanReason.CAPPED_BY_CAPACITY)
        if any(grid.p_kept[0, k] < policy.target_p_kept for k in valid if k < j):
            reasons.append(PlanReason.LONGER_FOR_KEEPING)
        p_ref, months_ref = suggested.p_kept, suggested.months
    from features.build import FEATURE_INDEX

    if features_row[FEATURE_INDEX["arrangements_broken"]] > 0:
        reasons.append(PlanReason.PAST_PLANS_BROKEN)
    if budget.income.amount_eur is None:
        reasons.append(PlanReason.INCOME_UNKNOWN)
    elif budget.income.confidence == Confidence.LOW:
        reasons.append(PlanReason.INCOME_LOW_CONFIDENCE)
    return Advice(
        suggested=suggested,
        alternatives=alternatives[:3],
        referral=bool(grid.referral[0]),
        referral_reason=None if not grid.referral[0] else str(grid.referral_reason[0]),
        reasons=reasons,
        escalation=escalation_comparison(debt_cents, on, months_ref, p_ref),
        policy_version=policy.version,
        model_version=model.version,
    )

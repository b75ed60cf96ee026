"""Affordability for one customer and one debt: the request path's single entry.

The customer's events → the one feature definition → the budget view
(:mod:`models.budget`: protected minimum, free room) → the plan advice
(:mod:`models.plans`, with the bundle's ``plan_kept`` component and its plan policy),
told the signs of problematic debt the history and the budget show (:func:`debt_signals`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from features.build import build_features
from features.collection_cases import open_collection_case_counts
from features.events import EventArrays, to_day
from models.budget import BudgetView, DeclaredBudget, budget_view
from models.plan_kept import PlanKeptModel
from models.plans import Advice, DebtSignals, PlanPolicy, advise, debt_signals_from_features
from models.serving import ServingRows


@dataclass(frozen=True)
class AffordabilityAssessment:
    """The budget and the plan advice for one customer's debt, as of the start of a day."""

    customer_id: str
    as_of: date
    features: np.ndarray  # the row the budget and the plans were computed from
    budget: BudgetView
    advice: Advice
    policy: PlanPolicy  # the plan policy applied (the component's own, else the default)
    signals: DebtSignals  # the signs of problematic debt the advice was given


def assess_affordability(
    serving: ServingRows,
    plan_model: PlanKeptModel,
    *,
    customer_id: str,
    as_of: date,
    debt_cents: int,
    declared: DeclaredBudget,
) -> AffordabilityAssessment:
    """Budget and advice for ``debt_cents`` owed by ``customer_id``; ``declared`` holds
    what the caller knows of the budget (it overrides what the events show). Raises as
    :meth:`ServingRows.events` does for an unknown customer or a failed read."""
    events = serving.events([customer_id])
    day = to_day(as_of)
    row = build_features(events, day)[0]
    policy = PlanPolicy.from_dict(plan_model.policy) if plan_model.policy else PlanPolicy.default()
    budget = budget_view(
        row,
        as_of,
        declared,
        standard_share=policy.standard_share,
        maximum_share=policy.maximum_share,
    )
    signals = debt_signals(events, row, day, budget)
    advice = advise(plan_model, row, day, as_of, debt_cents, budget, policy, signals=signals)
    return AffordabilityAssessment(customer_id, as_of, row, budget, advice, policy, signals)


def debt_signals(events: EventArrays, row: np.ndarray, day: int, budget: BudgetView) -> DebtSignals:
    """The signs of problematic debt for one customer (``events`` holds only them): their
    open collection cases and payment plans with this creditor, plans broken before, and
    whether the income (declared or seen) lies below the protected minimum (unknown when
    the income is)."""
    from_history = debt_signals_from_features(row)
    income = budget.income.amount_eur
    return replace(
        from_history,
        open_collection_cases=int(open_collection_case_counts(events, day)[0]),
        income_below_protected_minimum=(
            None if income is None else income < budget.protected_minimum_eur
        ),
    )

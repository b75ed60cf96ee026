"""Pay-later at checkout for one order: the request path's single entry into the models.

The customer's serving state (features, open-case flag, probability), the age check and
the pay-later policy of the loaded bundle (:func:`models.bnpl.decide`) in one call, so
the route only parses, calls and shapes. A buyer without a customer id has no history:
the policy decides on the order and the age alone (a thin file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from models.bnpl import AgeCheck, BnplDecision, decide
from models.bundle import Bundle
from models.decline_memory import customer_memory
from models.reasons import Reason
from models.serving import ServingRows


@dataclass(frozen=True)
class OrderAssessment:
    """The pay-later decision on one order and what it was decided on."""

    decision: BnplDecision
    age: AgeCheck
    age_years: int | None  # on as_of; the birth date itself is not kept
    features: np.ndarray | None  # bundle.feature_names order; None without a customer
    open_case: bool
    serving_row: str | None  # "materialised" or "computed"; None without a customer


def pay_later_probability(
    bundle: Bundle, probability: float, memory: dict[str, float] | None, term_days: int = 30
) -> float | None:
    """The bundle's pay-later adjustment (:mod:`models.bnpl_adjustment`) of
    ``probability`` with the customer's decline memory (none known: the empty memory);
    None when the bundle has no adjustment (the cut-off applies to ``probability``)."""
    adjustment = bundle.components.get("bnpl_adjustment")
    if adjustment is None:
        return None
    if memory is None:
        memory = customer_memory([], date.today(), term_days)  # empty: the same any day
    return float(adjustment.adjust_one(probability, memory))


def assess_order(
    serving: ServingRows,
    bundle: Bundle,
    *,
    customer_id: str | None,
    order_eur: float,
    currency: str,
    age: AgeCheck,
    as_of: date,
    memory: dict[str, float] | None = None,
) -> OrderAssessment:
    """Decide one order as of the start of ``as_of`` with ``bundle``'s pay-later policy.

    The model's own reasons are computed only when the probability reaches the policy's
    risk cut-off (the only case a decline shows them): SHAP costs far more than predict.
    ``memory``: the customer's decline memory as of ``as_of`` from the creditor's own
    decision log (:func:`models.decline_memory.customer_memory`).
    Raises as :meth:`ServingRows.state` does for an unknown customer or a failed read.
    """
    policy = bundle.bnpl_policy
    features: np.ndarray | None = None
    probability: float | None = None
    risk_reasons: list[Reason] = []
    open_case = False
    serving_row = None
    pay_later: float | None = None
    if customer_id is not None:
        state = serving.state(bundle, [customer_id], as_of)
        features = state.X[0]
        probability = float(state.probability[0])
        open_case = bool(state.open_case[0])
        serving_row = state.source(0)
        pay_later = pay_later_probability(bundle, probability, memory, policy.term_days)
        risk = probability if pay_later is None else pay_later
        if risk >= policy.cutoff_for(memory):
            risk_reasons = state.reasons(bundle, [0])[0]
    decision = decide(
        policy,
        order_eur=order_eur,
        currency=currency,
        age=age,
        on=as_of,
        features=features,
        probability=probability,
        open_case=open_case,
        risk_reasons=risk_reasons,
        memory=memory,
        pay_later_probability=pay_later,
    )
    return OrderAssessment(
        decision=decision,
        age=age,
        age_years=age.age_on(as_of),
        features=features,
        open_case=open_case,
        serving_row=serving_row,
    )

"""Early-warning scoring: events of a batch of customers -> calibrated, explained assessments.

This is the one function both the HTTP route and batch scoring call, so the service
stays thin (parse → :func:`assess` → shape the response).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from features.events import EventArrays
from models.bundle import Bundle
from models.policy import ACTION_TEXTS, RecommendedAction, RiskBand
from models.reasons import Reason
from models.serving import ServingState, compute_state


@dataclass(frozen=True)
class RiskAssessment:
    """The early-warning answer for one customer."""

    customer_id: str
    as_of: date
    probability: float
    band: RiskBand
    early_warning: bool
    reasons: list[Reason]
    action: RecommendedAction
    model_version: str
    policy_version: str
    features: np.ndarray  # the row that was scored, in bundle.feature_names order

    @property
    def action_channel(self) -> str:
        return ACTION_TEXTS[self.action][0]

    @property
    def action_text_en(self) -> str:
        return ACTION_TEXTS[self.action][1]

    @property
    def action_text_nl(self) -> str:
        return ACTION_TEXTS[self.action][2]


def assess(
    bundle: Bundle,
    events: EventArrays,
    as_of: date,
    *,
    explain: bool = True,
) -> list[RiskAssessment]:
    """Score every customer of ``events`` at ``as_of`` (features built from the events)."""
    return assess_state(bundle, compute_state(bundle, events, as_of), as_of, explain=explain)


def assess_state(
    bundle: Bundle,
    state: ServingState,
    as_of: date,
    *,
    explain: bool = True,
) -> list[RiskAssessment]:
    """The assessments of a serving state (features, probabilities, known contributions).

    ``explain=False`` skips SHAP reasons for customers without an early-warning flag
    (``pred_contrib`` costs far more than predict; batch scoring only explains flagged
    customers). Flagged customers always get reasons; customers in the low band never do.
    """
    probability = state.probability
    policy = bundle.policy
    flagged = probability >= policy.early_warning_threshold
    # Reasons say why a risk is *elevated*. In the low band nothing is: SHAP would still
    # name the features that lift the score a little above the average customer, and the
    # texts would then assert things that are not true of this customer (a "low balance"
    # for someone with a healthy one). So the low band gets no reasons (and no action).
    elevated = probability >= policy.bands[0][1]
    need = np.flatnonzero(flagged | (explain & elevated)).tolist()
    reasons_by_row = dict(zip(need, state.reasons(bundle, need), strict=True))
    out = []
    for i, customer_id in enumerate(state.customer_ids):
        p = float(probability[i])
        reasons = reasons_by_row.get(i, [])
        out.append(
            RiskAssessment(
                customer_id=str(customer_id),
                as_of=as_of,
                probability=p,
                band=policy.band(p),
                early_warning=bool(flagged[i]),
                reasons=reasons,
                action=policy.action(p, reasons),
                model_version=bundle.version,
                policy_version=policy.version,
                features=state.X[i],
            )
        )
    return out

"""Pay-later (BNPL) at checkout: offer or decline, and a limit, with honest reasons.

Prevention first (seed 000, DOMAIN.md §4): "if a customer has a difficult payment
history, ask whether they should be offered pay-later at all". Under CCD2 every order
needs a creditworthiness assessment, special-category data are banned and an automated
decline needs an explanation and a path to human review. The rules, most decisive first:

1. age not verified, or under 18 → decline (no model involved)
2. order above the policy maximum or not in euros → decline
3. an open collection case (a claim at the agency or bailiff, unpaid) → decline
4. open arrears beyond the grace days → decline
5. P(payment difficulty) at or above the cut-off → decline (with the model's own reasons)
6. the limit: by probability; a conservative *starter* limit for a thin file (new or
   short history) instead of a blanket yes or no; lowered to a share of the monthly free
   room where income is known (the affordability view); minus open pay-later exposure.
   An order above what is left → decline, naming the limit: the budget cap (B07) when
   the lowered limit alone is below the order, open pay-later orders (B06) when they
   (or, without a budget cap, the limit itself) leave too little.

The inputs are the features of the one feature definition plus the open-case flag, so
a decision is reproducible from its log entry (features + policy + model version).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import Any

import numpy as np

from features.build import FEATURE_INDEX

# re-exported: its home is features.collection_cases, callers of models.bnpl keep working
from features.collection_cases import open_collection_cases as open_collection_cases
from features.events import to_day
from models.budget import budget_arrays
from models.reasons import Reason


class BnplReasonCode(StrEnum):
    AGE_NOT_VERIFIED = "B01_AGE_NOT_VERIFIED"
    UNDER_AGE = "B02_UNDER_AGE"
    OPEN_ARREARS = "B03_OPEN_ARREARS"
    COLLECTION_CASE = "B04_COLLECTION_CASE"
    HIGH_RISK = "B05_HIGH_RISK"
    EXPOSURE_LIMIT = "B06_EXPOSURE_LIMIT"
    AFFORDABILITY = "B07_AFFORDABILITY"
    THIN_FILE = "B08_THIN_FILE"
    ORDER_TOO_LARGE = "B09_ORDER_TOO_LARGE"
    CURRENCY = "B10_CURRENCY"


BNPL_TEXTS: dict[BnplReasonCode, tuple[str, str]] = {
    BnplReasonCode.AGE_NOT_VERIFIED: (
        "Pay later needs a verified age (for example with iDIN).",
        "Achteraf betalen vraagt om een geverifieerde leeftijd (bijvoorbeeld met iDIN).",
    ),
    BnplReasonCode.UNDER_AGE: (
        "Pay later is only available from 18 years.",
        "Achteraf betalen kan pas vanaf 18 jaar.",
    ),
    BnplReasonCode.OPEN_ARREARS: (
        "There are unpaid invoices past their due date; paying those first avoids new debt.",
        "Er staan facturen open na de vervaldatum; die eerst betalen voorkomt nieuwe schuld.",
    ),
    BnplReasonCode.COLLECTION_CASE: (
        "A claim is with a collection agency or bailiff; new credit would add to it.",
        "Er loopt een vordering bij een incassobureau of deurwaarder; nieuw krediet maakt dat zwaarder.",
    ),
    BnplReasonCode.HIGH_RISK: (
        "The payment history suggests that paying later could become difficult.",
        "De betaalgeschiedenis wijst erop dat later betalen lastig kan worden.",
    ),
    BnplReasonCode.EXPOSURE_LIMIT: (
        "This order together with open pay-later purchases is above the limit.",
        "Deze bestelling is samen met openstaande achteraf-betalen-aankopen hoger dan de limiet.",
    ),
    BnplReasonCode.AFFORDABILITY: (
        "The limit is lowered to what the monthly budget leaves room for.",
        "De limiet is verlaagd tot wat het maandbudget toelaat.",
    ),
    BnplReasonCode.THIN_FILE: (
        "With a short payment history a lower starter limit applies.",
        "Bij een korte betaalgeschiedenis geldt een lagere startlimiet.",
    ),
    BnplReasonCode.ORDER_TOO_LARGE: (
        "The order is above the maximum for pay later.",
        "De bestelling is hoger dan het maximum voor achteraf betalen.",
    ),
    BnplReasonCode.CURRENCY: (
        "Pay later is only offered in euros.",
        "Achteraf betalen is alleen mogelijk in euro.",
    ),
}


@dataclass(frozen=True)
class BnplReason:
    code: BnplReasonCode
    declines: bool  # False: it shaped the limit but did not decline

    @property
    def text_en(self) -> str:
        return BNPL_TEXTS[self.code][0]

    @property
    def text_nl(self) -> str:
        return BNPL_TEXTS[self.code][1]


@dataclass(frozen=True)
class BnplPolicy:
    """Versioned pay-later policy (``models/config/bnpl_policy.json``); amounts in euros."""

    version: str
    currency: str
    min_age_years: int
    max_order_eur: float
    risk_cutoff: float
    limits_by_probability: tuple[tuple[float, float], ...]  # (probability below, limit), ascending
    thin_min_tenure_days: int
    thin_min_invoices_365d: int
    starter_limit_eur: float
    arrears_grace_days: int
    free_room_share: float

    def __post_init__(self) -> None:
        if not 0 < self.risk_cutoff < 1:
            raise ValueError(f"risk_cutoff must be in (0, 1); got {self.risk_cutoff}")
        bounds = [b for b, _ in self.limits_by_probability]
        if bounds != sorted(bounds):
            raise ValueError(f"limits_by_probability must ascend; got {self.limits_by_probability}")
        if not 0 < self.free_room_share <= 1:
            raise ValueError(f"free_room_share must be in (0, 1]; got {self.free_room_share}")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BnplPolicy:
        thin = doc["thin_file"]
        return cls(
            version=str(doc["version"]),
            currency=str(doc["currency"]),
            min_age_years=int(doc["min_age_years"]),
            max_order_eur=float(doc["max_order_eur"]),
            risk_cutoff=float(doc["risk_cutoff"]),
            limits_by_probability=tuple(
                (float(x["below"]), float(x["limit_eur"])) for x in doc["limits_by_probability"]
            ),
            thin_min_tenure_days=int(thin["min_tenure_days"]),
            thin_min_invoices_365d=int(thin["min_invoices_365d"]),
            starter_limit_eur=float(thin["starter_limit_eur"]),
            arrears_grace_days=int(doc["arrears_grace_days"]),
            free_room_share=float(doc["free_room_share"]),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "version": d["version"],
            "currency": d["currency"],
            "min_age_years": d["min_age_years"],
            "max_order_eur": d["max_order_eur"],
            "risk_cutoff": d["risk_cutoff"],
            "limits_by_probability": [
                {"below": b, "limit_eur": lim} for b, lim in self.limits_by_probability
            ],
            "thin_file": {
                "min_tenure_days": self.thin_min_tenure_days,
                "min_invoices_365d": self.thin_min_invoices_365d,
                "starter_limit_eur": self.starter_limit_eur,
            },
            "arrears_grace_days": self.arrears_grace_days,
            "free_room_share": self.free_room_share,
        }

    @classmethod
    def default(cls) -> BnplPolicy:
        text = resources.files("models").joinpath("config/bnpl_policy.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    def with_cutoff(self, cutoff: float) -> BnplPolicy:
        """The same policy at another risk cut-off (for trade-off curves)."""
        from dataclasses import replace

        return replace(self, risk_cutoff=cutoff)

    def limit_for(self, probability: float) -> float:
        for below, limit in self.limits_by_probability:
            if probability < below:
                return limit
        return self.limits_by_probability[-1][1]


@dataclass(frozen=True)
class AgeCheck:
    """What checkout verified about the buyer's age."""

    verified: bool
    birth_date: date | None = None
    method: str | None = None  # e.g. "idin"

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


@dataclass(frozen=True)
class BnplDecision:
    offer: bool
    limit_eur: float  # what this customer may have open in pay-later, after this decision
    available_eur: float  # limit minus open pay-later exposure before this order; 0 when
    # declined on the customer's situation (never more than limit_eur)
    order_eur: float
    reasons: list[BnplReason]  # declining reasons first, most decisive first
    probability: float | None
    risk_reasons: list[Reason] = field(default_factory=list)
    thin_file: bool = False

    @property
    def declined_by(self) -> list[BnplReasonCode]:
        return [r.code for r in self.reasons if r.declines]


def decide(
    policy: BnplPolicy,
    *,
    order_eur: float,
    currency: str,
    age: AgeCheck,
    on: date,
    features: np.ndarray | None,
    probability: float | None,
    open_case: bool,
    risk_reasons: list[Reason] | None = None,
) -> BnplDecision:
    """Apply the policy to one order. ``features`` is None for a customer without history."""
    reasons: list[BnplReason] = []

    def decline(code: BnplReasonCode) -> None:
        reasons.append(BnplReason(code, declines=True))

    years = age.age_on(on)
    if not age.verified or years is None:
        decline(BnplReasonCode.AGE_NOT_VERIFIED)
    elif years < policy.min_age_years:
        decline(BnplReasonCode.UNDER_AGE)
    if currency != policy.currency:
        decline(BnplReasonCode.CURRENCY)
    if order_eur > policy.max_order_eur:
        decline(BnplReasonCode.ORDER_TOO_LARGE)
    if open_case:
        decline(BnplReasonCode.COLLECTION_CASE)

    f = FEATURE_INDEX
    exposure = 0.0
    thin = True
    if features is not None:
        if features[f["current_days_past_due"]] > policy.arrears_grace_days:
            decline(BnplReasonCode.OPEN_ARREARS)
        open_eur = float(features[f["bnpl_open_eur"]])
        exposure = 0.0 if math.isnan(open_eur) else open_eur
        tenure = features[f["tenure_days"]]
        thin = not (
            np.isfinite(tenure)
            and tenure >= policy.thin_min_tenure_days
            and features[f["invoices_365d"]] >= policy.thin_min_invoices_365d
        )
    shown_risk: list[Reason] = []
    if probability is not None and probability >= policy.risk_cutoff:
        decline(BnplReasonCode.HIGH_RISK)
        shown_risk = list(risk_reasons or [])

    if thin:
        limit = policy.starter_limit_eur
        reasons.append(BnplReason(BnplReasonCode.THIN_FILE, declines=False))
    else:
        limit = policy.limit_for(probability if probability is not None else 1.0)
    capped = False
    if features is not None:
        _, free_room = budget_arrays(features[None, :], np.array([to_day(on)]), prudent=True)
        room = float(free_room[0])
        if np.isfinite(room):
            affordable = max(0.0, policy.free_room_share * room)
            if affordable < limit:
                limit = affordable
                capped = True
    limit = float(np.floor(limit))
    available = max(0.0, limit - exposure)
    # An order above what is left declines on the limit. The decisive reason is honest:
    # the budget cap (B07) when the capped limit alone is below the order; open pay-later
    # orders (B06) when there are any, or when the limit itself (no budget cap) is below.
    limit_codes: list[BnplReasonCode] = []
    if not any(r.declines for r in reasons) and order_eur > available:
        order_alone_too_large = order_eur > limit
        if capped and order_alone_too_large:
            limit_codes.append(BnplReasonCode.AFFORDABILITY)
        if exposure > 0 or not (capped and order_alone_too_large):
            limit_codes.append(BnplReasonCode.EXPOSURE_LIMIT)
    for code in limit_codes:
        decline(code)
    if capped and BnplReasonCode.AFFORDABILITY not in limit_codes:
        reasons.append(BnplReason(BnplReasonCode.AFFORDABILITY, declines=False))
    declines = [r for r in reasons if r.declines]
    shaping = [r for r in reasons if not r.declines]
    # declined on the customer's situation: no pay-later limit at all, so nothing is
    # available either; declined only on the limit (budget cap or open exposure): the
    # limit stands and the checkout can say how much is left (never more than the limit)
    only_limit = bool(declines) and all(r.code in _LIMIT_CODES for r in declines)
    keep_limit = not declines or only_limit
    return BnplDecision(
        offer=not declines,
        limit_eur=limit if keep_limit else 0.0,
        available_eur=available if keep_limit else 0.0,
        order_eur=order_eur,
        reasons=declines + shaping,
        probability=probability,
        risk_reasons=shown_risk,
        thin_file=thin,
    )


# the reasons that decline on the size of the limit, not on the customer's situation
_LIMIT_CODES = frozenset({BnplReasonCode.EXPOSURE_LIMIT, BnplReasonCode.AFFORDABILITY})

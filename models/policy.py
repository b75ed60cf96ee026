"""Early-warning policy: from a calibrated probability and its reasons to a humane action.

Decisions are policy, not model (ARCHITECTURE.md, decision 5): thresholds live in a
versioned JSON document (``models/config/risk_policy.json``) that is copied into every
bundle, so risk appetite can change without retraining and each logged decision can be
replayed with the exact policy that made it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from models.reasons import Reason, ReasonCode


class RiskBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very_high"


class RecommendedAction(StrEnum):
    """What the creditor should do next — prevention and help before pressure (DOMAIN.md)."""

    NONE = "none"
    FRIENDLY_NUDGE = "friendly_nudge"
    PERSONAL_CONTACT = "personal_contact"
    OFFER_PAYMENT_PLAN = "offer_payment_plan"
    REFER_DEBT_HELP = "refer_debt_help"


ACTION_TEXTS: dict[RecommendedAction, tuple[str, str, str]] = {
    # action: (channel, English, Dutch)
    RecommendedAction.NONE: ("none", "No action needed.", "Geen actie nodig."),
    RecommendedAction.FRIENDLY_NUDGE: (
        "sms_or_email",
        "Send a friendly, smartphone-first message with pay-now, payment-plan and get-help buttons.",
        "Stuur een vriendelijk bericht voor de smartphone met knoppen voor nu betalen, "
        "betalingsregeling en hulp.",
    ),
    RecommendedAction.PERSONAL_CONTACT: (
        "phone",
        "Call the customer personally to ask how things are going and what would help.",
        "Bel de klant persoonlijk om te vragen hoe het gaat en wat zou helpen.",
    ),
    RecommendedAction.OFFER_PAYMENT_PLAN: (
        "phone",
        "Contact the customer and offer a payment plan they can keep, before costs arise.",
        "Neem contact op en bied een haalbare betalingsregeling aan, voordat er kosten ontstaan.",
    ),
    RecommendedAction.REFER_DEBT_HELP: (
        "phone",
        "Pause collection and refer the customer to municipal debt help (or Geldfit), with consent.",
        "Pauzeer de incasso en verwijs de klant met toestemming naar gemeentelijke "
        "schuldhulpverlening (of Geldfit).",
    ),
}

# Reasons that say the problem is money, not forgetfulness: help, not reminders.
_DISTRESS = frozenset(
    {ReasonCode.INCOME_DROP, ReasonCode.BROKEN_ARRANGEMENT, ReasonCode.HIGH_BURDEN}
)
_ARREARS = frozenset({ReasonCode.OPEN_ARREARS, ReasonCode.DAYS_PAST_DUE})


@dataclass(frozen=True)
class RiskPolicy:
    """Bands, the early-warning cut-off and the action rules' thresholds (probabilities)."""

    version: str
    bands: tuple[tuple[str, float], ...]  # (band, upper bound exclusive), ascending
    early_warning_threshold: float
    debt_help_threshold: float
    top_reasons: int = 3

    def __post_init__(self) -> None:
        bounds = [b for _, b in self.bands]
        if bounds != sorted(bounds) or not bounds or bounds[-1] <= 1.0:
            raise ValueError(f"bands must ascend and end above 1.0; got {self.bands}")
        for name in ("early_warning_threshold", "debt_help_threshold"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1); got {value}")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RiskPolicy:
        return cls(
            version=str(doc["version"]),
            bands=tuple((str(b["band"]), float(b["below"])) for b in doc["bands"]),
            early_warning_threshold=float(doc["early_warning_threshold"]),
            debt_help_threshold=float(doc["debt_help_threshold"]),
            top_reasons=int(doc.get("top_reasons", 3)),
        )

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["bands"] = [{"band": b, "below": u} for b, u in self.bands]
        return doc

    @classmethod
    def default(cls) -> RiskPolicy:
        text = resources.files("models").joinpath("config/risk_policy.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    def band(self, probability: float) -> RiskBand:
        for band, upper in self.bands:
            if probability < upper:
                return RiskBand(band)
        return RiskBand(self.bands[-1][0])

    def action(self, probability: float, reasons: list[Reason]) -> RecommendedAction:
        """The recommended next step for a customer with this risk and these reasons."""
        codes = {r.code for r in reasons}
        if probability >= self.debt_help_threshold:
            if codes & _DISTRESS and codes & _ARREARS:
                return RecommendedAction.REFER_DEBT_HELP
            return RecommendedAction.OFFER_PAYMENT_PLAN
        if probability >= self.early_warning_threshold:
            if codes & _ARREARS:
                return RecommendedAction.OFFER_PAYMENT_PLAN
            return RecommendedAction.PERSONAL_CONTACT
        if self.band(probability) != RiskBand.LOW:
            return RecommendedAction.FRIENDLY_NUDGE
        return RecommendedAction.NONE

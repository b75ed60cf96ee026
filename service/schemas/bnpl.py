"""``POST /v1/bnpl/decisions``: an order at checkout and the pay-later decision.

Special-category data (GDPR art. 9) are refused outright, so they can never become
model input; the buyer's birth date is used for the age only.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.schemas import SPECIAL_CATEGORY_FIELDS
from service.schemas.common import (
    EARLIEST_LEGAL_AS_OF,
    CustomerId,
    Day,
    RequestModel,
    check_as_of,
    today,
)
from service.schemas.risk import RISK_REASON_EXAMPLE, RiskReasonOut


class OrderIn(RequestModel):
    amount_cents: int = Field(
        gt=0, le=100_000_000, strict=True, description="order amount in cents"
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")


class AgeVerificationIn(RequestModel):
    # strict: 0, 1.0 or "yes" are not an answer to "was the age verified?" (CCD2).
    verified: bool = Field(
        strict=True, description="checkout verified the buyer's age (e.g. with iDIN)"
    )
    method: Literal["idin", "bank", "document", "other"] | None = None
    birth_date: Day | None = Field(default=None, description="used for the age only; not logged")

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= today():
            raise ValueError(f"birth_date must be between 1900-01-01 and today; got {value}")
        return value


class BnplDecisionRequest(RequestModel):
    customer_id: CustomerId | None = Field(
        default=None, description="the creditor's customer id; omit for a customer without history"
    )
    order: OrderIn
    age_verification: AgeVerificationIn
    as_of: Day | None = Field(
        default=None,
        description="decide as known at the start of this day; from the first legal "
        f"table's day ({EARLIEST_LEGAL_AS_OF}) to tomorrow",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_special_categories(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = sorted(SPECIAL_CATEGORY_FIELDS & {str(k).lower() for k in data})
            if found:
                raise ValueError(
                    f"special-category data are not accepted (GDPR art. 9, CCD2): {', '.join(found)}"
                )
        return data

    @field_validator("as_of")
    @classmethod
    def _plausible_day(cls, value: date | None) -> date | None:
        # A customer's decision applies the legal table in force on as_of; before the
        # first one there is none (the model raised: a 500). One bound for every request,
        # with or without a customer, so the documented range does not depend on the body.
        return check_as_of(value, EARLIEST_LEGAL_AS_OF, "the first legal table in force")


class BnplReasonOut(BaseModel):
    """A pay-later reason: it declined the order or shaped the limit."""

    code: str
    declines: bool = Field(
        description="true: this reason declined the order; false: it shaped the limit"
    )
    text_en: str
    text_nl: str


class ReviewPath(BaseModel):
    how: str
    text_en: str
    text_nl: str


class LimitRaiseOut(BaseModel):
    """What would raise this customer's pay-later limit, in words for the customer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "B13_RAISE_ON_TIME",
                    "next_limit_eur": 200.0,
                    "text_en": "Each pay-later purchase repaid on time raises the limit by one "
                    "step, up to a maximum.",
                    "text_nl": "Elke achteraf-betalen-aankoop die op tijd is betaald verhoogt de "
                    "limiet met een stap, tot een maximum.",
                }
            ]
        }
    )

    code: str = Field(
        description="B13 repay on time, B14 more budget room, B15 a lower risk, B16 at maximum"
    )
    next_limit_eur: float | None = Field(
        description="the limit the next step would give (before the budget cap); null when "
        "the step is not a fixed amount or there is none"
    )
    text_en: str
    text_nl: str


class BnplDecisionResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "decision_id": "01a24ea0-aa36-7f05-acc4-907499c8b501",
                    "offer": False,
                    "limit_eur": 0.0,
                    "available_eur": 0.0,
                    "order_eur": 120.0,
                    "currency": "EUR",
                    "reasons": [
                        {
                            "code": "B03_OPEN_ARREARS",
                            "declines": True,
                            "text_en": "There are unpaid invoices past their due date; paying "
                            "those first avoids new debt.",
                            "text_nl": "Er staan facturen open na de vervaldatum; die eerst "
                            "betalen voorkomt nieuwe schuld.",
                        }
                    ],
                    "risk_reasons": [RISK_REASON_EXAMPLE],
                    "probability": 0.86,
                    "thin_file": False,
                    "model_version": "7",
                    "policy_version": "bnpl-2026.12.2",
                    "as_of": "2026-01-15",
                    "human_review": {
                        "how": "POST /v1/decisions/01a24ea0-aa36-7f05-acc4-907499c8b501/review",
                        "text_en": "You can ask for this decision to be reviewed by a person "
                        "and give your view.",
                        "text_nl": "U kunt vragen dat een medewerker dit besluit beoordeelt "
                        "en uw kant toelichten.",
                    },
                    "limit_raise": None,
                    "idempotent_replay": False,
                },
                {
                    "decision_id": "01a24ea0-aa36-7f05-acc4-907499c8b502",
                    "offer": True,
                    "limit_eur": 150.0,
                    "available_eur": 150.0,
                    "order_eur": 89.5,
                    "currency": "EUR",
                    "reasons": [
                        {
                            "code": "B08_THIN_FILE",
                            "declines": False,
                            "text_en": "With a short payment history a lower starter limit "
                            "applies.",
                            "text_nl": "Bij een korte betaalgeschiedenis geldt een lagere "
                            "startlimiet.",
                        }
                    ],
                    "risk_reasons": [],
                    "probability": 0.04,
                    "thin_file": True,
                    "model_version": "7",
                    "policy_version": "bnpl-2026.12.2",
                    "as_of": "2026-01-15",
                    "human_review": None,
                    "limit_raise": {
                        "code": "B13_RAISE_ON_TIME",
                        "next_limit_eur": 200.0,
                        "text_en": "Each pay-later purchase repaid on time raises the limit by "
                        "one step, up to a maximum.",
                        "text_nl": "Elke achteraf-betalen-aankoop die op tijd is betaald "
                        "verhoogt de limiet met een stap, tot een maximum.",
                    },
                    "idempotent_replay": False,
                },
            ]
        },
    )

    decision_id: str
    offer: bool
    limit_eur: float = Field(
        description="pay-later limit for this customer (0 when declined on their situation)"
    )
    available_eur: float = Field(description="limit minus open pay-later orders, before this order")
    order_eur: float
    currency: str
    reasons: list[BnplReasonOut] = Field(description="declining reasons first, most decisive first")
    risk_reasons: list[RiskReasonOut] = Field(
        description="the model's reasons when the risk declined"
    )
    probability: float | None = Field(
        description="P(payment difficulty within 90 days); null without history"
    )
    thin_file: bool
    model_version: str
    policy_version: str
    as_of: date
    human_review: ReviewPath | None = Field(description="how to ask a person to review a decline")
    limit_raise: LimitRaiseOut | None = Field(
        default=None,
        description="what would raise the limit; null when declined on the customer's situation",
    )
    idempotent_replay: bool = False

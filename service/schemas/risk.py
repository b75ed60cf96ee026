"""``POST /v1/risk/scores``: the early-warning request and answer."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

from models.reasons import Reason
from service.schemas.common import CustomerId, Day, RequestModel, check_as_of


class RiskScoresRequest(RequestModel):
    """Score one or many customers. Every id must be known (else 404 naming the unknown ones)."""

    customer_ids: list[CustomerId] = Field(
        min_length=1,
        description="1 to max_batch_customers distinct customer ids",
        examples=[["C000001"]],
    )
    as_of: Day | None = Field(
        default=None,
        description="score as known at the start of this day (default: today, Europe/Amsterdam); "
        "from 1990-01-01 to tomorrow",
    )
    explain: bool = Field(
        default=True,
        strict=True,
        description="reasons for every customer; false gives reasons only to flagged ones",
    )

    @field_validator("customer_ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        seen: set[str] = set()
        dups = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        if dups:
            shown = ", ".join(repr(d) for d in dups[:10])
            raise ValueError(f"customer_ids must be distinct; repeated: {shown}")
        return ids

    @field_validator("as_of")
    @classmethod
    def _plausible_day(cls, value: date | None) -> date | None:
        return check_as_of(value)


RISK_REASON_EXAMPLE: JsonDict = {
    "code": "R03_OPEN_ARREARS",
    "feature": "current_days_past_due",
    "value": 65.0,
    "contribution": 1.03,
    "text_en": "There are unpaid invoices past their due date.",
    "text_nl": "Er staan facturen open waarvan de betaaltermijn verstreken is.",
}
RISK_RESULT_EXAMPLE: JsonDict = {
    "customer_id": "C000001",
    "probability": 0.86,
    "band": "very_high",
    "early_warning": True,
    "reasons": [RISK_REASON_EXAMPLE],
    "recommended_action": {
        "action": "refer_debt_help",
        "channel": "phone",
        "text_en": "Pause collection and refer the customer to municipal debt help (or "
        "Geldfit), with consent.",
        "text_nl": "Pauzeer de incasso en verwijs de klant met toestemming naar "
        "gemeentelijke schuldhulpverlening (of Geldfit).",
    },
    "decision_id": "01a24ea0-aa17-735e-8004-3138f88b342f",
}


class RiskReasonOut(BaseModel):
    """One of the model's own reasons for a risk (a SHAP contribution), named by code."""

    code: str = Field(description="stable reason code, e.g. R04_FAILED_DEBITS")
    feature: str
    value: float | None = Field(description="the feature's value (None when unknown)")
    contribution: float = Field(description="added log-odds of payment difficulty (SHAP)")
    text_en: str
    text_nl: str

    @classmethod
    def of(cls, reason: Reason) -> RiskReasonOut:
        return cls(
            code=reason.code.value,
            feature=reason.feature,
            value=reason.value,
            contribution=reason.contribution,
            text_en=reason.text_en,
            text_nl=reason.text_nl,
        )


class ActionOut(BaseModel):
    action: str
    channel: str
    text_en: str
    text_nl: str


class RiskResult(BaseModel):
    customer_id: str
    probability: float = Field(ge=0, le=1, description="calibrated P(payment difficulty, 90 days)")
    band: str
    early_warning: bool
    reasons: list[RiskReasonOut]
    recommended_action: ActionOut
    decision_id: str = Field(description="id of the logged decision: GET /v1/decisions/{id}")


class RiskScoresResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model_version": "7",
                    "policy_version": "risk-2026.11.1",
                    "as_of": "2026-01-15",
                    "results": [RISK_RESULT_EXAMPLE],
                }
            ]
        },
    )

    model_version: str
    policy_version: str
    as_of: date
    results: list[RiskResult] = Field(description="in the order of the request's customer_ids")

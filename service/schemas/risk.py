"""``POST /v1/risk/scores``: the early-warning request and answer."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    policy_version: str
    as_of: date
    results: list[RiskResult] = Field(description="in the order of the request's customer_ids")

"""``/v1/decisions``: a logged decision with its reviews, and a person's review."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from service.schemas.common import (
    NO_CONTROL_IN_TEXT_PATTERN,
    NO_CONTROL_PATTERN,
    RequestModel,
    no_control_characters,
    no_control_characters_in_text,
)

REVIEW_EXAMPLE: JsonDict = {
    "review_id": "b5a2a3d6-1f16-4867-8873-3b0d1fb13c73",
    "decision_id": "01a24ea0-aa17-735e-8004-3138f88b342f",
    "created_at": "2026-01-16T09:30:00Z",
    "reviewer": "r.devries",
    "outcome": "upheld",
    "reason": "The arrears are confirmed by the customer's own statement.",
}


class ReviewOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [REVIEW_EXAMPLE]})

    review_id: str
    decision_id: str
    created_at: datetime
    reviewer: str
    outcome: str
    reason: str


class DecisionOut(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "decision_id": "01a24ea0-aa17-735e-8004-3138f88b342f",
                    "created_at": "2026-01-15T08:12:03Z",
                    "kind": "risk_score",
                    "customer_id": "C000001",
                    "as_of": "2026-01-15",
                    "model_version": "7",
                    "policy_version": "risk-2026.11.1",
                    "inputs": {"request_id": "e83140c3-0a22-43ab-9d37-ca368baac6e1"},
                    "features": {"current_days_past_due": 65.0, "tenure_days": None},
                    "outputs": {"probability": 0.86, "band": "very_high"},
                    "reviews": [REVIEW_EXAMPLE],
                }
            ]
        },
    )

    decision_id: str
    created_at: datetime
    kind: str
    customer_id: str
    as_of: date
    model_version: str
    policy_version: str
    inputs: dict[str, Any]
    features: dict[str, float | None]
    outputs: dict[str, Any]
    reviews: list[ReviewOut] = Field(
        default_factory=list, description="human reviews, oldest first"
    )


class ReviewIn(RequestModel):
    """A person's review of an automated decision (CCD2 right to human intervention)."""

    reviewer: Annotated[str, AfterValidator(no_control_characters)] = Field(
        min_length=1,
        max_length=100,
        json_schema_extra={"pattern": NO_CONTROL_PATTERN},
        description="who reviewed (id or name); no control characters",
    )
    outcome: Literal["upheld", "overturned"]
    reason: Annotated[str, AfterValidator(no_control_characters_in_text)] = Field(
        min_length=1,
        max_length=4000,
        json_schema_extra={"pattern": NO_CONTROL_IN_TEXT_PATTERN},
        description="why, in words the customer can read (line breaks and tabs allowed, "
        "no other control characters)",
    )

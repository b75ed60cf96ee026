"""``/v1/decisions``: a logged decision with its reviews, and a person's review."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.schemas.common import (
    NO_CONTROL_IN_TEXT_PATTERN,
    NO_CONTROL_PATTERN,
    RequestModel,
    no_control_characters,
    no_control_characters_in_text,
)


class ReviewOut(BaseModel):
    review_id: str
    decision_id: str
    created_at: datetime
    reviewer: str
    outcome: str
    reason: str


class DecisionOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

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

"""Request and response bodies (pydantic; single requests, never pandas/pandera)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
)

from features.schemas import CONTROL_CHARACTERS, EARLIEST_DATE
from models.legal import legal_tables
from models.reasons import Reason

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
EARLIEST_AS_OF = EARLIEST_DATE.date()
#: The first day a legal table is in force (models/config/legal_nl.json): routes that
#: apply legal amounts (protected minimum, WIK costs) cannot answer for an earlier day.
EARLIEST_LEGAL_AS_OF = max(EARLIEST_AS_OF, legal_tables()[0].effective_from)

# Control characters (C0 and DEL). PostgreSQL text cannot hold NUL at all, and none of
# them belongs in an id; a free text may hold line breaks and tabs, never the rest.
_CONTROL = re.compile(CONTROL_CHARACTERS)  # what ingest refuses in an id, too
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: The JSON-schema form of "no control characters" (documents the rule for clients and
#: lets the schema fuzz test generate both sides of it).
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
NO_CONTROL_IN_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def no_control_characters(value: str) -> str:
    """``value`` unless it holds a control character (U+0000-U+001F, U+007F)."""
    if _CONTROL.search(value) is not None:
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F)")
    return value


def no_control_characters_in_text(value: str) -> str:
    """``value`` unless it holds a control character other than tab, LF or CR."""
    if _CONTROL_IN_TEXT.search(value) is not None:
        raise ValueError(
            "must not contain control characters other than tab, line feed and carriage "
            "return (no U+0000)"
        )
    return value


#: An id (customer, reviewer): 1-64 characters, no control characters.
CustomerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(no_control_characters),
    Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]


def _written_day(value: Any) -> Any:
    # pydantic alone reads a number as seconds since 1970 (so 0 was 1 Jan 1970, a
    # plausible birth date); a day in a request is only ever written out.
    if not isinstance(value, str | date):
        raise ValueError("a day is written as YYYY-MM-DD")
    return value


#: A calendar day in a request body: ``YYYY-MM-DD``, never a number.
Day = Annotated[date, BeforeValidator(_written_day)]


def today() -> date:
    """The calendar day in the Netherlands (the service's notion of "now")."""
    return datetime.now(AMSTERDAM).date()


def check_as_of(value: date | None, earliest: date = EARLIEST_AS_OF, why: str = "") -> date | None:
    """``value`` if it lies from ``earliest`` to tomorrow (Europe/Amsterdam); otherwise a
    ``ValueError`` that names both bounds (``why`` says where ``earliest`` comes from)."""
    if value is None:
        return value
    latest = date.fromordinal(today().toordinal() + 1)
    if not earliest <= value <= latest:
        since = f"{earliest} ({why})" if why else str(earliest)
        raise ValueError(f"as_of must be between {since} and {latest} (tomorrow); got {value}")
    return value


class RequestModel(BaseModel):
    """Base of every request body: an unknown field is a 422 naming it, not ignored (a
    misspelt optional field would otherwise silently fall back to its default)."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- risk scores


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


class ReasonOut(BaseModel):
    code: str = Field(description="stable reason code, e.g. R04_FAILED_DEBITS")
    feature: str
    value: float | None = Field(description="the feature's value (None when unknown)")
    contribution: float = Field(description="added log-odds of payment difficulty (SHAP)")
    text_en: str
    text_nl: str

    @classmethod
    def of(cls, reason: Reason) -> ReasonOut:
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
    reasons: list[ReasonOut]
    recommended_action: ActionOut
    decision_id: str = Field(description="id of the logged decision: GET /v1/decisions/{id}")


class RiskScoresResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    policy_version: str
    as_of: date
    results: list[RiskResult] = Field(description="in the order of the request's customer_ids")


# --------------------------------------------------------------------------- events

#: One event row: column -> scalar (no nested objects, no booleans standing in for numbers).
Row = dict[str, StrictStr | StrictInt | StrictFloat | None]


class EventBatch(RequestModel):
    """A batch of events: per table, a list of row objects with the contract's columns.

    Dates as ``YYYY-MM-DD``, money as integer cents. All or nothing: any error rejects the
    batch and nothing is written. Re-sending a batch changes nothing (stable ids).
    """

    customers: list[Row] = Field(default_factory=list)
    invoices: list[Row] = Field(default_factory=list)
    payments: list[Row] = Field(default_factory=list)
    debit_attempts: list[Row] = Field(default_factory=list)
    collection_steps: list[Row] = Field(default_factory=list)
    arrangements: list[Row] = Field(default_factory=list)
    income_receipts: list[Row] = Field(default_factory=list)
    account_balances: list[Row] = Field(default_factory=list)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, rows: list[Row]) -> list[Row]:
        """Every string column of the contract is an id, a code or a date: none holds a
        control character (and PostgreSQL cannot store a NUL). One scan of the joined
        strings (a per-cell validator tripled the parse time of a 10,000-row batch); the
        error names the first offending row and column."""
        text = "".join([v for row in rows for v in row.values() if isinstance(v, str)])
        if _CONTROL.search(text) is None:
            return rows
        for i, row in enumerate(rows):
            for column, value in row.items():
                if isinstance(value, str) and _CONTROL.search(value) is not None:
                    raise ValueError(
                        f"row {i}, column {column!r}: must not contain control characters "
                        "(U+0000-U+001F, U+007F)"
                    )
        return rows  # pragma: no cover - the scan above found one

    def tables(self) -> dict[str, list[Row]]:
        return {name: rows for name, rows in self if rows}

    @property
    def row_count(self) -> int:
        return sum(len(rows) for _, rows in self)


class TableCountsOut(BaseModel):
    received: int
    inserted: int
    duplicates: int
    conflicts: int


class IngestResult(BaseModel):
    accepted: bool
    received: int
    inserted: int
    duplicates: int
    tables: dict[str, TableCountsOut]


# --------------------------------------------------------------------------- decisions


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


# --------------------------------------------------------------------------- operations


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: str
    model_version: str | None
    policy_version: str | None
    checks: dict[str, str]


class ReloadRequest(RequestModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="bundle to load (MLflow URI or local folder); default: the configured one",
    )


class ReloadResult(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    previous_version: str | None
    model_version: str
    policy_version: str
    model_uri: str
    load_ms: float
    generation: int | None = Field(
        default=None,
        description="this reload's number among the server's workers, which swap to it "
        "within reload_poll_seconds; null when this process is the only worker",
    )

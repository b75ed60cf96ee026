"""Debit date: the day of the month with the lowest chance of a failed direct debit.

``GET /v1/customers/{customer_id}/debit-date`` answers one customer;
``POST /v1/debit-dates`` many (all ids or nothing, like the risk scores). Scope
``collection``. The answer compares the current day with the suggested one (expected
failure rates for both), names the detected income pattern and its confidence, the SEPA
pre-notification consequence (the first date the change can take effect and the next
dates) and the reasons; with thin evidence it keeps the current day and says so.

Business rules live in :mod:`models.debit_date`; this module parses, calls and shapes.
A bundle without the ``debit_failure`` component answers 503 problem+json.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator

from models.bundle import Bundle
from models.calendar import FIRST_YEAR as CALENDAR_FIRST_YEAR
from models.debit_date import DebitDatePolicy, DebitDateSuggestion, suggest_debit_dates
from service.decision_log import Decision, new_decision_id
from service.deps import BundleDep, DecisionLogDep, SettingsDep, StoreDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.routes.common import log_decisions, read_events
from service.schemas import (
    EARLIEST_AS_OF,
    NO_CONTROL_PATTERN,
    CustomerId,
    Day,
    RequestModel,
    check_as_of,
    no_control_characters,
    today,
)
from service.settings import Scope

router = APIRouter(tags=["collection"])

COMPONENT = "debit_failure"
KIND = "debit_date"


# --------------------------------------------------------------------------- schemas


class ReasonOut(BaseModel):
    code: str
    text_en: str
    text_nl: str


class IncomeTimingOut(BaseModel):
    pattern: str = Field(
        description="monthly_day, last_working_day, four_weekly, weekly, irregular or unknown"
    )
    pay_day_of_month: int | None = Field(
        description="nominal pay day (monthly_day), 31 = last working day"
    )
    confidence: float = Field(ge=0, le=1)
    source: str = Field(description="income_receipts, debit_history or none")
    income_receipts: int
    next_expected_pay: date | None


class DayOut(BaseModel):
    day_of_month: int
    expected_failure_rate: float = Field(
        ge=0, le=1, description="mean P(debit fails) over the next 12 collections"
    )


class SuggestedDayOut(DayOut):
    days_after_pay: int | None
    rule_en: str
    rule_nl: str


class PreNotificationOut(BaseModel):
    days: int = Field(description="SEPA pre-notification period in calendar days")
    effective_from: date = Field(
        description="first collection on the suggested day the change can reach"
    )
    next_dates: list[date]


class DebitDateResult(BaseModel):
    customer_id: str
    decision_id: str
    change: bool = Field(description="true when moving to the suggested day is advised")
    income: IncomeTimingOut
    current: DayOut | None
    suggested: SuggestedDayOut
    pre_notification: PreNotificationOut
    reasons: list[ReasonOut]


class DebitDateResponse(DebitDateResult):
    model_version: str
    as_of: date


class DebitDatesResponse(BaseModel):
    model_version: str
    as_of: date
    results: list[DebitDateResult]


#: The first as_of a suggestion can be computed for: the collection dates start from the
#: month *before* the first month the change can reach, and the TARGET2 calendar
#: (models.calendar) begins on 1 January of its first year, so as_of must lie in its
#: second month or later (January 1990 was a 500).
EARLIEST_DEBIT_AS_OF = max(EARLIEST_AS_OF, date(CALENDAR_FIRST_YEAR, 2, 1))


def _check_as_of(value: date | None) -> date | None:
    return check_as_of(value, EARLIEST_DEBIT_AS_OF, "the business calendar's second month")


class DebitDateCustomer(RequestModel):
    customer_id: CustomerId
    current_day: int | None = Field(
        default=None, ge=1, le=31, strict=True, description="default: from the debit history"
    )
    amount_cents: int | None = Field(
        default=None, gt=0, le=100_000_000, strict=True, description="default: typical debit"
    )


class DebitDatesRequest(RequestModel):
    customers: list[DebitDateCustomer] = Field(
        min_length=1, examples=[[{"customer_id": "C000001"}]]
    )
    as_of: Day | None = Field(
        default=None,
        description=f"as known at the start of this day; from {EARLIEST_DEBIT_AS_OF} to tomorrow",
    )
    pre_notification_days: int = Field(default=14, ge=0, le=90, strict=True)

    @field_validator("customers")
    @classmethod
    def _distinct(cls, items: list[DebitDateCustomer]) -> list[DebitDateCustomer]:
        counts = Counter(c.customer_id for c in items)
        dups = sorted(cid for cid, n in counts.items() if n > 1)
        if dups:
            raise ValueError(
                f"customer ids must be distinct; repeated: {', '.join(map(repr, dups[:10]))}"
            )
        return items

    @field_validator("as_of")
    @classmethod
    def _plausible_day(cls, value: date | None) -> date | None:
        return _check_as_of(value)


# --------------------------------------------------------------------------- routes


@router.get(
    "/v1/customers/{customer_id}/debit-date",
    response_model=DebitDateResponse,
    dependencies=[Depends(require_scope(Scope.COLLECTION))],
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Suggested direct-debit day: current vs suggested, with expected failure rates",
)
async def debit_date(
    customer_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=64,
            json_schema_extra={"pattern": NO_CONTROL_PATTERN},
            description="no control characters",
        ),
    ],
    bundle: BundleDep,
    store: StoreDep,
    decision_log: DecisionLogDep,
    settings: SettingsDep,
    as_of: Annotated[
        date | None,
        Query(
            description="as known at the start of this day; "
            f"from {EARLIEST_DEBIT_AS_OF} to tomorrow"
        ),
    ] = None,
    current_day: Annotated[
        int | None, Query(ge=1, le=31, description="the creditor's current day")
    ] = None,
    amount_cents: Annotated[int | None, Query(gt=0, le=100_000_000)] = None,
    pre_notification_days: Annotated[int, Query(ge=0, le=90)] = 14,
) -> DebitDateResponse:
    try:
        as_of = _check_as_of(as_of)
    except ValueError as exc:
        raise RequestValidationError(
            [{"loc": ("query", "as_of"), "msg": str(exc), "type": "value_error"}]
        ) from exc
    try:
        no_control_characters(customer_id)
    except ValueError as exc:
        raise RequestValidationError(
            [{"loc": ("path", "customer_id"), "msg": str(exc), "type": "value_error"}]
        ) from exc
    body = DebitDatesRequest.model_construct(
        customers=[
            DebitDateCustomer(
                customer_id=customer_id, current_day=current_day, amount_cents=amount_cents
            )
        ],
        as_of=as_of,
        pre_notification_days=pre_notification_days,
    )
    response = await _answer(body, bundle, store, decision_log, settings, batch=False)
    return DebitDateResponse(
        model_version=response.model_version,
        as_of=response.as_of,
        **response.results[0].model_dump(),
    )


@router.post(
    "/v1/debit-dates",
    response_model=DebitDatesResponse,
    dependencies=[Depends(require_scope(Scope.COLLECTION))],
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Suggested direct-debit days for many customers (all ids or nothing)",
)
async def debit_dates(
    body: DebitDatesRequest,
    bundle: BundleDep,
    store: StoreDep,
    decision_log: DecisionLogDep,
    settings: SettingsDep,
) -> DebitDatesResponse:
    if len(body.customers) > settings.max_batch_customers:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "customers"),
                    "msg": f"at most {settings.max_batch_customers} customers per request; got {len(body.customers)}",
                    "type": "too_long",
                }
            ]
        )
    return await _answer(body, bundle, store, decision_log, settings, batch=True)


async def _answer(
    body: DebitDatesRequest,
    bundle: Bundle,
    store: Any,
    decision_log: Any,
    settings: Any,
    *,
    batch: bool,
) -> DebitDatesResponse:
    model = bundle.components.get(COMPONENT)
    if model is None:
        raise ProblemError(
            503,
            ProblemType.NO_MODEL,
            "Model without debit-failure component",
            f"the loaded bundle {bundle.version} has no {COMPONENT!r} component; publish a bundle "
            "trained with it and call /admin/reload",
        )
    ids = [c.customer_id for c in body.customers]
    as_of = body.as_of or settings.default_as_of or today()
    events = await read_events(store, ids)
    current = np.array([c.current_day or 0 for c in body.customers], dtype=np.int64)
    amounts = np.array([c.amount_cents or 0 for c in body.customers], dtype=np.int64)
    policy = DebitDatePolicy(pre_notification_days=body.pre_notification_days)
    suggestions = suggest_debit_dates(
        events, as_of, model, current_days=current, amount_cents=amounts, policy=policy
    )

    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    results: list[DebitDateResult] = []
    rows: list[Decision] = []
    for item, s in zip(body.customers, suggestions, strict=True):
        result = _shape(s, new_decision_id(), body.pre_notification_days)
        results.append(result)
        rows.append(
            Decision(
                decision_id=result.decision_id,
                created_at=now,
                kind=KIND,
                customer_id=s.customer_id,
                as_of=as_of,
                model_version=bundle.version,
                policy_version=bundle.policy.version,
                inputs={
                    "request_id": request_id,
                    "customer_id": s.customer_id,
                    "as_of_requested": body.as_of.isoformat() if body.as_of else None,
                    "current_day": item.current_day,
                    "amount_cents": item.amount_cents,
                    "pre_notification_days": body.pre_notification_days,
                    "batch_size": len(ids) if batch else 1,
                },
                features={},
                outputs=result.model_dump(mode="json", exclude={"decision_id", "customer_id"}),
            )
        )
    await log_decisions(decision_log, rows, settings)
    return DebitDatesResponse(model_version=bundle.version, as_of=as_of, results=results)


def _shape(s: DebitDateSuggestion, decision_id: str, pre_notification_days: int) -> DebitDateResult:
    current = (
        DayOut(day_of_month=s.current_day, expected_failure_rate=s.current_failure_rate)
        if s.current_day is not None and s.current_failure_rate is not None
        else None
    )
    return DebitDateResult(
        customer_id=s.customer_id,
        decision_id=decision_id,
        change=s.change,
        income=IncomeTimingOut(
            pattern=s.income_pattern,
            pay_day_of_month=s.pay_day_of_month,
            confidence=s.pattern_confidence,
            source=s.timing_source,
            income_receipts=s.income_receipts,
            next_expected_pay=s.next_expected_pay,
        ),
        current=current,
        suggested=SuggestedDayOut(
            day_of_month=s.suggested_day,
            expected_failure_rate=s.suggested_failure_rate,
            days_after_pay=s.days_after_pay,
            rule_en=s.rule_en,
            rule_nl=s.rule_nl,
        ),
        pre_notification=PreNotificationOut(
            days=pre_notification_days, effective_from=s.effective_from, next_dates=s.next_dates
        ),
        reasons=[
            ReasonOut(code=r.code.value, text_en=r.text_en, text_nl=r.text_nl) for r in s.reasons
        ],
    )

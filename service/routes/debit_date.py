"""Debit date: the day of the month with the lowest chance of a failed direct debit.

``GET /v1/customers/{customer_id}/debit-date`` answers one customer;
``POST /v1/debit-dates`` many (all ids or nothing, like the risk scores). Scope
``collection``. The answer compares the current day with the suggested one (expected
failure rates for both), names the detected income pattern and its confidence, the SEPA
pre-notification consequence (the first date the change can take effect and the next
dates) and the reasons; with thin evidence it keeps the current day and says so.

Business rules live in :mod:`models.debit_date` (entry: ``suggest_for_customers``); this
module parses, calls and shapes.
A bundle without the ``debit_failure`` component answers 503 problem+json.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.exceptions import RequestValidationError

from models.debit_date import DebitDateSuggestion, suggest_for_customers
from service.decision_log import Decision, new_decision_id
from service.deps import ScoringContext, scoring_context
from service.errors import ProblemError, ProblemType, problem_responses
from service.json_body import StrictJSONRoute
from service.routes.common import DecisionRecord, from_store, log_decisions, resolve_as_of
from service.schemas import (
    EARLIEST_DEBIT_AS_OF,
    NO_CONTROL_PATTERN,
    DayOut,
    DebitDateCustomer,
    DebitDateReasonOut,
    DebitDateResponse,
    DebitDateResult,
    DebitDatesRequest,
    DebitDatesResponse,
    IncomeTimingOut,
    PreNotificationOut,
    SuggestedDayOut,
    check_debit_as_of,
    no_control_characters,
)
from service.settings import Scope

router = APIRouter(tags=["collection"], route_class=StrictJSONRoute)

COMPONENT = "debit_failure"
KIND = "debit_date"


@router.get(
    "/v1/customers/{customer_id}/debit-date",
    response_model=DebitDateResponse,
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
    ctx: Annotated[ScoringContext, Depends(scoring_context(Scope.COLLECTION))],
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
        as_of = check_debit_as_of(as_of)
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
    response = await _answer(body, ctx, batch=False)
    return DebitDateResponse(
        model_version=response.model_version,
        as_of=response.as_of,
        **response.results[0].model_dump(),
    )


@router.post(
    "/v1/debit-dates",
    response_model=DebitDatesResponse,
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Suggested direct-debit days for many customers (all ids or nothing)",
)
async def debit_dates(
    body: DebitDatesRequest,
    ctx: Annotated[ScoringContext, Depends(scoring_context(Scope.COLLECTION))],
) -> DebitDatesResponse:
    settings = ctx.settings
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
    return await _answer(body, ctx, batch=True)


async def _answer(
    body: DebitDatesRequest, ctx: ScoringContext, *, batch: bool
) -> DebitDatesResponse:
    bundle = ctx.bundle
    model = bundle.components.get(COMPONENT)
    if model is None:
        raise ProblemError(
            503,
            ProblemType.NO_MODEL,
            "Model without debit-failure component",
            f"the loaded bundle {bundle.version} has no {COMPONENT!r} component; publish a bundle "
            "trained with it and call /admin/reload",
        )
    as_of = resolve_as_of(body.as_of, ctx.settings)
    suggestions = await from_store(
        suggest_for_customers,
        ctx.serving,
        model,
        [c.customer_id for c in body.customers],
        as_of,
        current_days=[c.current_day for c in body.customers],
        amount_cents=[c.amount_cents for c in body.customers],
        pre_notification_days=body.pre_notification_days,
    )

    record = DecisionRecord(KIND, as_of, bundle.version, bundle.policy.version, client=ctx.client)
    results: list[DebitDateResult] = []
    rows: list[Decision] = []
    for item, s in zip(body.customers, suggestions, strict=True):
        result = _shape(s, new_decision_id(), body.pre_notification_days)
        results.append(result)
        rows.append(
            record.row(
                result.decision_id,
                s.customer_id,
                inputs={
                    "customer_id": s.customer_id,
                    "as_of_requested": body.as_of.isoformat() if body.as_of else None,
                    "current_day": item.current_day,
                    "amount_cents": item.amount_cents,
                    "pre_notification_days": body.pre_notification_days,
                    "batch_size": len(body.customers) if batch else 1,
                },
                outputs=result,
                exclude={"decision_id", "customer_id"},
            )
        )
    await log_decisions(ctx.decision_log, rows, ctx.settings)
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
            DebitDateReasonOut(code=r.code.value, text_en=r.text_en, text_nl=r.text_nl)
            for r in s.reasons
        ],
    )

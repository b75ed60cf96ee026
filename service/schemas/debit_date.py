"""Debit dates: ``GET /v1/customers/{customer_id}/debit-date`` and ``POST /v1/debit-dates``."""

from __future__ import annotations

from collections import Counter
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

from models.calendar import FIRST_YEAR as CALENDAR_FIRST_YEAR
from service.schemas.common import (
    EARLIEST_AS_OF,
    CustomerId,
    Day,
    ReasonBase,
    RequestModel,
    check_as_of,
)


class DebitDateReasonOut(ReasonBase):
    """A reason of the debit-date suggestion (code ``D…``)."""


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


DEBIT_DATE_RESULT_EXAMPLE: JsonDict = {
    "customer_id": "C000001",
    "decision_id": "01a24ea0-aa72-7a2f-b89b-b56f78409641",
    "change": True,
    "income": {
        "pattern": "monthly_day",
        "pay_day_of_month": 25,
        "confidence": 0.92,
        "source": "income_receipts",
        "income_receipts": 12,
        "next_expected_pay": "2026-01-26",
    },
    "current": {"day_of_month": 20, "expected_failure_rate": 0.081},
    "suggested": {
        "day_of_month": 27,
        "expected_failure_rate": 0.019,
        "days_after_pay": 2,
        "rule_en": "collect on the 27th of each month; on a weekend or TARGET2 closing day, "
        "the next business day",
        "rule_nl": "incasseer op de 27e van elke maand; valt die in een weekend of op een "
        "TARGET2-sluitingsdag, dan de eerstvolgende werkdag",
    },
    "pre_notification": {
        "days": 14,
        "effective_from": "2026-02-27",
        "next_dates": ["2026-02-27", "2026-03-27"],
    },
    "reasons": [
        {
            "code": "collect_after_payday",
            "text_en": "Collecting shortly after pay lowers the expected failure rate from 8.1% "
            "to 1.9%.",
            "text_nl": "Incasseren kort na het inkomen verlaagt de verwachte uitval van 8.1% "
            "naar 1.9%.",
        }
    ],
}


class DebitDateResult(BaseModel):
    customer_id: str
    decision_id: str
    change: bool = Field(description="true when moving to the suggested day is advised")
    income: IncomeTimingOut
    current: DayOut | None
    suggested: SuggestedDayOut
    pre_notification: PreNotificationOut
    reasons: list[DebitDateReasonOut]


class DebitDateResponse(DebitDateResult):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [{**DEBIT_DATE_RESULT_EXAMPLE, "model_version": "7", "as_of": "2026-01-15"}]
        },
    )

    model_version: str
    as_of: date


class DebitDatesResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model_version": "7",
                    "as_of": "2026-01-15",
                    "results": [DEBIT_DATE_RESULT_EXAMPLE],
                }
            ]
        },
    )

    model_version: str
    as_of: date
    results: list[DebitDateResult]


#: The first as_of a suggestion can be computed for: the collection dates start from the
#: month *before* the first month the change can reach, and the TARGET2 calendar
#: (models.calendar) begins on 1 January of its first year, so as_of must lie in its
#: second month or later (January 1990 was a 500).
EARLIEST_DEBIT_AS_OF = max(EARLIEST_AS_OF, date(CALENDAR_FIRST_YEAR, 2, 1))


def check_debit_as_of(value: date | None) -> date | None:
    """``value`` if a suggestion can be computed for it (see :data:`EARLIEST_DEBIT_AS_OF`)."""
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
        return check_debit_as_of(value)

"""``GET /v1/reports/impact``: the latest impact report that `tijdig report impact` wrote.

The shape of ``impact.json`` (``training.reports.impact_model.ImpactReport.to_dict``):
amounts in cents, shares 0..1, ``null`` where a figure is undefined (no invoices, no
attempts). The service only reads the file; the figures are measured by the command.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from features.schemas import CollectionStep


class ImpactOutcomesOut(BaseModel):
    """Where a set of invoices ended, and how many reached each collection step."""

    invoices: int
    customers: int
    principal_cents: int
    by_outcome: dict[str, int] = Field(description="outcome -> invoices")
    reached: dict[str, int] = Field(description="collection step -> invoices that reached it")
    shares: dict[str, float | None]
    reached_shares: dict[str, float | None]


class ImpactCostsOut(BaseModel):
    """Collection costs on top of the principal of the invoices in collection (cents)."""

    invoices_in_collection: int
    customers_affected: int
    principal_in_collection_cents: int
    principal_invoiced_cents: int
    wik_cents: int
    interest_cents: int
    bailiff_cents: int
    other_step_costs_cents: int
    recorded_agency_costs_cents: int
    total_cents: int
    per_customer_affected_cents: float | None
    per_euro_in_collection: float | None
    per_euro_invoiced: float | None


class ImpactDebitsOut(BaseModel):
    attempts: int
    failed: int
    reversed: int
    failed_per_1000: float | None
    reversed_per_1000: float | None


class ImpactArrangementsOut(BaseModel):
    made: int
    kept: int
    broken: int
    active: int
    kept_share: float | None = Field(description="kept, of the arrangements that ended")


class ImpactFiguresOut(BaseModel):
    """All figures of one slice: the whole period, a cohort month, before or after a date."""

    label: str
    mature: bool = Field(description="every invoice due long enough before the end: final")
    invoices: ImpactOutcomesOut
    costs: ImpactCostsOut
    debits: ImpactDebitsOut
    arrangements: ImpactArrangementsOut
    pay_later: ImpactOutcomesOut
    pay_later_costs: ImpactCostsOut


_OUTCOMES = (
    "paid_on_time",
    "paid_late_before_reminder",
    "paid_after_reminder",
    "paid_after_letter",
    "paid_at_agency",
    "paid_at_bailiff",
    "open",
)
_STEPS = tuple(step.value for step in CollectionStep)


def _outcomes_example(counts: tuple[int, ...], reached: tuple[int, ...]) -> JsonDict:
    invoices = sum(counts)
    return {
        "invoices": invoices,
        "customers": 3,
        "principal_cents": 120_000,
        "by_outcome": dict(zip(_OUTCOMES, counts, strict=True)),
        "reached": dict(zip(_STEPS, reached, strict=True)),
        "shares": {k: c / invoices for k, c in zip(_OUTCOMES, counts, strict=True)},
        "reached_shares": {k: r / invoices for k, r in zip(_STEPS, reached, strict=True)},
    }


_NO_COSTS: JsonDict = {
    "invoices_in_collection": 0,
    "customers_affected": 0,
    "principal_in_collection_cents": 0,
    "principal_invoiced_cents": 0,
    "wik_cents": 0,
    "interest_cents": 0,
    "bailiff_cents": 0,
    "other_step_costs_cents": 0,
    "recorded_agency_costs_cents": 0,
    "total_cents": 0,
    "per_customer_affected_cents": None,
    "per_euro_in_collection": None,
    "per_euro_invoiced": None,
}
_TOTAL: JsonDict = {
    "label": "total",
    "mature": True,
    "invoices": _outcomes_example((4, 0, 1, 0, 1, 0, 0), (2, 1, 1, 0)),
    "costs": {
        **_NO_COSTS,
        "invoices_in_collection": 1,
        "customers_affected": 1,
        "principal_in_collection_cents": 20_000,
        "principal_invoiced_cents": 120_000,
        "wik_cents": 4_000,
        "interest_cents": 210,
        "recorded_agency_costs_cents": 4_000,
        "total_cents": 4_210,
        "per_customer_affected_cents": 4_210.0,
        "per_euro_in_collection": 0.2105,
        "per_euro_invoiced": 0.0351,
    },
    "debits": {
        "attempts": 6,
        "failed": 1,
        "reversed": 0,
        "failed_per_1000": 166.66666666666666,
        "reversed_per_1000": 0.0,
    },
    "arrangements": {"made": 1, "kept": 1, "broken": 0, "active": 0, "kept_share": 1.0},
    "pay_later": {
        "invoices": 0,
        "customers": 0,
        "principal_cents": 0,
        "by_outcome": dict.fromkeys(_OUTCOMES, 0),
        "reached": dict.fromkeys(_STEPS, 0),
        "shares": dict.fromkeys(_OUTCOMES),
        "reached_shares": dict.fromkeys(_STEPS),
    },
    "pay_later_costs": _NO_COSTS,
}


class ImpactReportOut(BaseModel):
    """The impact figures of the event store: in total, per monthly invoice cohort and,
    with a split date, before and from the day tijdig was adopted."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "report": "impact",
                    "period_start": "2025-01-01",
                    "period_end": "2026-01-01",
                    "observed_until": "2026-07-01",
                    "split_at": None,
                    "legal_versions": ["nl-2025-01"],
                    "empty_reason": None,
                    "steps_not_recorded": None,
                    "headlines": [
                        "6 invoices issued from 2025-01-01 up to 2026-01-01 to 3 customers, "
                        "€1,200 in total; outcomes as known on 2026-07-01.",
                        "Paid on time: 66.7%; reached a reminder: 33.3%, the 14-day letter: "
                        "16.7%, the agency: 16.7%, the bailiff: 0.0%; still open: 0.0%.",
                    ],
                    "total": _TOTAL,
                    "before": None,
                    "after": None,
                    "monthly": [{**_TOTAL, "label": "2025-01"}],
                    "debt_help_referrals": "not recorded: the event tables have no debt-help "
                    "referral event, so referrals cannot be counted from them",
                    "definitions": {"cohort": "invoices by the month of their issue date"},
                }
            ]
        }
    )

    report: str = Field(description='always "impact"')
    period_start: date | None = Field(description="first day counted (inclusive)")
    period_end: date | None = Field(description="end of the period (exclusive)")
    observed_until: date | None = Field(description="end of the data: outcomes as known then")
    split_at: date | None = Field(description="the day tijdig was adopted, if given")
    legal_versions: list[str] = Field(description="legal tables whose amounts were used")
    empty_reason: str | None = Field(description="set when there was nothing to measure")
    steps_not_recorded: str | None = Field(
        default=None,
        description="set when the store holds no collection steps: stages and costs are "
        "then not measured, only payment outcomes",
    )
    headlines: list[str]
    total: ImpactFiguresOut | None
    before: ImpactFiguresOut | None
    after: ImpactFiguresOut | None
    monthly: list[ImpactFiguresOut]
    debt_help_referrals: str
    definitions: dict[str, str]

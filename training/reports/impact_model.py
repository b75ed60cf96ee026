"""The impact report's figures as data: what each number counts, JSON, and sentences.

:mod:`training.reports.impact` measures them on the event tables; this module holds what
they are, so the page (:mod:`training.reports.impact_html`) and any other reader share
one definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from features.schemas import CollectionStep
from training.simulation.calibration import MATURE_DAYS

__all__ = [
    "DEFINITIONS",
    "OUTCOMES",
    "STEPS",
    "STEPS_NOT_RECORDED",
    "Arrangements",
    "Costs",
    "Debits",
    "Figures",
    "ImpactReport",
    "Outcomes",
    "euros",
    "headlines",
    "percent",
]

OUTCOMES: tuple[str, ...] = (
    "paid_on_time",
    "paid_late_before_reminder",
    "paid_after_reminder",
    "paid_after_letter",
    "paid_at_agency",
    "paid_at_bailiff",
    "open",
)
STEPS: tuple[str, ...] = tuple(s.value for s in CollectionStep)

#: The definitions the figures follow, written once for the JSON and the page.
DEFINITIONS: dict[str, str] = {
    "cohort": "invoices by the month of their issue date",
    "outcome": (
        "paid = the day the invoice's payments first add up to its amount; on time = on or "
        "before the due date; otherwise by the furthest collection step dated before that "
        "day; open = not fully paid by the end of the data"
    ),
    "in_collection": "invoices handed to the collection agency (after an expired 14-day letter)",
    "wik": (
        "statutory collection costs (WIK scale, art. 6:96 BW) on the principal of each invoice "
        "in collection, by the legal table in force on the day it was handed over"
    ),
    "statutory_interest": (
        "statutory interest for consumers (art. 6:119 BW) on the principal of each invoice in "
        "collection, from its due date until each payment (the rest until the end of the "
        "data), at the rate in force each day; simple interest"
    ),
    "bailiff": "costs recorded on bailiff steps",
    "other_step_costs": "costs recorded on reminder and 14-day letter steps (legally free)",
    "failed_debits": "direct-debit attempts (first tries and retries) that failed, per 1,000",
    "arrangements": "payment arrangements by start month; kept = share of the ended ones kept",
    "pay_later": "invoices of product bnpl (pay-later orders)",
    "mature": f"every invoice of the cohort due at least {MATURE_DAYS} days before the end",
}
STEPS_NOT_RECORDED = (
    "no collection steps recorded: stages (reminder, 14-day letter, agency, bailiff) and "
    "collection costs need the collection_steps table, so only payment outcomes are shown"
)
DEBT_HELP_NOT_RECORDED = (
    "not recorded: the event tables have no debt-help referral event, so referrals cannot "
    "be counted from them"
)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _from_dict(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """Build a flat dataclass from its dict, ignoring the derived values ``to_dict`` adds."""
    return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Outcomes:
    """Where a set of invoices ended, and how many reached each collection step."""

    invoices: int
    customers: int
    principal_cents: int
    by_outcome: dict[str, int]  # OUTCOMES -> invoices
    reached: dict[str, int]  # STEPS -> invoices that reached the step

    def shares(self) -> dict[str, float | None]:
        """Each outcome's share of the invoices (None without invoices)."""
        return {k: _share(v, self.invoices) for k, v in self.by_outcome.items()}

    def reached_shares(self) -> dict[str, float | None]:
        """Each step's share of the invoices that reached it."""
        return {k: _share(v, self.invoices) for k, v in self.reached.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "shares": self.shares(),
            "reached_shares": self.reached_shares(),
        }


@dataclass(frozen=True)
class Costs:
    """Collection costs on top of the principal of the invoices in collection (cents)."""

    invoices_in_collection: int
    customers_affected: int
    principal_in_collection_cents: int
    principal_invoiced_cents: int
    wik_cents: int
    interest_cents: int
    bailiff_cents: int
    other_step_costs_cents: int
    recorded_agency_costs_cents: int  # what the creditor recorded at the agency: a check on WIK

    @property
    def total_cents(self) -> int:
        return (
            self.wik_cents + self.interest_cents + self.bailiff_cents + self.other_step_costs_cents
        )

    @property
    def per_customer_affected_cents(self) -> float | None:
        return _share(self.total_cents, self.customers_affected)

    @property
    def per_euro_in_collection(self) -> float | None:
        """Euros of costs per euro of principal in collection."""
        return _share(self.total_cents, self.principal_in_collection_cents)

    @property
    def per_euro_invoiced(self) -> float | None:
        """Euros of costs per euro of all principal invoiced."""
        return _share(self.total_cents, self.principal_invoiced_cents)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "total_cents": self.total_cents,
            "per_customer_affected_cents": self.per_customer_affected_cents,
            "per_euro_in_collection": self.per_euro_in_collection,
            "per_euro_invoiced": self.per_euro_invoiced,
        }


@dataclass(frozen=True)
class Debits:
    """Direct-debit attempts and how many came back."""

    attempts: int
    failed: int
    reversed: int

    @property
    def failed_per_1000(self) -> float | None:
        return None if not self.attempts else 1000 * self.failed / self.attempts

    @property
    def reversed_per_1000(self) -> float | None:
        return None if not self.attempts else 1000 * self.reversed / self.attempts

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "failed_per_1000": self.failed_per_1000,
            "reversed_per_1000": self.reversed_per_1000,
        }


@dataclass(frozen=True)
class Arrangements:
    """Payment arrangements made, and how the ended ones ended."""

    made: int
    kept: int
    broken: int
    active: int

    @property
    def kept_share(self) -> float | None:
        """Kept, of the arrangements that ended (kept or broken)."""
        return _share(self.kept, self.kept + self.broken)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "kept_share": self.kept_share,
        }


@dataclass(frozen=True)
class Figures:
    """All figures of one slice: the whole period, a cohort month, before or after a date."""

    label: str
    invoices: Outcomes
    costs: Costs
    debits: Debits
    arrangements: Arrangements
    pay_later: Outcomes
    pay_later_costs: Costs
    mature: bool  # every invoice due MATURE_DAYS before the end: the open share is final

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "mature": self.mature,
            **{
                name: getattr(self, name).to_dict()
                for name in ("invoices", "costs", "debits", "arrangements")
            },
            "pay_later": self.pay_later.to_dict(),
            "pay_later_costs": self.pay_later_costs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figures:
        return cls(
            label=data["label"],
            invoices=_from_dict(Outcomes, data["invoices"]),
            costs=_from_dict(Costs, data["costs"]),
            debits=_from_dict(Debits, data["debits"]),
            arrangements=_from_dict(Arrangements, data["arrangements"]),
            pay_later=_from_dict(Outcomes, data["pay_later"]),
            pay_later_costs=_from_dict(Costs, data["pay_later_costs"]),
            mature=data["mature"],
        )


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _day_or_none(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


@dataclass(frozen=True)
class ImpactReport:
    """The impact figures of an event store. ``empty_reason`` set = nothing to measure."""

    period_start: date | None  # first day counted (inclusive)
    period_end: date | None  # exclusive
    observed_until: date | None  # exclusive end of the data: outcomes are as known then
    split_at: date | None
    legal_versions: tuple[str, ...]  # legal tables whose WIK scale or interest rate was used
    total: Figures | None
    monthly: tuple[Figures, ...] = ()
    before: Figures | None = None
    after: Figures | None = None
    debt_help_referrals: str = DEBT_HELP_NOT_RECORDED
    empty_reason: str | None = None
    steps_not_recorded: str | None = None  # set: stages and costs cannot be measured
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))

    @property
    def empty(self) -> bool:
        return self.empty_reason is not None

    def to_dict(self) -> dict[str, Any]:
        def figs(f: Figures | None) -> dict[str, Any] | None:
            return None if f is None else f.to_dict()

        return {
            "report": "impact",
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "observed_until": _iso(self.observed_until),
            "split_at": _iso(self.split_at),
            "legal_versions": list(self.legal_versions),
            "empty_reason": self.empty_reason,
            "steps_not_recorded": self.steps_not_recorded,
            "headlines": headlines(self),
            "total": figs(self.total),
            "before": figs(self.before),
            "after": figs(self.after),
            "monthly": [m.to_dict() for m in self.monthly],
            "debt_help_referrals": self.debt_help_referrals,
            "definitions": self.definitions,
        }

    def to_json(self) -> str:
        """The report as JSON (amounts in cents, shares 0..1, null where undefined)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ImpactReport:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)

        def figs(d: Mapping[str, Any] | None) -> Figures | None:
            return None if d is None else Figures.from_dict(d)

        return cls(
            period_start=_day_or_none(data["period_start"]),
            period_end=_day_or_none(data["period_end"]),
            observed_until=_day_or_none(data["observed_until"]),
            split_at=_day_or_none(data["split_at"]),
            legal_versions=tuple(data["legal_versions"]),
            total=figs(data["total"]),
            monthly=tuple(Figures.from_dict(m) for m in data["monthly"]),
            before=figs(data["before"]),
            after=figs(data["after"]),
            debt_help_referrals=data["debt_help_referrals"],
            empty_reason=data["empty_reason"],
            steps_not_recorded=data.get("steps_not_recorded"),
            definitions=dict(data["definitions"]),
        )


# ---------------------------------------------------------------------------- text


def euros(cents: float) -> str:
    """``€1,234`` for whole euros, ``€12.50`` below a hundred."""
    value = cents / 100
    return f"€{value:,.2f}" if abs(value) < 100 else f"€{value:,.0f}"


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


def headlines(report: ImpactReport) -> list[str]:
    """The headline figures as sentences (the page's summary and the CLI's output)."""
    if report.empty_reason is not None or report.total is None:
        return [f"Empty report: {report.empty_reason}."]
    t = report.total
    inv, costs = t.invoices, t.costs
    shares, reached = inv.shares(), inv.reached_shares()
    if report.steps_not_recorded is not None:
        return _payments_only_headlines(report, t)
    lines = [
        f"{_count(inv.invoices, 'invoice')} issued from {report.period_start} up to "
        f"{report.period_end} to {_count(inv.customers, 'customer')}, "
        f"{euros(inv.principal_cents)} in total; outcomes as known on {report.observed_until}.",
        f"Paid on time: {percent(shares['paid_on_time'])}; reached a reminder: "
        f"{percent(reached['reminder'])}, the 14-day letter: "
        f"{percent(reached['fourteen_day_letter'])}, the agency: {percent(reached['agency'])}, "
        f"the bailiff: {percent(reached['bailiff'])}; still open: {percent(shares['open'])}.",
        f"Collection costs on top of the principal: {euros(costs.total_cents)} "
        f"(WIK {euros(costs.wik_cents)}, statutory interest {euros(costs.interest_cents)}, "
        f"bailiff {euros(costs.bailiff_cents)}) for {_count(costs.customers_affected, 'customer')}: "
        f"{_maybe(costs.per_customer_affected_cents, euros)} per customer affected, "
        f"{_maybe(costs.per_euro_in_collection, _cents_per_euro)} per euro of principal in "
        f"collection.",
        f"Failed direct debits: {_maybe(t.debits.failed_per_1000, _per_1000)} per 1,000 "
        f"attempts ({t.debits.attempts:,} attempts).",
        f"Payment arrangements: {t.arrangements.made:,} made, {t.arrangements.kept:,} kept of "
        f"{t.arrangements.kept + t.arrangements.broken:,} ended "
        f"({percent(t.arrangements.kept_share)}).",
        f"Debt-help referrals: {report.debt_help_referrals}.",
        _pay_later_line(t),
    ]
    if report.before is not None and report.after is not None:
        lines.append(_split_line(report.before, report.after, report.split_at))
    return lines


def _payments_only_headlines(report: ImpactReport, t: Figures) -> list[str]:
    inv = t.invoices
    shares = inv.shares()
    late = sum(inv.by_outcome[o] for o in OUTCOMES[1:6])
    return [
        f"{_count(inv.invoices, 'invoice')} issued from {report.period_start} up to "
        f"{report.period_end} to {_count(inv.customers, 'customer')}, "
        f"{euros(inv.principal_cents)} in total; outcomes as known on {report.observed_until}.",
        f"Paid on time: {percent(shares['paid_on_time'])}; paid late: "
        f"{percent(_share(late, inv.invoices))}; still open: {percent(shares['open'])}.",
        f"Stages and collection costs: not measured ({report.steps_not_recorded}).",
        f"Failed direct debits: {_maybe(t.debits.failed_per_1000, _per_1000)} per 1,000 "
        f"attempts ({t.debits.attempts:,} attempts).",
        f"Payment arrangements: {t.arrangements.made:,} made, {t.arrangements.kept:,} kept of "
        f"{t.arrangements.kept + t.arrangements.broken:,} ended "
        f"({percent(t.arrangements.kept_share)}).",
        f"Debt-help referrals: {report.debt_help_referrals}.",
        _pay_later_line(t, steps_recorded=False),
    ]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _maybe(value: float | None, fmt: Any) -> str:
    return "n/a" if value is None else str(fmt(value))


def _cents_per_euro(ratio: float) -> str:
    return f"€{ratio:.2f}"


def _per_1000(value: float) -> str:
    return f"{value:.1f}"


def _pay_later_line(t: Figures, steps_recorded: bool = True) -> str:
    bnpl = t.pay_later
    if not bnpl.invoices:
        return "Pay-later orders: none in the period."
    shares = bnpl.shares()
    collection = (
        f"reached the agency {percent(bnpl.reached_shares()['agency'])}, " if steps_recorded else ""
    )
    costs = f"; costs on top {euros(t.pay_later_costs.total_cents)}" if steps_recorded else ""
    return (
        f"Pay-later orders: {bnpl.invoices:,} ({euros(bnpl.principal_cents)}) to "
        f"{_count(bnpl.customers, 'customer')}; paid on time {percent(shares['paid_on_time'])}, "
        f"{collection}still open {percent(shares['open'])}{costs}."
    )


def _split_line(before: Figures, after: Figures, split_at: date | None) -> str:
    def part(f: Figures) -> str:
        return (
            f"on time {percent(f.invoices.shares()['paid_on_time'])}, at the agency "
            f"{percent(f.invoices.reached_shares()['agency'])}, costs "
            f"{_maybe(f.costs.per_customer_affected_cents, euros)} per customer affected, "
            f"failed debits {_maybe(f.debits.failed_per_1000, _per_1000)} per 1,000, "
            f"arrangements kept {percent(f.arrangements.kept_share)}"
        )

    return f"Before {split_at}: {part(before)}. From {split_at}: {part(after)}."

"""Dutch legal amounts as versioned configuration (DOMAIN.md §1–2).

Legal amounts change every January and July, so they are data with an effective date
(``models/config/legal_nl.json``), never literals in code. Every answer that uses them
names the table version (:attr:`LegalTable.version`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class WikScale:
    """The WIK scale (Besluit vergoeding voor buitengerechtelijke incassokosten, art. 2)."""

    # (bracket width in cents or None = the rest, rate as an exact decimal: 0.15, not a float)
    brackets: tuple[tuple[int | None, Decimal], ...]
    minimum_cents: int
    maximum_cents: int
    recurring_small_claim_cap_cents: int | None
    recurring_small_claim_threshold_cents: int | None

    def costs_cents(self, principal_cents: int, *, recurring: bool = False) -> int:
        """Extrajudicial collection costs on ``principal_cents`` (excl. VAT), in cents.

        ``recurring`` applies the Wki cap for recurring claims under the threshold
        (EUR 140 for claims under EUR 266.67 since 1 Oct 2024).

        Exact arithmetic on whole cents and decimal rates, rounded half up to the cent
        (EUR 266.70 → 15 % = EUR 40.005 → EUR 40.01): float ``round()`` rounds half to
        even on inexact binary values and lost a cent on about 1 in 500 principals.
        """
        if principal_cents <= 0:
            raise ValueError(f"principal_cents must be positive; got {principal_cents}")
        remaining = principal_cents
        total = Decimal(0)
        for width, rate in self.brackets:
            part = remaining if width is None else min(remaining, width)
            total += part * rate
            remaining -= part
            if remaining <= 0:
                break
        cents = int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        costs = min(max(cents, self.minimum_cents), self.maximum_cents)
        if (
            recurring
            and self.recurring_small_claim_cap_cents is not None
            and self.recurring_small_claim_threshold_cents is not None
            and principal_cents < self.recurring_small_claim_threshold_cents
        ):
            costs = min(costs, self.recurring_small_claim_cap_cents)
        return costs


@dataclass(frozen=True)
class BailiffCosts:
    """Btag tariffs (excl. VAT) a consumer bears when a claim goes to court and judgment."""

    summons_cents: int  # dagvaarding (oproeping in een vorderingsprocedure)
    service_of_title_cents: int  # betekening van een titel (the judgment)

    @property
    def total_cents(self) -> int:
        return self.summons_cents + self.service_of_title_cents


@dataclass(frozen=True)
class LegalTable:
    """All legal amounts in force from :attr:`effective_from` until the next version."""

    version: str
    effective_from: date
    wik: WikScale
    statutory_interest_consumer_pct: float
    bijstandsnorm_incl_holiday_cents: dict[str, int]
    max_debt_scheme_months: int
    bailiff: BailiffCosts
    # amounts carried forward from an earlier version, not confirmed in a retrieved source
    unconfirmed: tuple[str, ...] = ()


def _parse(entry: dict[str, Any]) -> LegalTable:
    wik = entry["wik"]
    return LegalTable(
        version=entry["version"],
        effective_from=date.fromisoformat(entry["effective_from"]),
        wik=WikScale(
            # str() first: Decimal(0.15) would carry the float's binary error
            brackets=tuple((width, Decimal(str(rate))) for width, rate in wik["brackets"]),
            minimum_cents=int(wik["minimum_cents"]),
            maximum_cents=int(wik["maximum_cents"]),
            recurring_small_claim_cap_cents=wik["recurring_small_claim_cap_cents"],
            recurring_small_claim_threshold_cents=wik["recurring_small_claim_threshold_cents"],
        ),
        statutory_interest_consumer_pct=float(entry["statutory_interest_consumer_pct"]),
        bijstandsnorm_incl_holiday_cents=dict(entry["bijstandsnorm_incl_holiday_cents"]),
        max_debt_scheme_months=int(entry["max_debt_scheme_months"]),
        bailiff=BailiffCosts(
            summons_cents=int(entry["bailiff"]["summons_cents"]),
            service_of_title_cents=int(entry["bailiff"]["service_of_title_cents"]),
        ),
        unconfirmed=tuple(entry.get("_unconfirmed", ())),
    )


@lru_cache(maxsize=1)
def legal_tables() -> tuple[LegalTable, ...]:
    """All versions, oldest first."""
    text = resources.files("models").joinpath("config/legal_nl.json").read_text("utf-8")
    versions = [_parse(v) for v in json.loads(text)["versions"]]
    return tuple(sorted(versions, key=lambda t: t.effective_from))


def legal_table_on(day: date) -> LegalTable:
    """The legal table in force on ``day``."""
    in_force = [t for t in legal_tables() if t.effective_from <= day]
    if not in_force:
        raise ValueError(
            f"no legal table in force on {day}; earliest is {legal_tables()[0].effective_from}"
        )
    return in_force[-1]


def wik_costs_cents(principal_cents: int, on: date, *, recurring: bool = False) -> int:
    """WIK collection costs on ``principal_cents`` under the table in force ``on`` that day."""
    return legal_table_on(on).wik.costs_cents(principal_cents, recurring=recurring)


def months_past_newest_table(day: date) -> int:
    """Whole calendar months from the newest table's effective date to ``day`` (0 if before).

    Legal amounts change every January and July: an answer more than about 7 months past
    the newest table probably uses amounts that are no longer current.
    """
    newest = legal_tables()[-1].effective_from
    months = (day.year - newest.year) * 12 + day.month - newest.month
    if day.day < newest.day:
        months -= 1
    return max(months, 0)

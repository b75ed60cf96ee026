"""The world beside the real one: a simulated world's rates next to published Dutch figures.

:func:`world_rates` measures named rates (share of invoices reminded, at an agency,
failed direct debits, arrangements kept, ...) on any set of event tables: a simulation's
output folder, :meth:`features.store.EventStore.read_frames`, or
``SimulationResult.tables``. Only the event tables are read, never the hidden truth, so a
real creditor's store is measured the same way. :func:`calibration_table` sets them
beside the published figures of ``published_nl.json`` (each with its source and a note on
how comparable it is) and gives the difference and a verdict.

Run on a simulation folder::

    python -m training.simulation.calibration --events .tijdig/simulation --out table.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.events import PRODUCT_CODES, RESULT_CODES, STEP_CODES, EventArrays, to_day
from features.io import read_event_dir
from features.schemas import TABLES
from training.simulation.config import SimulationConfig
from training.simulation.result import TRUTH_DIR

__all__ = [
    "PUBLISHED_FILE",
    "CalibrationRow",
    "PublishedFigure",
    "WorldRate",
    "calibration_table",
    "day_after_last_event",
    "load_published",
    "period_end",
    "to_markdown",
    "world_rates",
    "world_rates_of_folder",
]

PUBLISHED_FILE = "published_nl.json"

#: An invoice counts for the per-invoice shares once it is due this long before the end:
#: long enough for every dunning step (the last, a pay-later bailiff, comes 180 days after
#: the due date), so a recent invoice does not count as "never reminded" too early.
MATURE_DAYS = 240
#: The window of the per-customer yearly rates (the published surveys ask about a year).
YEAR_DAYS = 365
#: Problematic debt: an invoice unpaid this long after its due date (CBS counts, among
#: others, arrears of three months or more).
PROBLEM_DEBT_DAYS = 90

_BNPL = PRODUCT_CODES["bnpl"]
_REMINDER = STEP_CODES["reminder"]
_LETTER = STEP_CODES["fourteen_day_letter"]
_AGENCY = STEP_CODES["agency"]
_BAILIFF = STEP_CODES["bailiff"]
_SUCCESS = RESULT_CODES["success"]
_FAILED = RESULT_CODES["failed"]
_KEPT, _BROKEN = 1, 2  # features.events.OUTCOME_CODES order: active, kept, broken


@dataclass(frozen=True)
class WorldRate:
    """One measured rate: its value, what it counts, and over how many units."""

    value: float
    definition: str
    denominator: int
    unit: str = "share"  # "share" (0..1) or "per_year"


@dataclass(frozen=True)
class PublishedFigure:
    """A published figure, with where it comes from and how it compares to a world rate."""

    id: str
    rate: str  # the world rate it is compared with (a key of world_rates)
    label: str
    value: float
    unit: str
    year: str
    source: str  # short: publisher and year
    citation: str  # publisher, page title, address
    comparability: str
    #: how the world value should sit against it given the definitions: "same", "lower"
    #: or "higher" (e.g. one creditor against all of a household's creditors: "lower")
    world_expected: str = "same"
    expected_reason: str = ""
    close_within: float = 1.5  # close when world / published is within this factor
    bound: str | None = None  # "at_most": the figure is an upper bound
    derivation: str = ""


@dataclass(frozen=True)
class CalibrationRow:
    rate: str
    label: str
    world: float
    published: float
    unit: str
    source: str
    citation: str
    difference: float  # world - published (a share: in share units, not percent)
    verdict: str


def period_end(folder: str | Path) -> date | None:
    """The exclusive end of the simulated period, from a simulation folder's metadata
    (``truth/simulation.json``); None for a folder without it (e.g. an export)."""
    meta = Path(folder) / TRUTH_DIR / "simulation.json"
    if not meta.exists():
        return None
    config = SimulationConfig.from_dict(json.loads(meta.read_text(encoding="utf-8"))["config"])
    return config.period()[1]


def _share(hits: np.ndarray, base: np.ndarray) -> tuple[float, int]:
    n = int(base.sum())
    return (float(hits[base].mean()) if n else float("nan")), n


def day_after_last_event(tables: Mapping[str, pd.DataFrame]) -> date:
    """The day after the latest date in the tables' point-in-time date columns."""
    last = [
        frame[TABLES[name][2]].max()
        for name, frame in tables.items()
        if name in TABLES and len(frame)
    ]
    known = [pd.Timestamp(d) for d in last if pd.notna(d)]
    if not known:
        raise ValueError("no events to measure: every table is empty")
    return max(known).date() + timedelta(days=1)


def world_rates(
    tables: Mapping[str, pd.DataFrame], *, end: date | None = None
) -> dict[str, WorldRate]:
    """The world's rates, measured on event tables (``table -> frame``).

    ``end`` is the exclusive end of the observed period (default: the day after the last
    event). Per-invoice shares count invoices due at least :data:`MATURE_DAYS` before it;
    per-customer yearly shares count customers known for the whole last year before it.
    """
    ev = EventArrays.from_frames(tables)
    end_day = to_day(end if end is not None else day_after_last_event(tables))
    inv, steps = ev.invoices, ev.steps

    reached = {}
    for code in (_REMINDER, _LETTER, _AGENCY, _BAILIFF):
        hit = np.zeros(len(inv), bool)
        on = steps["invoice"][(steps["step"] == code) & (steps["invoice"] >= 0)]
        hit[on] = True
        reached[code] = hit
    mature = inv["due_day"] <= end_day - MATURE_DAYS
    bnpl = inv["product"] == _BNPL
    regular = mature & ~bnpl
    pay_later = mature & bnpl
    rates: dict[str, WorldRate] = {}

    def put(name: str, hits: np.ndarray, base: np.ndarray, definition: str) -> None:
        value, n = _share(hits, base)
        rates[name] = WorldRate(value, definition, n)

    step_names = {
        _REMINDER: "a reminder",
        _LETTER: "the 14-day letter",
        _AGENCY: "the collection agency",
        _BAILIFF: "the bailiff",
    }
    for code, key in ((_REMINDER, "reminded"), (_LETTER, "at_letter"), (_AGENCY, "at_agency")):
        put(
            f"invoices_{key}",
            reached[code],
            regular,
            f"regular (not pay-later) invoices due >= {MATURE_DAYS} days before the end "
            f"that reached {step_names[code]}",
        )
        put(
            f"bnpl_{key}",
            reached[code],
            pay_later,
            f"pay-later invoices due >= {MATURE_DAYS} days before the end "
            f"that reached {step_names[code]}",
        )
    put(
        "invoices_at_bailiff",
        reached[_BAILIFF],
        regular,
        f"regular invoices due >= {MATURE_DAYS} days before the end that reached the bailiff",
    )
    put(
        "bnpl_agency_of_reminded",
        reached[_AGENCY],
        pay_later & reached[_REMINDER],
        "pay-later invoices at the agency, of those reminded (mature as above)",
    )
    put(
        "agency_to_bailiff",
        reached[_BAILIFF],
        mature & reached[_AGENCY],
        "invoices (any product) at the agency that went on to the bailiff (mature as above)",
    )

    result = ev.debits["result"]
    attempts = np.ones(len(result), bool)
    put(
        "direct_debits_returned",
        result != _SUCCESS,
        attempts,
        "direct-debit attempts (first tries and retries) failed or reversed (R-transactions)",
    )
    put(
        "direct_debits_failed",
        result == _FAILED,
        attempts,
        "direct-debit attempts (first tries and retries) failed (AM04/MS03)",
    )
    outcome = ev.arrangements["outcome"]
    put(
        "arrangements_kept",
        outcome == _KEPT,
        (outcome == _KEPT) | (outcome == _BROKEN),
        "payment arrangements that ended: kept (paid in full) rather than broken",
    )

    # per customer, over the last year
    year_start = end_day - YEAR_DAYS
    n = ev.n
    whole_year = ev.customers["created_day"] <= year_start

    def customers_with(cust: np.ndarray) -> np.ndarray:
        return np.bincount(cust, minlength=n) > 0

    in_year = (steps["day"] >= year_start) & (steps["day"] < end_day)
    put(
        "customers_reminded_12m",
        customers_with(steps["cust"][in_year & (steps["step"] == _REMINDER)]),
        whole_year,
        "customers known the whole last year with a reminder (any product) in that year",
    )
    due_in_year = (inv["due_day"] >= year_start) & (inv["due_day"] < end_day)
    late = inv["settled_day"] > inv["due_day"]
    put(
        "customers_paid_late_12m",
        customers_with(inv["cust"][due_in_year & late]),
        whole_year,
        "customers known the whole last year with an invoice due in that year paid after "
        "its due date (or not yet)",
    )
    arr_start = ev.arrangements["start_day"]
    started = (arr_start >= year_start) & (arr_start < end_day)
    put(
        "customers_arrangement_12m",
        customers_with(ev.arrangements["cust"][started]),
        whole_year,
        "customers known the whole last year who started a payment arrangement in that year",
    )

    # problematic debt: a point-in-time share, averaged over the month starts of the year
    month_starts = pd.date_range(
        pd.Timestamp("1970-01-01") + pd.Timedelta(days=year_start),
        pd.Timestamp("1970-01-01") + pd.Timedelta(days=end_day - 1),
        freq="MS",
    )
    shares, bases = [], []
    for t in (to_day(m) for m in month_starts):
        known = ev.customers["created_day"] <= t
        overdue = (inv["due_day"] <= t - PROBLEM_DEBT_DAYS) & (inv["settled_day"] >= t)
        share, base = _share(customers_with(inv["cust"][overdue]), known)
        if base:
            shares.append(share)
            bases.append(base)
    rates["customers_problem_debt"] = WorldRate(
        float(np.mean(shares)) if shares else float("nan"),
        f"customers with an invoice unpaid >= {PROBLEM_DEBT_DAYS} days after its due date, "
        "as a month starts (mean over the month starts of the last year)",
        int(np.mean(bases)) if bases else 0,
    )

    agency_in_year = in_year & (steps["step"] == _AGENCY)
    customers_year = int(whole_year.sum())
    agency_cases = int((agency_in_year & whole_year[steps["cust"]]).sum())
    rates["agency_cases_per_customer_year"] = WorldRate(
        agency_cases / customers_year if customers_year else float("nan"),
        "invoices handed to the agency in the last year, per customer known the whole year",
        customers_year,
        unit="per_year",
    )
    return rates


def world_rates_of_folder(folder: str | Path) -> dict[str, WorldRate]:
    """:func:`world_rates` of an event folder (a simulation's output or an export); the
    period's end from the simulation's metadata when the folder has it."""
    return world_rates(read_event_dir(folder), end=period_end(folder))


def load_published(path: str | Path | None = None) -> list[PublishedFigure]:
    """The published figures (default: the versioned ``published_nl.json`` beside this module)."""
    if path is None:
        text = resources.files("training.simulation").joinpath(PUBLISHED_FILE).read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [_figure(f) for f in json.loads(text)["figures"]]


def _figure(data: Mapping[str, Any]) -> PublishedFigure:
    source = data["source"]
    return PublishedFigure(
        id=data["id"],
        rate=data["rate"],
        label=data["label"],
        value=float(data["value"]),
        unit=data.get("unit", "share"),
        year=str(data["year"]),
        source=source["short"],
        citation=f"{source['publisher']}, \u201c{source['title']}\u201d, {source['url']}",
        comparability=data["comparability"],
        world_expected=data.get("world_expected", "same"),
        expected_reason=data.get("expected_reason", ""),
        close_within=float(data.get("close_within", 1.5)),
        bound=data.get("bound"),
        derivation=data.get("derivation", ""),
    )


def verdict(world: float, figure: PublishedFigure) -> str:
    """ "close", or "far: ..." saying by how much and whether the definitions explain it."""
    if math.isnan(world):
        return "no world value: the world has nothing to measure it on"
    if figure.bound == "at_most":
        if world <= figure.value:
            return "close (within the published upper bound)"
        return f"far: world is {world / figure.value:.1f}x the published upper bound"
    if world <= 0:
        return "far: the world has none"
    ratio = world / figure.value
    direction = "higher" if ratio > 1 else "lower"
    if 1 / figure.close_within <= ratio <= figure.close_within:
        if figure.world_expected not in ("same", direction):
            return (
                f"close in value, but {figure.world_expected} was expected "
                f"({figure.expected_reason}): the world is {direction} than it should be"
            )
        return "close"
    size = f"world is {ratio:.2g}x the published figure"
    if figure.world_expected == direction:
        return f"far: {size}, {direction} as expected ({figure.expected_reason})"
    return f"far: {size}; the definitions do not explain a {direction} world value"


def calibration_table(
    rates: Mapping[str, WorldRate], published: Sequence[PublishedFigure]
) -> list[CalibrationRow]:
    """One row per published figure: the world's rate beside it, difference and verdict.

    A figure whose rate the world does not measure gets NaN and says so.
    """
    rows = []
    for figure in published:
        rate = rates.get(figure.rate)
        world = rate.value if rate is not None else float("nan")
        rows.append(
            CalibrationRow(
                rate=figure.rate,
                label=figure.label,
                world=world,
                published=figure.value,
                unit=figure.unit,
                source=figure.source,
                citation=f"{figure.citation}; figure for {figure.year}",
                difference=world - figure.value,
                verdict=verdict(world, figure),
            )
        )
    return rows


def _fmt(value: float, unit: str, *, signed: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    sign = "+" if signed else ""
    if unit == "share":
        return f"{value * 100:{sign}.1f} pp" if signed else f"{value * 100:.1f} %"
    return f"{value:{sign}.3f}"


def to_markdown(rows: Sequence[CalibrationRow], rates: Mapping[str, WorldRate]) -> str:
    """The table as Markdown, its sources, then each world rate's definition and denominator."""
    lines = [
        "| rate | world | published | source | difference | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {r.label} (`{r.rate}`) | {_fmt(r.world, r.unit)} | {_fmt(r.published, r.unit)} "
            f"| {r.source} [{i}] | {_fmt(r.difference, r.unit, signed=True)} | {r.verdict} |"
        )
    lines += ["", "Sources:", ""]
    lines += [f"{i}. {r.citation}" for i, r in enumerate(rows, 1)]
    lines += ["", "| world rate | value | over | definition |", "|---|---|---|---|"]
    for name, rate in rates.items():
        lines.append(
            f"| `{name}` | {_fmt(rate.value, rate.unit)} | {rate.denominator:,} "
            f"| {rate.definition} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.simulation.calibration",
        description="A simulated world's rates beside published Dutch figures (Markdown).",
    )
    parser.add_argument(
        "--events",
        type=Path,
        default=Path(".tijdig/simulation"),
        help="event folder: a simulation's output (default .tijdig/simulation)",
    )
    parser.add_argument(
        "--published", type=Path, default=None, help=f"figures file (default {PUBLISHED_FILE})"
    )
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help="exclusive end of the period (default: from the simulation, else the last event)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown here")
    args = parser.parse_args(argv)
    frames = read_event_dir(args.events)
    end = args.end or period_end(args.events)
    rates = world_rates(frames, end=end)
    text = to_markdown(calibration_table(rates, load_published(args.published)), rates)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

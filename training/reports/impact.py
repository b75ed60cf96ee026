"""Impact: where invoices get paid and what collection costs the customers (seed article 001).

:func:`impact_report` measures, on any set of event tables (an event store, a simulation's
output folder, exported frames), per monthly invoice cohort and in total:

* the **stage outcome** of every invoice: paid on time, paid late before any step, paid
  after a reminder, after the 14-day letter, at the agency, at the bailiff, or still open;
  and the funnel of invoices that *reached* each step;
* the **collection costs on top of the principal** for the invoices handed to the agency:
  WIK by the statutory scale, statutory interest (both from ``models/config/legal_nl.json``
  through :mod:`models.legal`), the bailiff costs recorded on bailiff steps and any costs
  recorded on reminder or letter steps; per customer affected and per euro of principal;
* failed direct debits per 1,000 attempts; payment arrangements made and kept;
* pay-later (``bnpl``) orders and their outcome;
* optionally the same figures before and after a date (the day tijdig was adopted).

Debt-help referrals are not one of the event tables, so the report says they are not
recorded instead of guessing them.

Run on an event folder::

    python -m training.reports.impact --events .tijdig/simulation --out impact/
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.events import (
    NEVER,
    OUTCOME_CODES,
    PRODUCT_CODES,
    RESULT_CODES,
    STEP_CODES,
    EventArrays,
    from_day,
    month_of,
    to_day,
)
from features.io import read_event_dir
from features.schemas import ArrangementOutcome, CollectionStep, DebitResult, Product
from models.legal import LegalTable, legal_table_on, legal_tables
from training.reports.impact_model import (
    OUTCOMES,
    STEPS,
    STEPS_NOT_RECORDED,
    Arrangements,
    Costs,
    Debits,
    Figures,
    ImpactReport,
    Outcomes,
    headlines,
)
from training.simulation.calibration import MATURE_DAYS, day_after_last_event

__all__ = [
    "OUTCOMES",
    "STEPS",
    "Arrangements",
    "Costs",
    "Debits",
    "Figures",
    "ImpactReport",
    "Outcomes",
    "headlines",
    "impact_report",
    "log_to_mlflow",
    "main",
    "write_report",
]

_AGENCY = STEP_CODES[CollectionStep.AGENCY.value]
_BAILIFF = STEP_CODES[CollectionStep.BAILIFF.value]
_BNPL = PRODUCT_CODES[Product.BNPL.value]
_FAILED = RESULT_CODES[DebitResult.FAILED.value]
_REVERSED = RESULT_CODES[DebitResult.REVERSED.value]
_DAYS_PER_YEAR = 365


class _FrameSource(Protocol):
    def read_frames(self) -> dict[str, pd.DataFrame]: ...


# ---------------------------------------------------------------------------- measuring


def _legal_on(day: int) -> LegalTable:
    """The legal table in force on ``day``; before the first table, the first one."""
    return legal_table_on(max(from_day(day), legal_tables()[0].effective_from))


@dataclass(frozen=True)
class _PerInvoice:
    """Every figure of each invoice, so that a slice's figures are sums over a mask."""

    cust: np.ndarray
    amount: np.ndarray
    bnpl: np.ndarray
    outcome: np.ndarray  # index into OUTCOMES
    reached: np.ndarray  # (invoices, steps) bool
    in_collection: np.ndarray
    wik: np.ndarray
    interest: np.ndarray
    bailiff: np.ndarray
    other_steps: np.ndarray
    recorded_agency: np.ndarray


def _per_invoice(ev: EventArrays, end_day: int, versions: set[str]) -> _PerInvoice:
    inv, steps, pays = ev.invoices, ev.steps, ev.payments
    n = len(inv)
    settled, due = inv["settled_day"], inv["due_day"]
    on = steps["invoice"] >= 0
    st_inv, st_day, st_code = steps["invoice"][on], steps["day"][on], steps["step"][on]
    st_cost = steps["cost_cents"][on]

    reached = np.zeros((n, len(STEPS)), bool)
    reached[st_inv, st_code - 1] = True
    # a step dated the day the invoice was paid crossed the payment: it did not prompt it
    stage_at_paid = np.zeros(n, np.int64)
    before_paid = st_day < settled[st_inv]
    np.maximum.at(stage_at_paid, st_inv[before_paid], st_code[before_paid])
    outcome = np.where(stage_at_paid > 0, stage_at_paid + 1, 1)
    outcome = np.where(settled <= due, 0, outcome)
    outcome = np.where(settled >= NEVER, len(OUTCOMES) - 1, outcome)

    def cost_of(mask: np.ndarray) -> np.ndarray:
        return np.bincount(st_inv[mask], weights=st_cost[mask], minlength=n).astype(np.int64)

    handed_over = np.full(n, NEVER, np.int64)
    agency_rows = st_code == _AGENCY
    np.minimum.at(handed_over, st_inv[agency_rows], st_day[agency_rows])
    in_collection = handed_over < NEVER

    wik = np.zeros(n, np.int64)
    cache: dict[tuple[int, str], int] = {}
    for i in np.flatnonzero(in_collection):
        table = _legal_on(int(handed_over[i]))
        key = (int(inv["amount_cents"][i]), table.version)
        if key not in cache:
            cache[key] = table.wik.costs_cents(key[0])
            versions.add(table.version)
        wik[i] = cache[key]

    return _PerInvoice(
        cust=inv["cust"],
        amount=inv["amount_cents"],
        bnpl=inv["product"] == _BNPL,
        outcome=outcome,
        reached=reached,
        in_collection=in_collection,
        wik=wik,
        interest=_statutory_interest(
            inv["amount_cents"], due, in_collection, pays, end_day, versions
        ),
        bailiff=cost_of(st_code == _BAILIFF),
        other_steps=cost_of(st_code < _AGENCY),
        recorded_agency=cost_of(agency_rows),
    )


def _statutory_interest(
    amount: np.ndarray,
    due: np.ndarray,
    charged: np.ndarray,
    pays: Any,
    end_day: int,
    versions: set[str],
) -> np.ndarray:
    """Simple statutory interest (cents) on each ``charged`` invoice: every euro of the
    principal from the due date until the day it was paid, the unpaid rest until
    ``end_day``, at the consumer rate of the legal table in force each day."""
    n = len(amount)
    out = np.zeros(n, np.int64)
    if not charged.any():
        return out
    first = int(due[charged].min())
    days = np.arange(first, max(end_day, first + 1))
    rate = np.empty(len(days))
    for i, day in enumerate(
        days
    ):  # a few hundred days: one lookup each keeps the rule in one place
        table = _legal_on(int(day))
        rate[i] = table.statutory_interest_consumer_pct / 100 / _DAYS_PER_YEAR
        versions.add(table.version)
    accrued = np.r_[0.0, np.cumsum(rate)]  # accrued[k]: interest per cent over [first, first + k)

    def accrued_on(day: np.ndarray) -> np.ndarray:
        return accrued[np.clip(day - first, 0, len(days))]

    # payments count up to the principal, oldest first
    p = charged[np.maximum(pays["invoice"], 0)] & (pays["invoice"] >= 0)
    p_inv, p_day, p_amt = pays["invoice"][p], pays["day"][p], pays["amount_cents"][p]
    order = np.lexsort((p_day, p_inv))
    p_inv, p_day, p_amt = p_inv[order], p_day[order], p_amt[order]
    paid_before = np.cumsum(p_amt) - p_amt
    starts = np.r_[True, p_inv[1:] != p_inv[:-1]] if len(p_inv) else np.zeros(0, bool)
    first_of = np.maximum.accumulate(np.where(starts, np.arange(len(p_inv)), 0))
    paid_before = paid_before - paid_before[first_of]
    counted = np.clip(amount[p_inv] - paid_before, 0, p_amt)
    interest = np.zeros(n)
    np.add.at(
        interest,
        p_inv,
        counted * (accrued_on(np.maximum(p_day, due[p_inv])) - accrued_on(due[p_inv])),
    )
    rest = amount - np.bincount(p_inv, weights=counted, minlength=n).astype(np.int64)
    idx = np.flatnonzero(charged)
    interest[idx] += rest[idx] * (accrued_on(np.full(len(idx), end_day)) - accrued_on(due[idx]))
    out[charged] = np.rint(interest[charged]).astype(np.int64)
    return out


def _outcomes(per: _PerInvoice, mask: np.ndarray) -> Outcomes:
    counts = np.bincount(per.outcome[mask], minlength=len(OUTCOMES))
    return Outcomes(
        invoices=int(mask.sum()),
        customers=len(np.unique(per.cust[mask])),
        principal_cents=int(per.amount[mask].sum()),
        by_outcome={k: int(c) for k, c in zip(OUTCOMES, counts, strict=True)},
        reached={k: int(c) for k, c in zip(STEPS, per.reached[mask].sum(axis=0), strict=True)},
    )


def _costs(per: _PerInvoice, mask: np.ndarray) -> Costs:
    coll = mask & per.in_collection
    return Costs(
        invoices_in_collection=int(coll.sum()),
        customers_affected=len(np.unique(per.cust[coll])),
        principal_in_collection_cents=int(per.amount[coll].sum()),
        principal_invoiced_cents=int(per.amount[mask].sum()),
        wik_cents=int(per.wik[coll].sum()),
        interest_cents=int(per.interest[coll].sum()),
        bailiff_cents=int(per.bailiff[coll].sum()),
        other_step_costs_cents=int(per.other_steps[mask].sum()),
        recorded_agency_costs_cents=int(per.recorded_agency[coll].sum()),
    )


def _figures(
    label: str,
    per: _PerInvoice,
    ev: EventArrays,
    invoice_mask: np.ndarray,
    in_days: tuple[int, int],
    mature: bool,
) -> Figures:
    lo, hi = in_days
    result, deb_day = ev.debits["result"], ev.debits["day"]
    deb = (deb_day >= lo) & (deb_day < hi)
    arr_day, arr_outcome = ev.arrangements["start_day"], ev.arrangements["outcome"]
    arr = (arr_day >= lo) & (arr_day < hi)
    pay_later = invoice_mask & per.bnpl
    return Figures(
        label=label,
        invoices=_outcomes(per, invoice_mask),
        costs=_costs(per, invoice_mask),
        debits=Debits(
            attempts=int(deb.sum()),
            failed=int((deb & (result == _FAILED)).sum()),
            reversed=int((deb & (result == _REVERSED)).sum()),
        ),
        arrangements=Arrangements(
            made=int(arr.sum()),
            **{
                o.value: int((arr & (arr_outcome == OUTCOME_CODES[o.value])).sum())
                for o in ArrangementOutcome
            },
        ),
        pay_later=_outcomes(per, pay_later),
        pay_later_costs=_costs(per, pay_later),
        mature=mature,
    )


def _month_label(month: int) -> str:
    return f"{1970 + month // 12}-{month % 12 + 1:02d}"


def _month_start_day(month: int) -> int:
    return to_day(date(1970 + month // 12, month % 12 + 1, 1))


def _frames_of(source: Mapping[str, pd.DataFrame] | _FrameSource | str | Path) -> Any:
    if isinstance(source, str | Path):
        return read_event_dir(source)
    if isinstance(source, Mapping):
        return source
    return source.read_frames()


def impact_report(
    source: Mapping[str, pd.DataFrame] | _FrameSource | str | Path,
    *,
    since: date | None = None,
    until: date | None = None,
    split_at: date | None = None,
) -> ImpactReport:
    """The impact figures of ``source``: event tables (``table -> frame``), an
    :class:`~features.store.EventStore` (anything with ``read_frames()``) or an event folder.

    ``since`` (inclusive) and ``until`` (exclusive) bound the invoice cohorts (by issue
    date), debit attempts and arrangements (by start date) counted; outcomes are as known
    at the end of the data. ``split_at`` adds the figures before and from that day (the day
    tijdig was adopted). A source without invoices or without collection steps gives a
    report whose ``empty_reason`` says so; a source without collection steps gives the
    payment outcomes, debits and arrangements, with ``steps_not_recorded`` saying that
    stages and collection costs cannot be measured from it.
    """
    if since is not None and until is not None and until <= since:
        raise ValueError(f"until must be after since; got since={since}, until={until}")
    frames = _frames_of(source)
    ev = EventArrays.from_frames(frames)
    lo = to_day(since) if since is not None else -int(NEVER)
    hi = to_day(until) if until is not None else int(NEVER)
    issue = ev.invoices["issue_day"]
    counted = (issue >= lo) & (issue < hi)

    def empty(reason: str) -> ImpactReport:
        return ImpactReport(since, until, None, split_at, (), None, empty_reason=reason)

    if not counted.any():
        return empty("no invoices in the period: nothing to measure")
    # Payment outcomes need only invoices and payments; stages and costs need the steps.
    # A store without them (a bureau history, say) still gets what can be measured.
    steps_not_recorded = None if len(ev.steps) else STEPS_NOT_RECORDED
    end_day = to_day(day_after_last_event(frames))
    versions: set[str] = set()
    per = _per_invoice(ev, end_day, versions)
    due = ev.invoices["due_day"]
    months = month_of(issue)
    first_month, last_month = int(months[counted].min()), int(months[counted].max())
    start = since or from_day(_month_start_day(first_month))
    stop = until or from_day(end_day)  # debits and arrangements up to the end of the data
    span = (to_day(start), to_day(stop))
    last_month = max(last_month, int(month_of(span[1] - 1)))

    def mature(mask: np.ndarray) -> bool:
        return bool(not mask.any() or due[mask].max() <= end_day - MATURE_DAYS)

    total = _figures("total", per, ev, counted, span, mature(counted))
    monthly = []
    for m in range(first_month, last_month + 1):
        in_month = counted & (months == m)
        days = (max(span[0], _month_start_day(m)), min(span[1], _month_start_day(m + 1)))
        monthly.append(_figures(_month_label(m), per, ev, in_month, days, mature(in_month)))
    before = after = None
    if split_at is not None:
        cut = to_day(split_at)
        early = counted & (issue < cut)
        late = counted & (issue >= cut)
        before = _figures(
            f"before {split_at}", per, ev, early, (span[0], min(cut, span[1])), mature(early)
        )
        after = _figures(
            f"from {split_at}", per, ev, late, (max(cut, span[0]), span[1]), mature(late)
        )
    return ImpactReport(
        period_start=start,
        period_end=stop,
        observed_until=from_day(end_day),
        split_at=split_at,
        legal_versions=tuple(sorted(versions)),
        total=total,
        monthly=tuple(monthly),
        before=before,
        after=after,
        steps_not_recorded=steps_not_recorded,
    )


# ---------------------------------------------------------------------------- output


def write_report(report: ImpactReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``impact.json`` and ``impact.html`` into ``out_dir``; returns both paths."""
    from training.reports.impact_html import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "impact.json", out / "impact.html"
    json_path.write_text(report.to_json(), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def log_to_mlflow(
    report: ImpactReport, tracking_uri: str | None = None, *, experiment: str = "tijdig-impact"
) -> str:
    """Log the page and the JSON as artifacts (folder ``impact``) plus the headline numbers
    as metrics; into the active MLflow run if there is one, else a new run of
    ``experiment`` at ``tracking_uri``. Returns the run id."""
    import mlflow

    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    active = mlflow.active_run()
    if active is None:
        mlflow.set_experiment(experiment)
    with (
        mlflow.start_run(run_id=active.info.run_id if active else None) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for path in write_report(report, tmp):
            mlflow.log_artifact(str(path), artifact_path="impact")
        mlflow.log_metrics(_metrics(report))
        return str(run.info.run_id)


def _metrics(report: ImpactReport) -> dict[str, float]:
    t = report.total
    if t is None:
        return {}
    values = {
        "impact.paid_on_time": t.invoices.shares()["paid_on_time"],
        "impact.reached_agency": t.invoices.reached_shares()["agency"],
        "impact.costs_per_customer_affected_eur": (
            None
            if t.costs.per_customer_affected_cents is None
            else t.costs.per_customer_affected_cents / 100
        ),
        "impact.costs_per_euro_in_collection": t.costs.per_euro_in_collection,
        "impact.failed_debits_per_1000": t.debits.failed_per_1000,
        "impact.arrangements_kept": t.arrangements.kept_share,
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.reports.impact",
        description="Impact figures of an event folder: impact.html and impact.json.",
    )
    parser.add_argument(
        "--events", type=Path, default=Path(".tijdig/simulation"), help="event folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the two files")
    for name, what in (
        ("--since", "first issue day counted (inclusive)"),
        ("--until", "end of the period (exclusive)"),
        ("--split-at", "the day tijdig was adopted: figures before and from it"),
    ):
        parser.add_argument(name, type=date.fromisoformat, default=None, help=what)
    args = parser.parse_args(argv)
    report = impact_report(args.events, since=args.since, until=args.until, split_at=args.split_at)
    json_path, html_path = write_report(report, args.out)
    sys.stdout.write("\n".join(headlines(report)) + f"\n\nwrote {html_path} and {json_path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

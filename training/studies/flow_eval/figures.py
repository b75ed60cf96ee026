"""Each run's figures (from the impact report's own computation), the issue's goals and
each lever's share.

Every figure counts from the adoption day: invoices issued on or after it (their
outcomes, costs and stages as known at the end of the world), debit attempts and plans
dated on or after it. The collection costs, stages, failed debits and plans are
:func:`training.reports.impact.impact_report`'s on the run's event tables; the principal
recovered, the customers per step, debt-help referrals and pay-later decisions are
counted here from the same tables and the run's decision logs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from training.reports.impact import impact_report
from training.simulation import SimulationResult
from training.studies.flow_eval.levers import LEVERS, TIJDIG, TRADITIONAL, FlowRun, referrals

#: issue 22's goals for the whole flow against the traditional one
GOAL_COSTS_CUT_MIN = 0.50  # collection costs on top of the principal at least 50 % lower
GOAL_RECOVERED_POINTS_MAX_BELOW = 1.0  # principal recovered within 1 point of traditional
GOAL_BAILIFF_CUT_MIN = 0.40  # customers reaching a bailiff at least 40 % fewer

#: the figures whose change each lever's share is given for: (key, better when lower)
SHARE_FIGURES: tuple[tuple[str, bool], ...] = (
    ("collection_costs_eur", True),
    ("principal_recovered_pct", False),
    ("customers_reaching_bailiff", True),
    ("failed_debits_per_1000", True),
    ("plans_kept_share", False),
)


def _customers_at(steps: pd.DataFrame, invoices: set[str], step: str) -> int:
    rows = steps[(steps["step"] == step) & steps["invoice_id"].isin(invoices)]
    return int(rows["customer_id"].nunique())


def principal_recovered(tables: dict[str, pd.DataFrame], since: date) -> tuple[int, int]:
    """(principal due, principal paid) in cents of the invoices issued from ``since``:
    each invoice's payments by any route up to its amount, by the end of the data."""
    inv = tables["invoices"]
    inv = inv[inv["issue_date"] >= pd.Timestamp(since)]
    paid = tables["payments"].groupby("invoice_id")["amount_cents"].sum()
    got = paid.reindex(inv["invoice_id"]).fillna(0).to_numpy(np.int64)
    due = inv["amount_cents"].to_numpy(np.int64)
    return int(due.sum()), int(np.minimum(got, due).sum())


def run_figures(run: FlowRun, result: SimulationResult, since: date) -> dict[str, Any]:
    """The figures of one run (module doc)."""
    report = impact_report(result.tables, since=since)
    t = report.total
    if t is None:
        raise ValueError(f"nothing to measure from {since}: {report.empty_reason}")
    tables = result.tables
    inv = tables["invoices"]
    cohort = set(inv.loc[inv["issue_date"] >= pd.Timestamp(since), "invoice_id"])
    steps = tables["collection_steps"]
    due, paid = principal_recovered(tables, since)
    orders = run.orders.orders()
    orders = orders[orders["issue_date"] >= pd.Timestamp(since)]
    approved = int(orders["approved"].sum())
    calls = run.calls()
    truth = result.truth_customers
    costs = t.costs
    return {
        "levers": list(run.levers),
        "invoices": t.invoices.invoices,
        "principal_due_eur": due / 100,
        "principal_recovered_eur": paid / 100,
        "principal_recovered_pct": 100 * paid / due if due else None,
        "collection_costs_eur": costs.total_cents / 100,
        "wik_eur": costs.wik_cents / 100,
        "statutory_interest_eur": costs.interest_cents / 100,
        "bailiff_costs_eur": costs.bailiff_cents / 100,
        "collection_costs_per_euro_principal": costs.per_euro_invoiced,
        "collection_costs_per_euro_in_collection": costs.per_euro_in_collection,
        "customers_with_costs": costs.customers_affected,
        "customers_reaching_agency": _customers_at(steps, cohort, "agency"),
        "customers_reaching_bailiff": _customers_at(steps, cohort, "bailiff"),
        "paid_on_time_share": t.invoices.shares()["paid_on_time"],
        "debit_attempts": t.debits.attempts,
        "failed_debits_per_1000": t.debits.failed_per_1000,
        "plans_made": t.arrangements.made,
        "plans_kept": t.arrangements.kept,
        "plans_broken": t.arrangements.broken,
        "plans_active": t.arrangements.active,
        "plans_kept_share": t.arrangements.kept_share,
        "arrangement_requests": _requests_since(run, since),
        "debt_help_referrals": referrals(run.requests(), since),
        "pay_later_orders": len(orders),
        "pay_later_approved": approved,
        "pay_later_approved_share": approved / len(orders) if len(orders) else None,
        "pay_later_reached_agency": t.pay_later.reached["agency"],
        "pay_later_reached_agency_share": t.pay_later.reached_shares()["agency"],
        "calls": len(calls),
        "calls_reached": int(calls["reached"].sum()) if len(calls) else 0,
        "calls_plan_or_help": int((calls["response"] == "plan_or_help").sum()) if len(calls) else 0,
        "debit_days_changed": int(
            (truth["creditor_debit_day"] != truth["current_practice_debit_day"]).sum()
        ),
    }


def _requests_since(run: FlowRun, since: date) -> int:
    requests = run.requests()
    if requests.empty:
        return 0
    return int((requests["start_date"] >= pd.Timestamp(since)).sum())


def _row(
    key: str,
    goal: str,
    base: float,
    value: float,
    measured: float,
    target: float,
    *,
    at_least: bool,
) -> dict[str, Any]:
    met = measured >= target if at_least else measured <= target
    return {
        "key": key,
        "goal": goal,
        "traditional": base,
        "tijdig": value,
        "measured": measured,
        "target": target,
        "met": bool(met),
        # how far the measured value is from the target, in its units (0 when met)
        "gap": 0.0 if met else abs(target - measured),
    }


def _cut(base: float, value: float) -> float:
    return 1 - value / base if base else 0.0


def goal_rows(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 22's three goals, tijdig against traditional: measured, target, met, gap.
    Costs and bailiff: the cut as a share (0.5 = 50 % lower); principal: tijdig's share
    recovered minus traditional's, in points."""
    base, new = runs[TRADITIONAL], runs[TIJDIG]
    return [
        _row(
            "collection_costs_eur",
            "collection costs on top of principal at least 50 % lower",
            base["collection_costs_eur"],
            new["collection_costs_eur"],
            _cut(base["collection_costs_eur"], new["collection_costs_eur"]),
            GOAL_COSTS_CUT_MIN,
            at_least=True,
        ),
        _row(
            "principal_recovered_pct",
            "principal recovered at least the traditional flow's, within 1 point",
            base["principal_recovered_pct"],
            new["principal_recovered_pct"],
            new["principal_recovered_pct"] - base["principal_recovered_pct"],
            -GOAL_RECOVERED_POINTS_MAX_BELOW,
            at_least=True,
        ),
        _row(
            "customers_reaching_bailiff",
            "customers reaching a bailiff at least 40 % fewer",
            base["customers_reaching_bailiff"],
            new["customers_reaching_bailiff"],
            _cut(base["customers_reaching_bailiff"], new["customers_reaching_bailiff"]),
            GOAL_BAILIFF_CUT_MIN,
            at_least=True,
        ),
    ]


def lever_shares(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per figure: tijdig's change against traditional, and per lever the change it makes
    alone on top of traditional (``alone``, with its ``alone_share`` of tijdig's change)
    and, when the leave-one-out runs are there, what tijdig loses without it
    (``leave_one_out``: tijdig minus tijdig-without-the-lever). Interactions (a call
    offers tijdig's plan only when both levers are on) mean neither adds up to 100 %."""
    base, new = runs[TRADITIONAL], runs[TIJDIG]
    out: dict[str, dict[str, Any]] = {}
    for key, _lower_better in SHARE_FIGURES:
        if base.get(key) is None or new.get(key) is None:
            continue
        total = new[key] - base[key]
        per_lever: dict[str, Any] = {}
        for lever in LEVERS:
            alone = runs.get(f"{lever}_alone", {}).get(key)
            without = runs.get(f"without_{lever}", {}).get(key)
            entry: dict[str, Any] = {}
            if alone is not None:
                entry["alone"] = alone - base[key]
                entry["alone_share"] = (alone - base[key]) / total if total else None
            if without is not None:
                entry["leave_one_out"] = new[key] - without
                entry["leave_one_out_share"] = (new[key] - without) / total if total else None
            per_lever[lever] = entry
        out[key] = {"traditional": base[key], "tijdig": new[key], "change": total, **per_lever}
    return out

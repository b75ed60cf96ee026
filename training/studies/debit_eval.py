"""Evidence for the debit-date suggestion (issue 4), on the simulator's ground truth.

:func:`evaluate_debit_dates` runs, for one population:

1. **Income-pattern detection** at ``as_of`` (the middle of the period) against the
   simulator's truth: the confusion of pattern types, the share of ``monthly_day``
   customers whose pay day of month is found within ±1 day, and — for every pattern —
   the share whose next expected pay date is within ±1 day of the real next pay. Both
   for customers with at least 3 income receipts (target ≥ 95 %).
2. **Forward simulation**, same population and the same random streams: the debit-failure
   model is trained on debits before ``as_of`` only; suggestions are made as of
   ``as_of``; then the months from the first month the change can take effect (after the
   14-day pre-notification) are re-run with (a) the creditor's current days, (b) tijdig's
   suggested days and (c) "always the 1st". Reported: failed first debits per 1,000
   first collections, and all failed attempts (retries included) per 1,000 attempts.

Run: ``tijdig debit-eval --customers 20000``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.events import EventArrays, from_day, to_day
from features.income_timing import PATTERNS, detect_income_timing, expected_pay_days, first_attempts
from models.calendar import target2
from models.debit_date import DebitDatePolicy, suggest_debit_dates
from training.debit_failure import build_debit_rows, fit_debit_failure
from training.simulation.config import SimulationConfig
from training.simulation.policy import CollectionPolicy
from training.simulation.population import build_population
from training.simulation.result import simulate

RESULT_FAILED = "failed"


def _month_start(day: date, months: int) -> date:
    idx = day.year * 12 + day.month - 1 + months
    return date(idx // 12, idx % 12 + 1, 1)


def detection_accuracy(
    result: Any, population: Any, events: EventArrays, as_of: int
) -> dict[str, Any]:
    """Detection at ``as_of`` vs the simulator's truth (customers with >= 3 receipts)."""
    cal = target2()
    timing = detect_income_timing(events, as_of, cal, infer_from_debit_history=False)
    truth = result.truth_customers.set_index("customer_id").loc[events.customer_ids]
    true_pattern = truth["pay_pattern"].to_numpy()
    detected = timing.pattern_names()
    enough = timing.n_receipts >= 3
    confusion = pd.crosstab(
        pd.Series(true_pattern[enough], name="truth"), pd.Series(detected[enough], name="detected")
    )
    monthly = enough & (true_pattern == "monthly_day")
    dom_ok = (
        np.abs(timing.pay_day_of_month[monthly] - truth["pay_day_of_month"].to_numpy()[monthly])
        <= 1
    )

    # the real next pay after as_of - 1 from the simulator's income calendar
    start = to_day(population.calendar.start)
    pos = {cid: i for i, cid in enumerate(population.customer_ids.tolist())}
    pidx = np.array([pos[c] for c in events.customer_ids], dtype=np.int64)
    pay_abs = population.pay_day + start
    order = np.lexsort((pay_abs, population.pay_cust))
    pc, pd_ = population.pay_cust[order], pay_abs[order]
    real_next = np.full(population.n, np.nan)
    after = pd_ >= as_of
    firsts = np.r_[True, pc[after][1:] != pc[after][:-1]] if after.any() else np.zeros(0, bool)
    real_next[pc[after][firsts]] = pd_[after][firsts]
    real_next = real_next[pidx]
    _, predicted_next = expected_pay_days(
        timing, np.arange(events.n), np.full(events.n, as_of - 1), cal
    )
    next_ok = np.abs(predicted_next - real_next) <= 1
    per_pattern = {}
    for p in PATTERNS[:5]:
        sel = enough & (true_pattern == p)
        per_pattern[p] = {
            "customers": int(sel.sum()),
            "pattern_correct_share": float((detected[sel] == p).mean()) if sel.any() else None,
            "next_pay_within_1_day_share": float(next_ok[sel].mean()) if sel.any() else None,
        }
    regular = enough & np.isin(
        true_pattern, ["monthly_day", "last_working_day", "four_weekly", "weekly"]
    )
    return {
        "customers_with_3_plus_receipts": int(enough.sum()),
        "monthly_day_pay_day_within_1_day_share": float(dom_ok.mean()) if monthly.any() else None,
        "monthly_day_customers": int(monthly.sum()),
        "next_pay_within_1_day_share_regular_patterns": float(next_ok[regular].mean())
        if regular.any()
        else None,
        "pattern_accuracy": float((detected[enough] == true_pattern[enough]).mean())
        if enough.any()
        else None,
        "per_pattern": per_pattern,
        "confusion": {
            str(k): {str(c): int(v) for c, v in row.items()} for k, row in confusion.iterrows()
        },
    }


def _failures(result: Any, since: date, direct_debit: set[str]) -> dict[str, float]:
    deb = result.tables["debit_attempts"]
    deb = deb[deb["attempted_at"] >= pd.Timestamp(since)]
    deb = deb[deb["customer_id"].isin(direct_debit)]
    ev = EventArrays.from_frames({"debit_attempts": deb, "customers": result.tables["customers"]})
    first = first_attempts(ev)
    failed = (deb["result"] == RESULT_FAILED).to_numpy()
    order_ok = ev.debits["day"].size == len(deb)
    assert order_ok
    return {
        "first_collections": int(first.sum()),
        "failed_first_per_1000": float(1000 * failed[first].sum() / max(first.sum(), 1)),
        "attempts": len(deb),
        "failed_attempts_per_1000": float(1000 * failed.sum() / max(len(deb), 1)),
    }


def evaluate_debit_dates(
    config: SimulationConfig | None = None,
    *,
    as_of_months: int = 12,
    policy: DebitDatePolicy | None = None,
) -> dict[str, Any]:
    """Detection accuracy and the forward simulation comparison, as one dict."""
    config = config or SimulationConfig(n_customers=20_000, months=24, seed=42)
    policy = policy or DebitDatePolicy()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    population = build_population(config)
    base = simulate(config, population=population)
    timings["simulate_current_s"] = time.perf_counter() - t0
    start, _ = config.period()
    as_of_date = _month_start(start, as_of_months)
    as_of = to_day(as_of_date)
    events = EventArrays.from_frames(base.tables)

    detection = detection_accuracy(base, population, events, as_of)

    t = time.perf_counter()
    rows = build_debit_rows(events, until=as_of)
    cal_from = to_day(_month_start(as_of_date, -2))
    model = fit_debit_failure(
        rows.subset(rows.as_of < cal_from), rows.subset(rows.as_of >= cal_from)
    )
    timings["train_s"] = time.perf_counter() - t

    # the creditor knows its own current day: pass it (the population's current practice)
    pos = {cid: i for i, cid in enumerate(events.customer_ids.tolist())}
    pidx = np.array([pos[c] for c in population.customer_ids], dtype=np.int64)
    current = np.zeros(events.n, np.int64)
    current[pidx] = population.debit_day
    t = time.perf_counter()
    suggestions = suggest_debit_dates(events, as_of, model, current_days=current, policy=policy)
    timings["suggest_s"] = time.perf_counter() - t
    suggested = np.array([s.suggested_day for s in suggestions], dtype=np.int64)[pidx]
    changed = np.array([s.change for s in suggestions])[pidx]
    effective = _month_start(from_day(as_of + policy.pre_notification_days), 1)
    if from_day(as_of + policy.pre_notification_days).day == 1:
        effective = from_day(as_of + policy.pre_notification_days)

    t = time.perf_counter()
    moved = simulate(
        config,
        population=population,
        policy=CollectionPolicy().with_debit_days(
            suggested, effective_from=effective, name="tijdig"
        ),
    )
    first_day = simulate(
        config,
        population=population,
        policy=CollectionPolicy().with_debit_days(
            np.ones(population.n, np.int64), effective_from=effective, name="always_1st"
        ),
    )
    timings["simulate_alternatives_s"] = time.perf_counter() - t

    dd = set(population.customer_ids[population.method == 0].tolist())
    dd_changed = set(population.customer_ids[(population.method == 0) & changed].tolist())
    runs = {"current_day": base, "tijdig_suggested_day": moved, "always_1st": first_day}
    forward = {name: _failures(r, effective, dd) for name, r in runs.items()}
    forward_changed = {name: _failures(r, effective, dd_changed) for name, r in runs.items()}
    cur = forward["current_day"]["failed_first_per_1000"]
    sug = forward["tijdig_suggested_day"]["failed_first_per_1000"]
    return {
        "config": replace(config).to_dict(),
        "as_of": as_of_date.isoformat(),
        "effective_from": effective.isoformat(),
        "detection": detection,
        "model": {
            "kind": model.kind,
            **{k: v for k, v in model.metadata.items() if k != "split_dates"},
        },
        "suggestions": {
            "direct_debit_customers": len(dd),
            "changed": len(dd_changed),
            "changed_share": len(dd_changed) / max(len(dd), 1),
        },
        "forward_all_direct_debit": forward,
        "forward_changed_customers": forward_changed,
        "cut_vs_current": 1 - sug / cur if cur else None,
        "cut_always_1st_vs_current": 1 - forward["always_1st"]["failed_first_per_1000"] / cur
        if cur
        else None,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }

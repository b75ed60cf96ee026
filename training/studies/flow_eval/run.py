"""Evidence for issue 22 item 4: the whole flow with tijdig against the traditional one.

Protocol (``tijdig flow-eval``):

1. One evaluation population (``seed``), simulated for ``WARMUP_MONTHS`` months of
   history and then ``months`` months (default 24) from the **adoption day**. Up to the
   adoption day every run is the traditional flow, so every run shares that history
   (checked: ``shared_history``); the figures count from it.
2. tijdig's levers are built as each lever's own study builds them, with every model
   trained on a separate training world (another population, ``train_seed``, over the
   evaluation world's last 24 months, as bnpl-eval and targeting-eval train;
   :mod:`.training`): contact targeting by tijdig's probability at
   the default capacity, the suggested debit day, tijdig's plans (or a debt-help
   referral), tijdig's pay-later decisions.
3. Runs, all on the same population and the same per-customer random streams:
   ``traditional`` (current practice: fixed debit day, reminder → 14-day letter →
   agency → bailiff, "debt / 5" plans, pay-later accepted unless the customer has a claim
   at an agency, no calls), ``tijdig`` (all four levers), each lever alone on top of
   traditional (``<lever>_alone``) and, with ``leave_one_out``, tijdig without one lever
   (``without_<lever>``).
4. Per run (:mod:`.figures`): collection costs on top of the principal (WIK by the
   statutory scale, statutory interest, bailiff costs; total and per euro of principal),
   principal recovered by the end (% of the principal due), customers reaching an agency
   and a bailiff, failed debits per 1,000, plans made and kept, debt-help referrals,
   pay-later orders approved and reaching an agency, calls. Then issue 22's goals
   (tijdig against traditional) and each lever's share of tijdig's change.

Nothing in the simulator is tuned toward a goal: the world, its contact effects and the
current practice are the defaults every other study uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from training.simulation import (
    PopulationState,
    SimulationConfig,
    SimulationResult,
    build_population,
    simulate,
)
from training.simulation.config import DEFAULT_END_DATE, _add_months
from training.simulation.result import comparable
from training.studies.flow_eval.figures import goal_rows, lever_shares, run_figures
from training.studies.flow_eval.levers import TRADITIONAL, Levers, flow_run, run_names

WARMUP_MONTHS = 6


def eval_config(n_customers: int, months: int, seed: int) -> tuple[SimulationConfig, date]:
    """The evaluation world (``WARMUP_MONTHS`` + ``months``, ending on the default end
    date) and its adoption day."""
    config = SimulationConfig(
        n_customers=n_customers,
        months=WARMUP_MONTHS + months,
        seed=seed,
        end_date=DEFAULT_END_DATE,
    )
    return config, _add_months(config.period()[0], WARMUP_MONTHS)


def run_flows(
    config: SimulationConfig,
    population: PopulationState,
    levers: Levers | None,
    runs: dict[str, tuple[str, ...]],
    *,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, tuple[Any, SimulationResult]]:
    """Simulate every run of ``runs`` (name → levers on) on ``population``. Returns
    name → (:class:`~.levers.FlowRun`, result)."""
    out: dict[str, tuple[Any, SimulationResult]] = {}
    for name, on in runs.items():
        t0 = time.perf_counter()
        run = flow_run(name, on, levers)
        result = simulate(config, population=population, policy=run.policy)
        out[name] = (run, result)
        log(f"{name}: simulated in {time.perf_counter() - t0:.0f} s")
    return out


def shared_history(results: dict[str, SimulationResult], adoption: date) -> dict[str, int]:
    """Per run, the event rows dated before ``adoption`` that differ from the traditional
    run's (0 everywhere: every run is the traditional flow until the adoption day)."""
    import pandas as pd

    cut = pd.Timestamp(adoption)
    dated = {
        "invoices": "issue_date",
        "payments": "paid_at",
        "debit_attempts": "attempted_at",
        "collection_steps": "step_date",
        "arrangements": "start_date",
    }

    def early(result: SimulationResult) -> dict[str, pd.DataFrame]:
        named = comparable(result)
        out = {}
        for table, column in dated.items():
            df = named[table]
            df = df[df[column] < cut]
            if table == "arrangements":  # an early plan may end differently after adoption
                df = df.drop(columns=["outcome", "end_date"])
            out[table] = df
        return out

    base = early(results[TRADITIONAL])
    differ = {}
    for name, result in results.items():
        other = early(result)
        n = 0
        for table, left in base.items():
            both = left.merge(other[table], how="outer", on=list(left.columns), indicator=True)
            n += int((both["_merge"] != "both").sum())
        differ[name] = n
    return differ


def evaluate_runs(
    simulated: dict[str, tuple[Any, SimulationResult]], adoption: date
) -> dict[str, Any]:
    """Figures per run, the goals and the levers' shares."""
    figures = {
        name: run_figures(run, result, adoption) for name, (run, result) in simulated.items()
    }
    return {
        "runs": figures,
        "goals": goal_rows(figures),
        "shares": lever_shares(figures),
        "shared_history": shared_history({k: r for k, (_, r) in simulated.items()}, adoption),
    }


def run_flow_eval(
    n_customers: int = 5_000,
    months: int = 24,
    seed: int = 42,
    train_seed: int = 101,
    capacity_per_1000: float = 1.0,
    leave_one_out: bool = False,
    bundle_path: Path | None = None,
    out: Path | None = None,
    mlflow_uri: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole protocol (module doc); returns the report (also written to ``out``)."""
    from models.bundle import Bundle
    from training.studies.flow_eval.report import log_to_mlflow, write_report
    from training.studies.flow_eval.training import build_levers

    t0 = time.perf_counter()
    config, adoption = eval_config(n_customers, months, seed)
    capacity = max(1, round(capacity_per_1000 * n_customers / 1000))
    population = build_population(config)
    names = run_names(leave_one_out)
    log(f"seed {seed}: {n_customers:,} customers, adoption {adoption}, {len(names)} runs")
    simulated = run_flows(config, population, None, {TRADITIONAL: names.pop(TRADITIONAL)}, log=log)
    bundle = Bundle.load(bundle_path) if bundle_path is not None else None
    levers, trained = build_levers(
        n_customers,
        train_seed,
        adoption,
        simulated[TRADITIONAL][1],
        population,
        capacity,
        bundle=bundle,
        log=log,
    )
    simulated.update(run_flows(config, population, levers, names, log=log))
    report: dict[str, Any] = {
        "protocol": __doc__.split("\n\n", 1)[1] if __doc__ else "",
        "customers": n_customers,
        "seed": seed,
        "period": [d.isoformat() for d in config.period()],
        "adoption": adoption.isoformat(),
        "months_from_adoption": months,
        "levers": trained,
        "leave_one_out": leave_one_out,
        **evaluate_runs(simulated, adoption),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if out is not None:
        if bundle is None:  # a re-run (--leave-one-out, say) can take it with --bundle
            levers.bundle.save(out / "bundle")
        paths = write_report(report, out)
        log(f"wrote {', '.join(str(p) for p in paths)}")
    if mlflow_uri:
        log_to_mlflow(mlflow_uri, report)
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline: the goals, and tijdig's and traditional's main figures."""
    keys = (
        "collection_costs_eur",
        "principal_recovered_pct",
        "customers_reaching_bailiff",
        "failed_debits_per_1000",
        "plans_kept_share",
        "debt_help_referrals",
    )
    return {
        "goals": [
            {k: g[k] for k in ("goal", "measured", "target", "met", "gap")} for g in report["goals"]
        ],
        "runs": {
            name: {k: _round(figures[k]) for k in keys} for name, figures in report["runs"].items()
        },
    }


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def to_json(report: dict[str, Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, np.integer | np.floating):
            return value.item()
        return str(value)

    return json.dumps(report, indent=2, default=default)

"""The evidence studies behind the README's figures (:mod:`training.studies`):
`tijdig debit-eval`, `plan-eval`, `bnpl-eval`, `targeting-eval` and `flow-eval`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.checks import DataDir, console, training_settings

#: options every evidence study takes alike
StudyBundle = Annotated[Path | None, typer.Option(help="use this bundle instead of training one")]
StudyMlflowUri = Annotated[
    str | None, typer.Option(help="log to this MLflow tracking URI (default: the data dir's)")
]


def debit_eval(
    customers: Annotated[int, typer.Option(min=100, help="simulated customers")] = 20_000,
    months: Annotated[int, typer.Option(min=12, help="simulated months")] = 24,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 42,
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
) -> None:
    """Debit-date evidence: income-pattern detection and failed debits per 1,000 (current vs suggested vs the 1st)."""
    from training.simulation.config import SimulationConfig
    from training.studies.debit_eval import evaluate_debit_dates

    report = evaluate_debit_dates(SimulationConfig(n_customers=customers, months=months, seed=seed))
    text = json.dumps(report, indent=2, default=str)
    if out:
        out.write_text(text, encoding="utf-8")
    sys.stdout.write(text + "\n")


def plan_eval(
    customers: Annotated[
        int, typer.Option(min=100, help="simulated customers per population")
    ] = 20_000,
    months: Annotated[
        int,
        typer.Option(
            min=25,
            help="simulated months of the evaluation world: first requests need 24 months after them",
        ),
    ] = 48,
    train_months: Annotated[
        int, typer.Option(min=12, help="simulated months of the training world (A)")
    ] = 24,
    train_seed: Annotated[int, typer.Option(help="seed of the training simulation (A)")] = 101,
    eval_seed: Annotated[int, typer.Option(help="seed of the evaluation population (B)")] = 202,
    bundle: Annotated[
        Path | None, typer.Option(help="use this bundle instead of training on seed A")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="write plan_eval.json (and the bundle) here")
    ] = None,
    cost_weight: Annotated[
        list[float] | None,
        typer.Option(min=0.0, help="also run tijdig with this cost weight (repeatable)"),
    ] = None,
    pause_ask_rate: Annotated[
        list[float] | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="also run tijdig where customers ask for the plan's pause with this "
            "probability (repeatable)",
        ),
    ] = None,
) -> None:
    """Payment-plan evidence: tijdig's plans vs debt/5 vs the largest agreed amount (referrals, kept, repaid and costs over 24 months)."""
    from training.studies.plan_eval import run_plan_eval

    report = run_plan_eval(
        n_customers=customers,
        months=months,
        train_months=train_months,
        train_seed=train_seed,
        eval_seed=eval_seed,
        bundle_path=bundle,
        out=out,
        log=console.print,
        cost_weights=tuple(cost_weight or ()),
        pause_ask_rates=tuple(pause_ask_rate or ()),
    )
    console.print_json(json.dumps(report, default=str))


def bnpl_eval(
    customers: Annotated[
        int, typer.Option(min=500, help="simulated customers per population")
    ] = 20_000,
    months: Annotated[int, typer.Option(min=12, help="simulated months")] = 24,
    train_seed: Annotated[int, typer.Option(help="seed of the training population")] = 101,
    eval_seed: Annotated[int, typer.Option(help="seed of the evaluation population")] = 42,
    bundle: StudyBundle = None,
    out: Annotated[
        Path | None, typer.Option(help="write bnpl_eval.json and the trade-off plot here")
    ] = None,
    closed_loop: Annotated[
        bool,
        typer.Option(
            "--closed-loop/--no-closed-loop",
            help="also simulate the population forward with tijdig deciding in the loop",
        ),
    ] = True,
    adjustment: Annotated[
        bool,
        typer.Option(
            "--adjustment/--no-adjustment",
            help="also train the pay-later adjustment on a closed loop of the training "
            "population and report every figure with it",
        ),
    ] = True,
    adjustment_seed: Annotated[
        int | None,
        typer.Option(
            help="seed of the adjustment's closed-loop world (default 7: neither the "
            "training nor the evaluated population)"
        ),
    ] = None,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(
            help="log the report and the curve to this MLflow tracking URI "
            "(default: the data dir's)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Pay-later evidence: approval rate vs orders ending in collection, tijdig vs 'approve all < EUR 1,000'."""
    from training.studies.bnpl_eval.report import summary
    from training.studies.bnpl_eval.run import run_bnpl_eval

    report = run_bnpl_eval(
        customers,
        months,
        train_seed,
        eval_seed,
        bundle,
        out,
        mlflow_uri or training_settings(data_dir).mlflow_tracking_uri,
        log=console.print,
        closed_loop=closed_loop,
        adjustment=adjustment,
        adjustment_seed=adjustment_seed,
    )
    console.print_json(json.dumps(summary(report), default=str))


def targeting_eval(
    customers: Annotated[int, typer.Option(min=500, help="simulated customers")] = 5_000,
    months: Annotated[
        int, typer.Option(min=18, help="simulated months (6 warm-up, 6 pilot, then the calls)")
    ] = 24,
    train_seed: Annotated[int, typer.Option(help="seed of the training population")] = 101,
    eval_seed: Annotated[int, typer.Option(help="seed of the evaluation population")] = 42,
    capacity_per_1000: Annotated[
        float, typer.Option(min=0.01, help="calls a business day per 1,000 customers")
    ] = 1.0,
    scale: Annotated[
        list[float] | None,
        typer.Option(min=0.0, help="effect-size scale to run (repeatable; default 0.5 1 1.5)"),
    ] = None,
    pilot_share: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=0.99,
            help="share of the pilot's candidate episodes called (the rest: control)",
        ),
    ] = 0.4,
    offer: Annotated[
        str,
        typer.Option(
            help="the plan a call offers: debt_over_5 (today's) or tijdig (affordable plan "
            "or debt-help referral; trains the plan model too)"
        ),
    ] = "debt_over_5",
    bundle: StudyBundle = None,
    out: Annotated[
        Path | None, typer.Option(help="write targeting_eval.json and the plot here")
    ] = None,
    mlflow_uri: StudyMlflowUri = None,
    data_dir: DataDir = None,
) -> None:
    """Contact-targeting evidence: agency hand-overs prevented per 100 calls, by tijdig's probability, its uplift estimate, the second-reminder rule and at random."""
    from training.studies.targeting_eval.run import SCALES, run_targeting_eval, summary

    report = run_targeting_eval(
        n_customers=customers,
        months=months,
        train_seed=train_seed,
        eval_seed=eval_seed,
        capacity_per_1000=capacity_per_1000,
        scales=tuple(scale or SCALES),
        pilot_share=pilot_share,
        offer=offer,
        bundle_path=bundle,
        out=out,
        mlflow_uri=mlflow_uri or training_settings(data_dir).mlflow_tracking_uri,
        log=console.print,
    )
    console.print_json(json.dumps(summary(report), default=str))


def flow_eval(
    customers: Annotated[int, typer.Option(min=500, help="simulated customers")] = 5_000,
    months: Annotated[
        int, typer.Option(min=6, help="simulated months from the adoption day (after 6 of history)")
    ] = 24,
    seed: Annotated[int, typer.Option(help="seed of the evaluation population")] = 42,
    train_seed: Annotated[int, typer.Option(help="seed of the training population")] = 101,
    capacity_per_1000: Annotated[
        float, typer.Option(min=0.01, help="calls a business day per 1,000 customers")
    ] = 1.0,
    leave_one_out: Annotated[
        bool,
        typer.Option(
            "--leave-one-out/--no-leave-one-out",
            help="also run tijdig without each lever (4 more runs)",
        ),
    ] = False,
    bundle: StudyBundle = None,
    out: Annotated[
        Path | None, typer.Option(help="write flow_eval.json and flow_eval.md here")
    ] = None,
    mlflow_uri: StudyMlflowUri = None,
    data_dir: DataDir = None,
) -> None:
    """Whole-flow evidence: tijdig's four levers together, and each alone, against the traditional flow (costs, principal recovered, bailiff, failed debits, plans)."""
    from training.studies.flow_eval.run import run_flow_eval, summary

    report = run_flow_eval(
        n_customers=customers,
        months=months,
        seed=seed,
        train_seed=train_seed,
        capacity_per_1000=capacity_per_1000,
        leave_one_out=leave_one_out,
        bundle_path=bundle,
        out=out,
        mlflow_uri=mlflow_uri or training_settings(data_dir).mlflow_tracking_uri,
        log=console.print,
    )
    console.print_json(json.dumps(summary(report), default=str))

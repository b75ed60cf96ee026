"""``make evidence``: every simulated figure the README quotes, re-measured in one run.

    python -m benchmarks.evidence [--only quality,debit,plans,bnpl,calibration]
                                  [--seeds 42,1,2,3] [--customers 20000] [--work DIR]

Each part writes its report under ``benchmarks/results/`` with the commit and the time
it was measured at, so a README figure can name both:

- ``quality``: model quality and the oracle gaps, one simulated world per seed
  (what ``tijdig simulate --seed S && tijdig ingest && tijdig train`` does) →
  ``evidence/model_quality.json``;
- ``debit``: ``tijdig debit-eval`` → ``evidence/debit_eval.json``;
- ``plans``: ``tijdig plan-eval`` → ``plan/plan_eval.json``;
- ``bnpl``: ``tijdig bnpl-eval`` (closed loop and replay) → ``bnpl/bnpl_eval.json``;
- ``calibration``: the default world's rates beside published Dutch figures →
  ``evidence/calibration.md``.

Long (about an hour on 2 cores at 20,000 customers): never part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, code_version, now_iso

RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("quality", "debit", "plans", "bnpl", "calibration")
#: the models of the quality table, in the README's order
QUALITY_MODELS = (
    "model",
    "logistic_regression",
    "rule_second_reminder",
    "oracle",
    "oracle_observable",
)


#: the commit measured, read once at start: the code a long run imported
CODE = code_version()


def _stamp(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "measured_at": now_iso(),
        "code": CODE,
        "seconds": round(seconds, 1),
        **report,
    }


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}", flush=True)


def simulated_world(work: Path, seed: int, customers: int) -> Path:
    """Simulate seed ``seed`` into ``work`` (a fresh data dir) and ingest it; returns the
    data dir. The same steps as ``tijdig simulate`` and ``tijdig ingest``."""
    from training.bootstrap import ingest_folder, simulate_world
    from training.settings import TrainingSettings
    from training.simulation import SimulationConfig

    if work.exists():
        shutil.rmtree(work)
    settings = TrainingSettings(data_dir=work)
    simulate_world(SimulationConfig(n_customers=customers, seed=seed), settings.simulation_dir)
    ingest_folder(settings.simulation_dir, settings)
    return work


def model_quality(work: Path, seeds: list[int], customers: int) -> dict[str, Any]:
    """Out-of-time metrics of tijdig, its baselines and both oracles per seed, with the gap
    of the model to each oracle (ROC AUC)."""
    from training.pipeline import run_training
    from training.registry import gate_as_dict
    from training.settings import TrainingSettings

    per_seed: dict[str, Any] = {}
    for seed in seeds:
        data_dir = simulated_world(work / f"seed-{seed}", seed, customers)
        settings = TrainingSettings(data_dir=data_dir)
        result = run_training(settings, truth_dir=settings.simulation_dir)
        metrics = {m: result.candidate.metrics[m] for m in QUALITY_MODELS}
        roc = {m: metrics[m]["roc_auc"] for m in QUALITY_MODELS}
        per_seed[str(seed)] = {
            "metrics": metrics,
            "components": {
                name: result.candidate.metrics[name]
                for name in result.candidate.components
                if name in result.candidate.metrics
            },
            "validation_rows": len(result.candidate.validation_y),
            "gate": gate_as_dict(result.gate),
            "fairness": result.candidate.bundle.metadata.get("fairness"),
            "gap_to_oracle": roc["oracle"] - roc["model"],
            "gap_to_observable_oracle": roc["oracle_observable"] - roc["model"],
        }
        print(
            f"seed {seed}: model {roc['model']:.4f}, oracle {roc['oracle']:.4f}, "
            f"gap {roc['oracle'] - roc['model']:.4f}",
            flush=True,
        )
    return {"customers": customers, "seeds": per_seed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.evidence", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}"
    )
    parser.add_argument("--seeds", default="42,1,2,3", help="seeds of the quality worlds")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--work", type=Path, default=ROOT / ".tijdig-evidence", help="scratch data dirs"
    )
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {PARTS}")

    for part in parts:
        started = time.perf_counter()
        print(f"== {part}", flush=True)
        if part == "quality":
            seeds = [int(s) for s in args.seeds.split(",")]
            report = model_quality(args.work / "quality", seeds, args.customers)
            _write(
                RESULTS / "evidence" / "model_quality.json",
                _stamp(report, time.perf_counter() - started),
            )
        elif part == "debit":
            from training.simulation import SimulationConfig
            from training.studies.debit_eval import evaluate_debit_dates

            report = evaluate_debit_dates(SimulationConfig(n_customers=args.customers))
            _write(
                RESULTS / "evidence" / "debit_eval.json",
                _stamp(report, time.perf_counter() - started),
            )
        elif part == "plans":
            from training.studies.plan_eval import run_plan_eval

            out = RESULTS / "plan"
            report = run_plan_eval(n_customers=args.customers, out=out, log=print)
            _write(out / "plan_eval.json", _stamp(report, time.perf_counter() - started))
        elif part == "bnpl":
            from training.studies.bnpl_eval.run import run_bnpl_eval

            out = RESULTS / "bnpl"
            report = run_bnpl_eval(n_customers=args.customers, out=out)
            _write(out / "bnpl_eval.json", _stamp(report, time.perf_counter() - started))
        elif part == "calibration":
            from training.simulation.calibration import (
                calibration_table,
                load_published,
                to_markdown,
                world_rates_of_folder,
            )

            data_dir = simulated_world(args.work / "calibration", 42, args.customers)
            rates = world_rates_of_folder(data_dir / "simulation")
            text = to_markdown(calibration_table(rates, load_published()), rates)
            path = RESULTS / "evidence" / "calibration.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            stamp = f"Measured {now_iso()} at {CODE} (seed 42, {args.customers:,} customers).\n\n"
            path.write_text(stamp + text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

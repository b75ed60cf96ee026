"""Evidence for the pay-later policy: approval rate vs orders that end in collection.

Protocol (one run):

1. Train the early-warning model on one simulated population (seed A) — or take a
   bundle — so the evaluation population is never seen in training.
2. Simulate another population (seed B) forward under the naive policy "approve every
   pay-later order under EUR 1,000", so every order's outcome is observed.
3. Replay tijdig's decision for every order placed after the warm-up: features as of
   the order day (point in time: the order itself and everything after it unseen), the
   model's probability, the open-collection-case flag, the policy of the bundle.
4. Compare, on the same orders: approval rate and the share of approved orders whose
   invoice reached a collection agency. Sweep the risk cut-off for the trade-off curve.

An order tijdig declines is simply not lent; its outcome under approval is what the
naive run observed. Knock-on effects of a decline (less debt, fewer later arrears) are
not credited to tijdig, so the figures are conservative.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.build import build_features
from features.events import EventArrays, to_day
from features.labels import LabelConfig
from models.bnpl import AgeCheck, BnplPolicy, decide, open_collection_cases
from models.bundle import Bundle
from training.dataset import build_snapshots, monthly_as_of_dates
from training.simulation.policy import BnplRequest, CollectionPolicy
from training.simulator import SimulationConfig, simulate
from training.train import train_candidate

NAIVE_MAX_ORDER_CENTS = 100_000
WARMUP_MONTHS = 6
CUTOFFS = (0.02, 0.03, 0.05, 0.07, 0.09, 0.12, 0.15, 0.2, 0.3, 0.5, 1.01)


def approve_under_1000(request: BnplRequest) -> np.ndarray:
    """The naive policy: every pay-later order under EUR 1,000."""
    return request.amount_cents < NAIVE_MAX_ORDER_CENTS


def train_bundle(n_customers: int, months: int, seed: int) -> Bundle:
    result = simulate(SimulationConfig(n_customers=n_customers, months=months, seed=seed))
    events = EventArrays.from_frames(result.tables)
    labels = LabelConfig()
    snaps = build_snapshots(events, monthly_as_of_dates(events, labels), labels)
    return train_candidate(events, snaps, labels).bundle


def order_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every pay-later order with its outcome: did its invoice reach a collection agency?"""
    invoices = tables["invoices"]
    orders = invoices[invoices["product"] == "bnpl"][
        ["invoice_id", "customer_id", "issue_date", "amount_cents"]
    ]
    steps = tables["collection_steps"]
    at_agency = set(steps.loc[steps["step"].isin(["agency", "bailiff"]), "invoice_id"])
    orders = orders.assign(collection=orders["invoice_id"].isin(at_agency))
    return orders.reset_index(drop=True)


def order_features(events: EventArrays, orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Features and open-case flags as of each order's day (point in time).

    A customer may order many times; round k takes every customer's k-th order, so each
    round is one columnar call with a per-customer as_of.
    """
    position = {cid: i for i, cid in enumerate(events.customer_ids.tolist())}
    cust = orders["customer_id"].map(position).to_numpy()
    day = np.array([to_day(d) for d in orders["issue_date"]])
    rank = orders.groupby("customer_id").cumcount().to_numpy()
    X = np.empty((len(orders), 0))
    cases = np.zeros(len(orders), dtype=bool)
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        rows = np.flatnonzero(rank == k)
        as_of = np.full(events.n, day.min(), dtype=np.int64)
        as_of[cust[rows]] = day[rows]
        Xk = build_features(events, as_of)
        if X.shape[1] == 0:
            X = np.full((len(orders), Xk.shape[1]), np.nan)
        X[rows] = Xk[cust[rows]]
        cases[rows] = open_collection_cases(events, as_of)[cust[rows]]
    return X, cases


def evaluate_policy(
    policy: BnplPolicy,
    orders: pd.DataFrame,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    declines: dict[str, dict[str, float]] | None = None,
) -> dict[str, float]:
    """Approval and collection rates of ``policy`` on the orders. With ``declines`` given,
    it is filled per decline reason: the share of orders it declines, the share it alone
    declines, and how often those orders reached an agency under the naive run."""
    offer = np.zeros(len(orders), dtype=bool)
    collection = orders["collection"].to_numpy()
    by_code: dict[str, list[int]] = {}
    alone: dict[str, int] = {}
    for i, (amount, issued) in enumerate(
        zip(orders["amount_cents"], orders["issue_date"], strict=True)
    ):
        born = date(int(birth_years[i]), 7, 1) if np.isfinite(birth_years[i]) else None
        d = decide(
            policy,
            order_eur=amount / 100,
            currency="EUR",
            age=AgeCheck(verified=born is not None, birth_date=born, method="simulated"),
            on=issued.date(),
            features=X[i],
            probability=float(p[i]),
            open_case=bool(cases[i]),
        )
        offer[i] = d.offer
        if declines is not None:
            codes = [r.code.value for r in d.reasons if r.declines]
            for code in codes:
                by_code.setdefault(code, []).append(i)
            if len(codes) == 1:
                alone[codes[0]] = alone.get(codes[0], 0) + 1
    if declines is not None:
        n = max(len(orders), 1)
        for code, rows in sorted(by_code.items(), key=lambda kv: -len(kv[1])):
            declines[code] = {
                "declined_share": len(rows) / n,
                "declined_alone_share": alone.get(code, 0) / n,
                "collection_rate_declined": float(collection[rows].mean()),
            }
    return _rates(offer, collection)


def _rates(approved: np.ndarray, collection: np.ndarray) -> dict[str, float]:
    n = len(approved)
    return {
        "orders": float(n),
        "approved": float(approved.sum()),
        "approval_rate": float(approved.mean()) if n else float("nan"),
        "collection_rate_approved": float(collection[approved].mean()) if approved.any() else 0.0,
        "approved_to_collection": float(collection[approved].sum()),
    }


def run_bnpl_eval(
    n_customers: int = 20_000,
    months: int = 24,
    train_seed: int = 101,
    eval_seed: int = 42,
    bundle_path: Path | None = None,
    out: Path | None = None,
    mlflow_uri: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    if bundle_path is not None:
        bundle = Bundle.load(bundle_path)
        log(f"bundle {bundle.version} from {bundle_path}")
    else:
        log(f"training the risk model on seed {train_seed} ({n_customers:,} customers)")
        bundle = train_bundle(n_customers, months, train_seed)
    log(f"simulating seed {eval_seed} under 'approve every order under EUR 1,000'")
    config = SimulationConfig(n_customers=n_customers, months=months, seed=eval_seed)
    result = simulate(
        config,
        policy=replace(
            CollectionPolicy.current_practice(),
            approve_bnpl=approve_under_1000,
            name="approve_under_1000",
        ),
    )
    events = EventArrays.from_frames(result.tables)
    start = pd.Timestamp(config.period()[0]) + pd.DateOffset(months=WARMUP_MONTHS)
    orders = order_table(result.tables)
    orders = orders[orders["issue_date"] >= start].reset_index(drop=True)
    log(f"{len(orders):,} orders after the warm-up; features as of each order day")
    X, cases = order_features(events, orders)
    p = bundle.predict_proba(X)
    birth = result.tables["customers"].set_index("customer_id")["birth_year"].astype("float64")
    birth_years = orders["customer_id"].map(birth).to_numpy(dtype=np.float64)

    naive = _rates(
        orders["amount_cents"].to_numpy() < NAIVE_MAX_ORDER_CENTS, orders["collection"].to_numpy()
    )
    declines: dict[str, dict[str, float]] = {}
    configured = evaluate_policy(bundle.bnpl_policy, orders, X, p, cases, birth_years, declines)
    rule_declines: dict[str, dict[str, float]] = {}
    evaluate_policy(
        bundle.bnpl_policy.with_cutoff(0.999), orders, X, p, cases, birth_years, rule_declines
    )
    curve = []
    for cutoff in CUTOFFS:
        r = evaluate_policy(
            bundle.bnpl_policy.with_cutoff(min(cutoff, 0.999)), orders, X, p, cases, birth_years
        )
        curve.append({"cutoff": cutoff, **r})
    # The same orders ranked by the model alone (no hard rules): the whole range up to the
    # naive approval rate, to show what is possible within 5 points of it.
    collection = orders["collection"].to_numpy()
    risk_only = []
    for share in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4):
        threshold = np.quantile(p, 1 - share) if share else np.inf
        risk_only.append({"declined_share": share, **_rates(p < threshold, collection)})
    perfect = min(1.0, 0.05 * naive["orders"] / max(naive["approved_to_collection"], 1))
    eligible = [c for c in curve if c["approval_rate"] >= naive["approval_rate"] - 0.05]
    best = min(eligible, key=lambda c: c["collection_rate_approved"]) if eligible else None
    report: dict[str, Any] = {
        "protocol": __doc__.split("\n\n")[1] if __doc__ else "",
        "customers": n_customers,
        "train_seed": train_seed,
        "eval_seed": eval_seed,
        "model_version": bundle.version,
        "policy_version": bundle.bnpl_policy.version,
        "naive_approve_under_1000": naive,
        "tijdig_configured_policy": {"cutoff": bundle.bnpl_policy.risk_cutoff, **configured},
        "tijdig_best_within_5_points": best,
        # why orders are declined: by the configured policy, and by the rules alone (no
        # risk cut-off) - the floor under any approval rate the policy can reach
        "declines_configured": declines,
        "declines_rules_only": rule_declines,
        "curve": curve,
        "risk_only_curve": risk_only,
        "risk_only_at_95pct_approval_reduction": 1
        - risk_only[2]["collection_rate_approved"] / naive["collection_rate_approved"],
        "perfect_foresight_at_95pct_approval_reduction": perfect,
    }
    for name, point in (("configured", configured), ("best", best)):
        if point:
            report[f"reduction_vs_naive_{name}"] = (
                1 - point["collection_rate_approved"] / naive["collection_rate_approved"]
            )
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bnpl_eval.json").write_text(json.dumps(report, indent=2, default=str))
        plot = _plot(curve, naive, out / "bnpl_tradeoff.png", risk_only)
        bundle.save(out / "bundle")
        log(f"wrote {out / 'bnpl_eval.json'} and {plot}")
    if mlflow_uri:
        _log_mlflow(mlflow_uri, report, curve, naive)
    return report


def _plot(
    curve: list[dict[str, float]],
    naive: dict[str, float],
    path: Path,
    risk_only: list[dict[str, float]] | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(
        [c["approval_rate"] for c in curve],
        [c["collection_rate_approved"] for c in curve],
        "o-",
        label="tijdig (cut-offs)",
    )
    for c in curve:
        ax.annotate(
            f"{c['cutoff']:.2f}", (c["approval_rate"], c["collection_rate_approved"]), fontsize=7
        )
    if risk_only:
        ax.plot(
            [c["approval_rate"] for c in risk_only],
            [c["collection_rate_approved"] for c in risk_only],
            "^--",
            color="grey",
            label="model ranking only (no hard rules)",
        )
    ax.plot(
        [naive["approval_rate"]],
        [naive["collection_rate_approved"]],
        "rs",
        label="approve all < EUR 1,000",
    )
    ax.set(
        xlabel="approval rate",
        ylabel="approved orders ending in collection",
        title="Pay-later: approval vs collection",
    )
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _log_mlflow(
    uri: str, report: dict[str, Any], curve: list[dict[str, float]], naive: dict[str, float]
) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tijdig-bnpl-policy")
    with mlflow.start_run(), tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(
            {
                "customers": report["customers"],
                "eval_seed": report["eval_seed"],
                "policy_version": report["policy_version"],
                "model_version": report["model_version"],
            }
        )
        mlflow.log_metrics({f"naive.{k}": v for k, v in naive.items()})
        mlflow.log_metrics(
            {f"tijdig.{k}": v for k, v in report["tijdig_configured_policy"].items()}
        )
        for step, c in enumerate(curve):
            mlflow.log_metrics(
                {
                    "curve.approval_rate": c["approval_rate"],
                    "curve.collection_rate": c["collection_rate_approved"],
                },
                step=step,
            )
        mlflow.log_artifact(
            str(_plot(curve, naive, Path(tmp) / "bnpl_tradeoff.png", report["risk_only_curve"]))
        )
        (Path(tmp) / "bnpl_eval.json").write_text(json.dumps(report, indent=2, default=str))
        mlflow.log_artifact(str(Path(tmp) / "bnpl_eval.json"))


#: The headline figures of a report (what the CLI and ``main`` print).
SUMMARY_KEYS = (
    "naive_approve_under_1000",
    "tijdig_configured_policy",
    "tijdig_best_within_5_points",
    "declines_rules_only",
    "reduction_vs_naive_configured",
    "reduction_vs_naive_best",
    "risk_only_at_95pct_approval_reduction",
    "perfect_foresight_at_95pct_approval_reduction",
)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a :func:`run_bnpl_eval` report."""
    return {k: report.get(k) for k in SUMMARY_KEYS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--train-seed", type=int, default=101)
    parser.add_argument("--eval-seed", type=int, default=42)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--mlflow-uri")
    args = parser.parse_args(argv)
    report = run_bnpl_eval(
        args.customers,
        args.months,
        args.train_seed,
        args.eval_seed,
        args.bundle,
        args.out,
        args.mlflow_uri,
    )
    print(json.dumps(summary(report), indent=2, default=str))  # noqa: T201


if __name__ == "__main__":
    main()

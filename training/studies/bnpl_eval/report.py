"""bnpl-eval's figures: the orders and their outcomes, approval and collection rates,
the decline reasons, what a run did to the whole population, the trade-off plot, the
MLflow run and the headline summary.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.bnpl_replay import MATURED_DAYS, money, rates
from training.simulation import SimulationResult, customers_changed


def order_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every pay-later order with its outcome: did its invoice reach a collection agency,
    what was still unpaid at the end of the run (``lost_cents``), and is that outcome
    known (``matured``: issued at least :data:`MATURED_DAYS` before the last invoice)?"""
    invoices = tables["invoices"]
    orders = invoices[invoices["product"] == "bnpl"][
        ["invoice_id", "customer_id", "issue_date", "amount_cents"]
    ]
    steps = tables["collection_steps"]
    at_agency = set(steps.loc[steps["step"].isin(["agency", "bailiff"]), "invoice_id"])
    paid = tables["payments"].groupby("invoice_id")["amount_cents"].sum()
    unpaid = orders["amount_cents"] - orders["invoice_id"].map(paid).fillna(0).astype(np.int64)
    end = invoices["issue_date"].max()
    orders = orders.assign(
        collection=orders["invoice_id"].isin(at_agency),
        lost_cents=unpaid.clip(lower=0),
        matured=orders["issue_date"] <= end - pd.Timedelta(days=MATURED_DAYS),
    )
    return orders.reset_index(drop=True)


def thin_file_growth(orders: pd.DataFrame, months: tuple[int, ...] = (3, 6, 12)) -> dict[str, Any]:
    """Thin-file customers in the loop (thin at their first order tijdig decided): the share
    of their orders approved, and the limit they were given after ``months`` of on-time
    repayment (the first decision at least that long after their first approval, with no
    late pay-later order in the year before it)."""
    decided = orders[orders["tijdig"].astype(bool)].sort_values("issue_date", kind="stable")
    first = decided.groupby("customer_id").head(1)
    thin_ids = set(first.loc[first["thin_file"].astype(bool), "customer_id"])
    thin = decided[decided["customer_id"].isin(thin_ids)]
    out: dict[str, Any] = {
        "customers": len(thin_ids),
        "orders": len(thin),
        "approval_rate": float(thin["approved"].mean()) if len(thin) else float("nan"),
        "customers_with_an_approval": int(thin.loc[thin["approved"], "customer_id"].nunique()),
    }
    start = thin[thin["approved"]].groupby("customer_id")["issue_date"].min()
    since = (thin["issue_date"] - thin["customer_id"].map(start)).dt.days
    on_time = thin["late_365d"].fillna(0).to_numpy() == 0
    for m in months:
        rows = thin[(since >= 30.4 * m).to_numpy() & on_time].groupby("customer_id").head(1)
        limits = rows["limit_eur"].to_numpy(np.float64)
        out[f"after_{m}_months"] = {
            "customers": len(rows),
            "limit_eur_median": float(np.median(limits)) if len(limits) else float("nan"),
            "limit_eur_mean": float(limits.mean()) if len(limits) else float("nan"),
            "repaid_on_time_median": float(rows["repaid_on_time"].median())
            if len(rows)
            else float("nan"),
            "approved_share": float(rows["approved"].mean()) if len(rows) else float("nan"),
        }
    return out


def population_figures(tables: dict[str, pd.DataFrame], start: pd.Timestamp) -> dict[str, float]:
    """What a run did to the whole population: customers with any invoice (any product)
    at an agency or bailiff by the end, and the collection costs charged (WIK at the agency
    step, the bailiff's cost), over the run and after ``start``."""
    steps, invoices = tables["collection_steps"], tables["invoices"]
    n = max(len(tables["customers"]), 1)
    handed = steps[steps["step"].isin(["agency", "bailiff"])]
    product = handed["invoice_id"].map(invoices.set_index("invoice_id")["product"])
    after = steps["step_date"] >= start
    wik = steps["step"] == "agency"
    bailiff = steps["step"] == "bailiff"
    bnpl = invoices["product"] == "bnpl"
    return {
        "customers": float(len(tables["customers"])),
        "customers_at_agency": float(handed["customer_id"].nunique()),
        "customers_at_agency_share": handed["customer_id"].nunique() / n,
        "customers_handed_to_agency_after_warmup": float(
            handed.loc[handed["step_date"] >= start, "customer_id"].nunique()
        ),
        "customers_with_pay_later_at_agency": float(
            handed.loc[(product == "bnpl").to_numpy(), "customer_id"].nunique()
        ),
        "wik_costs_eur": float(steps.loc[wik, "cost_cents"].sum() / 100),
        "wik_costs_after_warmup_eur": float(steps.loc[wik & after, "cost_cents"].sum() / 100),
        "bailiff_costs_eur": float(steps.loc[bailiff, "cost_cents"].sum() / 100),
        "bailiff_costs_after_warmup_eur": float(
            steps.loc[bailiff & after, "cost_cents"].sum() / 100
        ),
        "pay_later_invoices": float(bnpl.sum()),
        "pay_later_lent_after_warmup_eur": float(
            invoices.loc[bnpl & (invoices["issue_date"] >= start), "amount_cents"].sum() / 100
        ),
    }


def run_figures(
    tables: dict[str, pd.DataFrame], orders: pd.DataFrame, start: pd.Timestamp
) -> dict[str, Any]:
    """One closed-loop run: the orders placed after ``start`` (approval, approved orders
    that reached an agency or bailiff) and the population-level figures."""
    after = orders[orders["issue_date"] >= start]
    approved = after["approved"].to_numpy(bool)
    return {
        **rates(approved, after["collection"].to_numpy(bool)),
        **money(after, approved),
        "population": population_figures(tables, start),
    }


def treated_alike(
    naive: SimulationResult,
    naive_orders: pd.DataFrame,
    tijdig: SimulationResult,
    tijdig_orders: pd.DataFrame,
    start: pd.Timestamp,
) -> dict[str, Any]:
    """The customers whose every order got the same answer in both runs, and whether their
    histories are the same too (they must be: every draw is per customer). With their
    collection costs in each run, so the check reads as euros, not only as a count."""
    keys = ["customer_id", "issue_date"]
    both = naive_orders[[*keys, "approved"]].merge(
        tijdig_orders[[*keys, "approved"]], on=keys, suffixes=("_naive", "_tijdig"), validate="1:1"
    )
    answered_otherwise = set(
        both.loc[both["approved_naive"] != both["approved_tijdig"], "customer_id"]
    )
    alike = set(naive.tables["customers"]["customer_id"]) - answered_otherwise
    changed = customers_changed(naive, tijdig) & alike

    def costs(result: SimulationResult) -> dict[str, float]:
        tables = {n: df[df["customer_id"].isin(alike)] for n, df in result.tables.items()}
        return population_figures(tables, start)

    return {
        "customers": len(alike),
        "customers_with_another_history": len(changed),
        "naive": costs(naive),
        "tijdig": costs(tijdig),
    }


def approved_only_in_loop(both: pd.DataFrame) -> dict[str, float]:
    """The orders the closed loop approves and the replay declines (``both``: the loop's
    orders with ``approved``, ``tijdig``, ``collection``, in run order, joined to the
    replay's decision ``replayed``): how many, how many of them come from a customer tijdig
    declined earlier in the loop (beside the same share for every order the replay
    declines: the base rate), and how often they reached an agency against the loop's
    other approvals."""
    both = both.sort_values("issue_date", kind="stable")
    declined = (both["tijdig"].astype(bool) & ~both["approved"].astype(bool)).astype(int)
    earlier = both.assign(d=declined).groupby("customer_id")["d"].cumsum() - declined > 0
    only = both["approved"].astype(bool) & ~both["replayed"].astype(bool)
    other = both["approved"].astype(bool) & ~only
    replay_declined = ~both["replayed"].astype(bool)
    collection = both["collection"].astype(bool)

    def share(mask: pd.Series, of: pd.Series) -> float:
        return float(mask[of].mean()) if of.any() else float("nan")

    out = {
        "orders": float(only.sum()),
        "declined_earlier_share": share(earlier, only),
        "declined_earlier_share_of_replay_declines": share(earlier, replay_declined),
        "collection_rate": share(collection, only),
        "collection_rate_other_approvals": share(collection, other),
    }
    # The margin yardstick: the leak's orders are the marginal ones, near the cut-off, so
    # some excess over *all* other approvals is what any cut-off leaves at its margin.
    # The same ratio of the probability the cut-off applied to says how much of it the
    # model itself expected; the ratio above stays as defined.
    if "probability" in both:
        risk = both["probability"].astype(float)
        if "pay_later_probability" in both:
            adjusted = both["pay_later_probability"].astype(float)
            risk = adjusted.where(adjusted.notna(), risk)
        out["mean_probability"] = float(risk[only].mean()) if only.any() else float("nan")
        out["mean_probability_other_approvals"] = (
            float(risk[other].mean()) if other.any() else float("nan")
        )
        predicted = _ratio(out["mean_probability"], out["mean_probability_other_approvals"])
        observed = _ratio(out["collection_rate"], out["collection_rate_other_approvals"])
        out["probability_ratio"] = predicted
        out["collection_rate_ratio_over_probability_ratio"] = _ratio(observed, predicted)
    if "agency_probability" in both and both["agency_probability"].notna()[only].all():
        agency = both["agency_probability"].astype(float)
        # the adjustment's fitted P(agency): calibrated on its world, so comparable to
        # the observed rates as they are
        out["predicted_collection_rate"] = float(agency[only].mean())
        out["predicted_collection_rate_other_approvals"] = float(agency[other].mean())
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b and np.isfinite(b) else float("nan")


def plot_tradeoff(
    curve: list[dict[str, float]],
    naive: dict[str, float],
    path: Path,
    risk_only: list[dict[str, float]] | None = None,
    rules_only: dict[str, float] | None = None,
    chosen: dict[str, float] | None = None,
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
    if rules_only:
        ax.plot(
            [rules_only["approval_rate"]],
            [rules_only["collection_rate_approved"]],
            "kD",
            label="the rules alone",
        )
    if chosen:
        ax.plot(
            [chosen["approval_rate"]],
            [chosen["collection_rate_approved"]],
            "*",
            color="green",
            markersize=14,
            label=f"chosen operating point (cut-off {chosen.get('cutoff', float('nan')):.2f})",
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


def log_to_mlflow(
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
        if "closed_loop" in report:
            mlflow.log_param("closed_loop.tijdig_from", report["closed_loop"]["tijdig_from"])
            mlflow.log_metrics(_numbers(report["closed_loop"], "closed_loop"))
        mlflow.log_param("operating_point_rule", json.dumps(report.get("operating_point_rule")))
        mlflow.log_param("chosen_cutoff", report["tijdig_configured_policy"]["cutoff"])
        mlflow.log_metrics(_numbers(report.get("rules_only", {}), "rules_only"))
        mlflow.log_metrics(_numbers(report.get("goal", {}), "goal"))
        for step, c in enumerate(curve):
            mlflow.log_metrics(
                {
                    "curve.cutoff": c["cutoff"],
                    "curve.approval_rate": c["approval_rate"],
                    "curve.collection_rate": c["collection_rate_approved"],
                },
                step=step,
            )
        mlflow.log_artifact(
            str(
                plot_tradeoff(
                    curve,
                    naive,
                    Path(tmp) / "bnpl_tradeoff.png",
                    report["risk_only_curve"],
                    report.get("rules_only"),
                    report["tijdig_configured_policy"],
                )
            )
        )
        (Path(tmp) / "bnpl_eval.json").write_text(json.dumps(report, indent=2, default=str))
        mlflow.log_artifact(str(Path(tmp) / "bnpl_eval.json"))


def _numbers(tree: dict[str, Any], prefix: str) -> dict[str, float]:
    """The finite numbers of a nested report section as flat MLflow metrics."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            out.update(_numbers(value, name))
        elif isinstance(value, int | float) and np.isfinite(value):
            out[name] = float(value)
    return out


#: The headline figures of a report (what ``tijdig bnpl-eval`` prints).
SUMMARY_KEYS = (
    "naive_approve_under_1000",
    "tijdig_configured_policy",
    "operating_point",
    "rules_only",
    "risk_only_at_rules_only_approval",
    "goal",
    "declines_rules_only",
    "reduction_vs_naive_configured",
    "reduction_vs_naive_rules_only",
    "risk_only_at_95pct_approval_reduction",
    "perfect_foresight_at_95pct_approval_reduction",
    "closed_loop",
    "pay_later_adjustment",
)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a :func:`run_bnpl_eval` report (the adjustment's section
    without its curve and decline table: they are in the JSON)."""
    out = {k: report.get(k) for k in SUMMARY_KEYS}
    adjusted = out.get("pay_later_adjustment")
    if isinstance(adjusted, dict):
        out["pay_later_adjustment"] = {
            k: v for k, v in adjusted.items() if k not in ("curve", "declines_configured")
        }
    return out

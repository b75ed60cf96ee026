"""Evidence for contact targeting: escalations to an agency prevented per 100 calls.

Protocol (``tijdig targeting-eval``):

1. Train the early-warning model on one simulated population (seed A), or take a bundle,
   so the evaluation population is never seen in training.
2. Simulate the evaluation population (seed B) without any calls: the counterfactual.
   Every draw is per customer (issue 19), so a run with calls differs from it only in
   the customers called and what followed from the calls.
3. Pilot: from month ``WARMUP_MONTHS`` for ``PILOT_MONTHS`` months, within the same
   daily capacity, the creditor randomises: each time a customer becomes a candidate (an
   open overdue invoice, not at an agency, not in a plan) a coin says call or control
   and a random delay of 0-30 days says when (:class:`.policies.PilotRandomisation`), so
   the units cover every stage the rules call at. Every unit: features as of its day
   (creditor-observable: the service's features plus the creditor's own dunning state),
   called or not, and whether the customer reached an agency within ``HORIZON_DAYS``. A
   T-learner (two LightGBM models, :mod:`.uplift`) is fitted on 80 % of the customers'
   units and checked on the other 20 % (observed uplift per decile of the estimate).
4. From the end of the pilot, with the same capacity, four targeting rules, each in its
   own run of seed B (no calls before it, calls stop ``HORIZON_DAYS`` before the end so
   their escalations fall inside the world): at random; the traditional rule (second
   reminder open, closest to the agency first); tijdig's probability (highest first, the
   bundle's calibrated P(payment difficulty in 90 days)); tijdig's uplift estimate.
5. Per rule: agency hand-overs from the end of the pilot to the end of the world, less
   those of the counterfactual, per 100 calls made. Steps 3-5 repeat for every scale of
   the effect sizes (:meth:`ContactEffects.scaled`): they are assumptions.

What a call offers a customer who takes up help is the creditor's arrangement policy, the
same in every run (``offer``): ``debt_over_5`` (today's "debt / 5" plan) or ``tijdig``
(tijdig's plan advice: an affordable plan with a pause, or a referral to debt help; the
bundle's plan model, :class:`training.studies.plan_eval.TijdigPlanPolicy`).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.bundle import Bundle
from training.simulation import (
    CollectionPolicy,
    PopulationState,
    SimulationConfig,
    SimulationResult,
    build_population,
    simulate,
)
from training.simulation.config import BEHAVIOURS
from training.simulation.contact import ContactEffects, ContactPlan, Targeting
from training.studies.targeting_eval.policies import (
    PilotRandomisation,
    RandomTargeting,
    ScoreTargeting,
    second_reminder_rule,
)
from training.studies.targeting_eval.uplift import TLearner, qini_by_decile

WARMUP_MONTHS = 6
PILOT_MONTHS = 6
HORIZON_DAYS = 60
SCALES = (0.5, 1.0, 1.5)
RULES = ("random", "rule_second_reminder", "tijdig_risk", "tijdig_uplift")
OFFERS = ("debt_over_5", "tijdig")


def _arrangement_policy(offer: str, bundle: Bundle) -> CollectionPolicy:
    """The creditor's policy apart from calls: today's, with ``offer``'s plans."""
    if offer == "debt_over_5":
        return CollectionPolicy()
    if offer != "tijdig":
        raise ValueError(f"offer must be one of {OFFERS}; got {offer!r}")
    from models.plans import PlanPolicy
    from training.studies.plan_eval import TijdigPlanPolicy

    model = bundle.components.get("plan_kept")
    if model is None:
        raise ValueError("the bundle has no plan_kept component")
    policy = PlanPolicy.from_dict(model.policy) if model.policy else PlanPolicy.default()
    return CollectionPolicy(arrangement_monthly=TijdigPlanPolicy(model, policy))


def _month_start(day: date, months: int) -> date:
    idx = day.year * 12 + day.month - 1 + months
    return date(idx // 12, idx % 12 + 1, 1)


def outcome_figures(result: SimulationResult, since: date) -> dict[str, float]:
    """Escalation figures of ``result`` from ``since`` to the end of the world."""
    steps = result.tables["collection_steps"]
    steps = steps[steps["step_date"] >= pd.Timestamp(since)]
    agency = steps[steps["step"] == "agency"]
    bailiff = steps[steps["step"] == "bailiff"]
    return {
        "agency_handovers": len(agency),
        "customers_at_agency": int(agency["customer_id"].nunique()),
        "bailiff_steps": len(bailiff),
        "collection_costs_eur": float(steps["cost_cents"].sum() / 100),
    }


def handovers_by_customer(result: SimulationResult, since: date) -> pd.Series:
    """Agency hand-overs per customer id from ``since`` to the end of the world."""
    steps = result.tables["collection_steps"]
    agency = steps[(steps["step"] == "agency") & (steps["step_date"] >= pd.Timestamp(since))]
    return agency.groupby("customer_id").size()


def pilot_units(
    pilot: PilotRandomisation, plan: ContactPlan, result: SimulationResult, pop: PopulationState
) -> dict[str, np.ndarray]:
    """The pilot's episodes with ``treated`` (called on the episode's day) and ``y`` (an
    agency hand-over of the customer within ``HORIZON_DAYS``); assigned customers the
    capacity left uncalled are dropped (their coin is kept, the call was not made)."""
    units = pilot.unit_table()
    calls = plan.contacts
    day0 = (pd.Timestamp(pop.calendar.start) - pd.Timestamp("1970-01-01")).days
    called = set(zip(calls["customer_index"], calls["day"] + day0, strict=True))
    treated = np.array(
        [(c, d) in called for c, d in zip(units["customer_index"], units["day"], strict=True)]
    )
    keep = treated | ~units["assigned"]
    steps = result.tables["collection_steps"]
    agency = steps[steps["step"] == "agency"]
    pos = {cid: i for i, cid in enumerate(pop.customer_ids.tolist())}
    a_cust = agency["customer_id"].map(pos).to_numpy()
    a_day = ((agency["step_date"] - pd.Timestamp("1970-01-01")).dt.days).to_numpy()
    by_cust: dict[int, np.ndarray] = {
        int(c): np.sort(a_day[a_cust == c]) for c in np.unique(a_cust)
    }
    y = np.zeros(len(treated), np.int64)
    for i, (c, d) in enumerate(zip(units["customer_index"], units["day"], strict=True)):
        days = by_cust.get(int(c))
        if days is not None:
            j = np.searchsorted(days, d)
            y[i] = int(j < len(days) and days[j] < d + HORIZON_DAYS)
    out = {k: v[keep] for k, v in units.items()}
    out["treated"] = treated[keep]
    out["y"] = y[keep]
    return out


def fit_uplift(units: dict[str, np.ndarray], seed: int) -> tuple[TLearner, dict[str, Any]]:
    """A T-learner on 80 % of the customers' units; the observed uplift per decile of its
    estimate on the other 20 % (split by customer, so no customer is on both sides)."""
    X = np.column_stack([units["X"], units["case"]])
    held_out = (
        np.random.default_rng([seed, 5]).random(int(units["customer_index"].max()) + 1) < 0.2
    )[units["customer_index"]]
    t, y = units["treated"], units["y"]
    model = TLearner(seed=seed).fit(X[~held_out], t[~held_out], y[~held_out])
    estimate = model.predict(X[held_out])
    top = estimate >= np.quantile(estimate, 0.8)

    def observed(rows: np.ndarray) -> float:
        tt, cc = rows & t[held_out], rows & ~t[held_out]
        yh = y[held_out]
        return float(yh[cc].mean() - yh[tt].mean()) if tt.any() and cc.any() else float("nan")

    check = {
        "units": len(y),
        "treated": int(t.sum()),
        "control": int((~t).sum()),
        "escalation_rate_control": float(y[~t].mean()),
        "escalation_rate_treated": float(y[t].mean()),
        "average_uplift_observed": float(y[~t].mean() - y[t].mean()),
        "held_out_units": int(held_out.sum()),
        "held_out_observed_uplift_top_20pct": observed(top),
        "held_out_observed_uplift_rest": observed(~top),
        "held_out_deciles": qini_by_decile(estimate, t[held_out], y[held_out]),
    }
    return model, check


def run_figures(
    plan: ContactPlan,
    result: SimulationResult,
    none: dict[str, float],
    since: date,
    pop: PopulationState,
    none_by_customer: pd.Series | None = None,
) -> dict[str, Any]:
    """One targeting rule's figures against the run without calls. With
    ``none_by_customer`` (:func:`handovers_by_customer` of the run without calls) also the
    standard error of the prevented figure: draws are per customer, so only called
    customers differ from the counterfactual, and the total is a sum of their
    differences (``handovers_changed_outside_called`` checks it is 0)."""
    calls = plan.contacts
    figures = outcome_figures(result, since)
    n_calls = len(calls)
    prevented = none["agency_handovers"] - figures["agency_handovers"]
    uncertainty: dict[str, float] = {}
    if none_by_customer is not None and n_calls:
        called = pop.customer_ids[np.unique(calls["customer_index"].to_numpy())]
        run_by = handovers_by_customer(result, since)
        diff = none_by_customer.reindex(called, fill_value=0) - run_by.reindex(called, fill_value=0)
        se_total = float(np.sqrt(len(diff)) * diff.std(ddof=1)) if len(diff) > 1 else 0.0
        uncertainty = {
            "called_customers": len(called),
            "prevented_per_100_calls_se": 100 * se_total / n_calls,
            "handovers_changed_outside_called": int(prevented - diff.sum()),
        }
    behaviour = pop.behaviour[calls["customer_index"].to_numpy()]
    return {
        "calls": n_calls,
        "reached_share": float(calls["reached"].mean()) if n_calls else 0.0,
        "responses": {str(k): int(v) for k, v in calls["response"].value_counts().items()},
        # hidden truth, for the why: whom each rule called
        "called_by_behaviour": {
            b: float((behaviour == i).mean()) if n_calls else 0.0 for i, b in enumerate(BEHAVIOURS)
        },
        **figures,
        "agency_handovers_prevented": prevented,
        "prevented_per_100_calls": 100 * prevented / n_calls if n_calls else 0.0,
        **uncertainty,
        "customers_at_agency_prevented_per_100_calls": 100
        * (none["customers_at_agency"] - figures["customers_at_agency"])
        / max(n_calls, 1),
    }


def _risk_score(bundle: Bundle) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """tijdig's calibrated probability from the model features (the case columns unused)."""

    def score(X: np.ndarray, case: np.ndarray) -> np.ndarray:
        return bundle.predict_proba(X)

    return score


def _uplift_score(model: TLearner) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The uplift estimate from the model features and the case columns."""

    def score(X: np.ndarray, case: np.ndarray) -> np.ndarray:
        return model.predict(np.column_stack([X, case]))

    return score


def run_targeting_eval(
    n_customers: int = 5_000,
    months: int = 24,
    train_seed: int = 101,
    eval_seed: int = 42,
    capacity_per_1000: float = 1.0,
    scales: tuple[float, ...] = SCALES,
    pilot_share: float = 0.4,
    offer: str = "debt_over_5",
    bundle_path: Path | None = None,
    out: Path | None = None,
    mlflow_uri: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole protocol (module doc); returns the report (also written to ``out``)."""
    t0 = time.perf_counter()
    if bundle_path is not None:
        bundle = Bundle.load(bundle_path)
        log(f"bundle {bundle.version} from {bundle_path}")
    elif offer == "tijdig":  # the plan model learns from a creditor that varied plan sizes
        from training.studies.plan_eval import train_bundle as train_plan_bundle

        log(f"training the risk and plan models on seed {train_seed} ({n_customers:,} customers)")
        bundle = train_plan_bundle(
            SimulationConfig(n_customers=n_customers, months=months, seed=train_seed)
        )
    else:
        from training.studies.bnpl_eval.run import train_bundle

        log(f"training the risk model on seed {train_seed} ({n_customers:,} customers)")
        bundle = train_bundle(n_customers, months, train_seed)
    creditor = _arrangement_policy(offer, bundle)
    config = SimulationConfig(n_customers=n_customers, months=months, seed=eval_seed)
    start, end = config.period()
    pilot_start = _month_start(start, WARMUP_MONTHS)
    eval_start = _month_start(pilot_start, PILOT_MONTHS)
    calls_end = end - timedelta(days=HORIZON_DAYS)
    capacity = max(1, round(capacity_per_1000 * n_customers / 1000))
    log(
        f"seed {eval_seed}: {n_customers:,} customers, {capacity} calls per business day, "
        f"plans offered: {offer}"
    )
    population = build_population(config)
    none_result = simulate(config, population=population, policy=creditor)
    none = outcome_figures(none_result, eval_start)
    none_by_customer = handovers_by_customer(none_result, eval_start)
    scenarios = []
    for scale in scales:
        effects = ContactEffects().scaled(scale)
        log(f"effect scale {scale}: pilot {pilot_start} .. {eval_start}")
        pilot = PilotRandomisation(pilot_share, seed=eval_seed)
        plan = ContactPlan(pilot, capacity, effects, start=pilot_start, end=eval_start)
        pilot_result = simulate(
            config,
            population=population,
            policy=replace(creditor, contact=plan, name="pilot"),
        )
        units = pilot_units(pilot, plan, pilot_result, population)
        model, check = fit_uplift(units, eval_seed)
        targetings: dict[str, Targeting] = {
            "random": RandomTargeting(seed=eval_seed),
            "rule_second_reminder": second_reminder_rule,
            "tijdig_risk": ScoreTargeting(_risk_score(bundle), "tijdig_risk"),
            "tijdig_uplift": ScoreTargeting(_uplift_score(model), "tijdig_uplift"),
        }
        rules = {}
        for name, targeting in targetings.items():
            t = time.perf_counter()
            plan = ContactPlan(targeting, capacity, effects, start=eval_start, end=calls_end)
            result = simulate(
                config,
                population=population,
                policy=replace(creditor, contact=plan, name=name),
            )
            rules[name] = run_figures(plan, result, none, eval_start, population, none_by_customer)
            rules[name]["seconds"] = round(time.perf_counter() - t, 1)
            log(
                f"  {name}: {rules[name]['calls']} calls, "
                f"{rules[name]['prevented_per_100_calls']:.2f} prevented per 100 "
                f"(se {rules[name].get('prevented_per_100_calls_se', float('nan')):.2f})"
            )
        rule = rules["rule_second_reminder"]["prevented_per_100_calls"]
        scenarios.append(
            {
                "scale": scale,
                "effects": effects.to_dict(),
                "pilot": check,
                "rules": rules,
                "vs_rule": {
                    k: (rules[k]["prevented_per_100_calls"] / rule if rule > 0 else None)
                    for k in ("random", "tijdig_risk", "tijdig_uplift")
                },
            }
        )
    report: dict[str, Any] = {
        "protocol": __doc__.split("\n\n", 1)[1] if __doc__ else "",
        "customers": n_customers,
        "months": months,
        "train_seed": train_seed,
        "eval_seed": eval_seed,
        "model_version": bundle.version,
        "capacity_per_business_day": capacity,
        "capacity_per_1000_customers": capacity_per_1000,
        "offer": offer,
        "pilot": {"from": str(pilot_start), "to": str(eval_start), "share": pilot_share},
        "calls_from": str(eval_start),
        "calls_until": str(calls_end),
        "escalations_counted_until": str(end),
        "horizon_days": HORIZON_DAYS,
        "no_calls": none,
        "scenarios": scenarios,
        "goal": "tijdig's targeting prevents at least twice what the rule does per 100 calls",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "targeting_eval.json").write_text(json.dumps(report, indent=2, default=str))
        plot = plot_prevented(report, out / "targeting_prevented.png")
        if bundle_path is None:  # a re-run can take it with --bundle (not committed)
            bundle.save(out / "bundle")
        log(f"wrote {out / 'targeting_eval.json'} and {plot}")
    if mlflow_uri:
        log_to_mlflow(mlflow_uri, report)
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline: prevented per 100 calls per rule and scale, and the ratio to the rule."""
    return {
        "capacity_per_business_day": report["capacity_per_business_day"],
        "offer": report.get("offer"),
        "prevented_per_100_calls": {
            str(s["scale"]): {
                k: round(v["prevented_per_100_calls"], 2) for k, v in s["rules"].items()
            }
            for s in report["scenarios"]
        },
        "vs_rule": {str(s["scale"]): s["vs_rule"] for s in report["scenarios"]},
    }


def plot_prevented(report: dict[str, Any], path: Path) -> Path:
    """Prevented agency hand-overs per 100 calls, per rule, over the effect scales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = [s["scale"] for s in report["scenarios"]]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, name in enumerate(RULES):
        # a small offset per rule so the error bars (1 standard error) do not overlap
        ax.errorbar(
            [x + 0.012 * (k - 1.5) for x in scales],
            [s["rules"][name]["prevented_per_100_calls"] for s in report["scenarios"]],
            yerr=[
                s["rules"][name].get("prevented_per_100_calls_se", 0.0) for s in report["scenarios"]
            ],
            marker="o",
            capsize=3,
            label=name.replace("_", " "),
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("effect sizes (x the assumed central values)")
    ax.set_ylabel("agency hand-overs prevented per 100 calls")
    ax.set_title(
        f"{report['customers']:,} customers, {report['capacity_per_business_day']} calls a day, "
        f"offer: {report.get('offer', 'debt_over_5')}"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_to_mlflow(uri: str, report: dict[str, Any]) -> None:
    """The report, its headline metrics per scale and rule, and the plot, as one MLflow run."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tijdig-contact-targeting")
    with mlflow.start_run(), tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(
            {
                "customers": report["customers"],
                "eval_seed": report["eval_seed"],
                "model_version": report["model_version"],
                "capacity_per_business_day": report["capacity_per_business_day"],
                "offer": report.get("offer", "debt_over_5"),
            }
        )
        for s in report["scenarios"]:
            for name, r in s["rules"].items():
                mlflow.log_metric(
                    f"scale_{s['scale']}.{name}.prevented_per_100_calls",
                    r["prevented_per_100_calls"],
                )
        mlflow.log_artifact(str(plot_prevented(report, Path(tmp) / "targeting_prevented.png")))
        (Path(tmp) / "targeting_eval.json").write_text(json.dumps(report, indent=2, default=str))
        mlflow.log_artifact(str(Path(tmp) / "targeting_eval.json"))

"""Evidence for issue 20: forward-simulate tijdig's payment plans against two naive policies.

Protocol (``tijdig plan-eval``):

1. Train a bundle (risk model + every component, including ``plan_kept``) on a
   simulation with seed A — or load one with ``--bundle``. In that training simulation the
   creditor *experiments with plan sizes*
   (:class:`training.simulation.policy.VariedArrangementAmounts`: the debt in N parts, N
   drawn from 1..18 per plan), so the P(kept) model sees monthly amounts that vary
   independently of what the customer can pay. Under ``debt / 5`` history alone the amount
   just follows the debt and the model cannot learn how much a lower amount helps.
2. Build a *separate* population with seed B, simulated long enough that a request has
   24 months of future (:data:`DEFAULT_MONTHS`), and simulate it under every arrangement
   policy in the same run: the same customers and the same per-customer income, shock and
   spending draws, so the first requests are the same under every policy (checked:
   ``same_cohort``):

   * ``debt_over_5_months`` — current practice, the debt in 5 monthly parts;
   * ``largest_agreed`` — the creditor proposes the debt in 1, 2, 3, … 12 parts and takes
     the largest amount the customer agrees to. Customers agree up to twice what they can
     really pay (DOMAIN.md: 5 × EUR 100 agreed when EUR 50 is possible). This naive policy
     models the customer's answer with the simulator's hidden truth;
   * ``tijdig`` — the plan policy of the bundle's ``plan_kept`` component (else the
     default) through :func:`models.plans.advise`, with ONLY what the creditor observes:
     the customer's events up to that day → ``build_features`` → :func:`budget_view` →
     advice, with the problematic-debt signals this creditor knows
     (:func:`creditor_signals`). A referral to debt help (CCD2 art. 36) is acted out by the
     simulator (``referral_pause_days``); every plan carries the policy's pause (CCD2
     art. 35), which a customer whose income drops asks for with
     ``SimulationConfig.plan_pause_ask_rate``. The naive policies offer no pause.
   * ``tijdig_cost_weight_<w>`` — tijdig with another ``cost_weight`` (the trade-off);
   * ``tijdig_pause_ask_<r>`` — tijdig in a world where customers ask for the pause with
     probability r (the ask rate is an assumption; its range shows what rests on it).

3. Per policy, on the first-request cohort (:mod:`training.studies.plan_cohort`): the
   referral share with reasons, plans kept at 24 months, principal repaid at 12 and 24
   months, collection costs on top of the principal and customers reaching a bailiff; and
   the issue's goals (:func:`goal_verdicts`) against the better naive policy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.build import build_features
from features.events import EventArrays, to_day
from models.budget import BudgetView, budget_view
from models.bundle import Bundle, load_bundle
from models.plan_kept import PlanKeptModel
from models.plans import DebtSignals, PlanPolicy, advise, debt_signals_from_features
from training.simulation import (
    ArrangementAnswer,
    ArrangementRequest,
    CollectionPolicy,
    SimulationConfig,
    SimulationResult,
    build_population,
    debt_over_five_months,
    simulate,
)
from training.simulation.config import _add_months
from training.simulation.observe import observed_event_arrays
from training.simulation.policy import VariedArrangementAmounts
from training.studies.plan_cohort import (
    HORIZON_MONTHS,
    RecordedPolicy,
    first_request_cohort,
    same_cohort,
    summarise_cohort,
)

__all__ = [
    "RecordedPolicy",
    "TijdigPlanPolicy",
    "creditor_signals",
    "first_request_cohort",
    "goal_verdicts",
    "largest_agreed",
    "run_plan_eval",
    "train_bundle",
    "train_bundle_on",
]

AGREE_FACTOR = 2.0  # customers agree to up to twice what they can really pay
AGREE_MIN_CENTS = 50_00
#: the evaluation world starts here; the training world (24 months) ends where the
#: first requests of the evaluation's cohort end, so P(kept) is fitted on the same years
EVAL_START = date(2024, 7, 1)
TRAIN_END = date(2026, 7, 1)
#: two years in which first requests fall, two more in which they play out
DEFAULT_MONTHS = 2 * HORIZON_MONTHS
NAIVE = ("debt_over_5_months", "largest_agreed")
#: the issue's goals (issue 20): shares of the cohort / of the plans, and factors of the
#: better naive policy's figure
GOAL_REFERRAL_SHARE_MAX = 0.20
GOAL_KEPT_SHARE_MIN = 0.80
MOONSHOT_KEPT_SHARE_MIN = 0.85
GOAL_COSTS_FACTOR_MAX = 0.5


def largest_agreed(request: ArrangementRequest) -> np.ndarray:
    """The largest of debt/1 … debt/12 the customer agrees to (else debt/12)."""
    pop, c = request.population, request.customer_index
    capacity = (
        pop.net_income[c] + pop.allowance[c] - pop.fixed_costs[c] - 0.85 * pop.living_costs[c]
    )
    limit = np.maximum(AGREE_FACTOR * capacity, AGREE_MIN_CENTS)
    debt = request.debt_cents
    out = np.ceil(debt / 12 / 100) * 100
    for parts in range(12, 0, -1):  # from small to large: the last one agreed is the largest
        amount = np.ceil(debt / parts / 100) * 100
        out = np.where(amount <= limit, amount, out)
    return np.minimum(np.maximum(out, 1), debt).astype(np.int64)


def creditor_signals(row: np.ndarray, budget: BudgetView) -> DebtSignals:
    """The problematic-debt signals this creditor knows without asking: its own running and
    broken plans (from the features) and an income below the protected minimum (when the
    income is known). Collection cases at other creditors stay unknown."""
    own = debt_signals_from_features(row)
    income = budget.income.amount_eur
    below = None if income is None else income < budget.protected_minimum_eur
    return replace(own, income_below_protected_minimum=below)


@dataclass
class TijdigPlanPolicy:
    """tijdig's plan advice as a simulator policy: the suggested plan with its pause, or 0
    (a referral to debt help) where :func:`models.plans.advise` refers."""

    model: PlanKeptModel
    policy: PlanPolicy

    def __post_init__(self) -> None:
        self.last_details: pd.DataFrame | None = None

    def __call__(self, request: ArrangementRequest) -> ArrangementAnswer:
        if request.observed is None:
            raise ValueError("the simulator did not expose observed events")
        events = observed_event_arrays(
            request.population, request.observed(), request.customer_index
        )
        day = to_day(request.day)
        X = build_features(events, day)
        k = len(X)
        monthly = np.zeros(k, np.int64)
        details: dict[str, list[Any]] = {"referral_reason": [], "p_kept": [], "months": []}
        for i in range(k):
            budget = budget_view(
                X[i],
                request.day,
                standard_share=self.policy.standard_share,
                maximum_share=self.policy.maximum_share,
            )
            advice = advise(
                self.model,
                X[i],
                day,
                request.day,
                int(request.debt_cents[i]),
                budget,
                self.policy,
                signals=creditor_signals(X[i], budget),
            )
            plan = advice.suggested
            if plan is not None:
                monthly[i] = round(plan.monthly_amount_eur * 100)
            details["referral_reason"].append(
                ";".join(r.value for r in advice.referral_reasons) or None
            )
            details["p_kept"].append(np.nan if plan is None else plan.p_kept)
            details["months"].append(0 if plan is None else plan.months)
        self.last_details = pd.DataFrame(details)
        net = self.policy.safety_net
        offered = monthly > 0
        return ArrangementAnswer(
            monthly,
            np.where(offered, net.pause_max_months, 0),
            np.where(offered, net.pause_times, 0),
        )


def train_bundle(
    config: SimulationConfig, num_threads: int = 0, *, varied_amounts: bool = True
) -> Bundle:
    """Simulate ``config`` (seed A) and train a full candidate bundle on it.

    ``varied_amounts``: the creditor in the training simulation varies plan sizes
    (:class:`VariedArrangementAmounts`) instead of ``debt / 5`` (module doc, step 1).
    """
    policy = None
    if varied_amounts:
        policy = CollectionPolicy(
            arrangement_monthly=VariedArrangementAmounts(seed=config.seed),
            name="varied_plan_amounts",
        )
    sim = simulate(config, policy=policy)
    return train_bundle_on(sim, num_threads)


def train_bundle_on(sim: SimulationResult, num_threads: int = 0) -> Bundle:
    """A full candidate bundle trained on the simulated world ``sim`` (:func:`train_bundle`
    simulates it; ``tijdig flow-eval`` also fits the debit model on the same world)."""
    from features.labels import LabelConfig
    from training.dataset import build_snapshots, monthly_as_of_dates
    from training.train import train_candidate

    events = EventArrays.from_frames(sim.tables)
    label_config = LabelConfig()
    snaps = build_snapshots(events, monthly_as_of_dates(events, label_config), label_config)
    candidate = train_candidate(
        events,
        snaps,
        label_config,
        params={"num_threads": num_threads},
        truth_customers=sim.truth_customers,
        truth_monthly=sim.truth_monthly,
    )
    candidate.bundle.metadata["plan_eval_train_seed"] = sim.config.seed
    candidate.bundle.metadata["plan_eval_train_arrangements"] = (
        "varied_plan_amounts" if sim.policy_name == "varied_plan_amounts" else "debt_over_5_months"
    )
    return candidate.bundle


def _verdict(value: float, goal: float, *, at_most: bool) -> dict[str, Any]:
    met = value <= goal if at_most else value >= goal
    return {
        "value": value,
        "goal": goal,
        "met": bool(met),
        "missed_by": 0.0 if met else abs(value - goal),
    }


def goal_verdicts(summary: dict[str, Any], naive: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals for one policy's summary, against the better naive policy (the
    one repaying more, for the principal; the one costing less, for the costs)."""
    best_repaid = max(s["principal_repaid_24m_eur"] for s in naive)
    least_costs = min(s["collection_costs_24m_eur"] for s in naive)
    return {
        "referral_share": _verdict(
            summary["referral_share"], GOAL_REFERRAL_SHARE_MAX, at_most=True
        ),
        "every_referral_has_a_structural_reason": summary.get("referrals_without_reason", 0) == 0,
        "plans_kept_share_24m": _verdict(
            summary["plans_kept_share_24m"], GOAL_KEPT_SHARE_MIN, at_most=False
        ),
        "plans_kept_share_24m_moonshot": _verdict(
            summary["plans_kept_share_24m"], MOONSHOT_KEPT_SHARE_MIN, at_most=False
        ),
        "principal_repaid_24m_eur": _verdict(
            summary["principal_repaid_24m_eur"], best_repaid, at_most=False
        ),
        "collection_costs_24m_eur": _verdict(
            summary["collection_costs_24m_eur"], GOAL_COSTS_FACTOR_MAX * least_costs, at_most=True
        ),
    }


TRADE_OFF_FIGURES = (
    "referral_share",
    "plans_kept_share_24m",
    "principal_repaid_24m_eur",
    "collection_costs_24m_eur",
    "customers_reaching_bailiff_24m",
    "plans_paused",
)


def _trade_off(policies: dict[str, dict[str, Any]], knob: str) -> list[dict[str, Any]]:
    """tijdig's runs that differ from the main one in ``knob`` alone (the cost weight, or
    the world's pause ask rate), ordered by it, with the figures the goals are about."""
    main = policies["tijdig"]
    others = {"cost_weight": "plan_pause_ask_rate", "plan_pause_ask_rate": "cost_weight"}[knob]
    rows = [
        {"policy": name, knob: s[knob], **{k: s.get(k) for k in TRADE_OFF_FIGURES}}
        for name, s in policies.items()
        if knob in s and s[others] == main[others]
    ]
    return sorted(rows, key=lambda row: row[knob])


def run_plan_eval(
    *,
    n_customers: int = 20_000,
    months: int = DEFAULT_MONTHS,
    train_months: int = 24,
    train_seed: int = 101,
    eval_seed: int = 202,
    bundle_path: Path | None = None,
    out: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
    varied_training_amounts: bool = True,
    cost_weights: tuple[float, ...] = (),
    pause_ask_rates: tuple[float, ...] = (),
) -> dict[str, Any]:
    """The whole protocol (module doc); returns (and optionally writes) the report.

    ``cost_weights``: also run tijdig with these cost weights instead of the policy's;
    ``pause_ask_rates``: also run tijdig where customers ask for the pause with these
    probabilities instead of the simulation's."""
    if months < HORIZON_MONTHS + 1:
        raise ValueError(f"months must leave room for a {HORIZON_MONTHS}-month horizon")
    started = time.perf_counter()
    if bundle_path is not None:
        bundle = load_bundle(str(bundle_path))
    else:
        log(f"training a bundle on simulation seed {train_seed} ({n_customers} customers)")
        bundle = train_bundle(
            SimulationConfig(
                n_customers=n_customers, months=train_months, seed=train_seed, end_date=TRAIN_END
            ),
            varied_amounts=varied_training_amounts,
        )
        if out is not None:
            bundle.save(out / "bundle")
    model = bundle.components.get("plan_kept")
    if model is None:
        raise ValueError("the bundle has no plan_kept component")
    policy = PlanPolicy.from_dict(model.policy) if model.policy else PlanPolicy.default()
    config = SimulationConfig(
        n_customers=n_customers,
        months=months,
        seed=eval_seed,
        end_date=_add_months(EVAL_START, months),
    )
    Policy = Callable[[ArrangementRequest], ArrangementAnswer | np.ndarray]
    runs: dict[str, tuple[Policy, SimulationConfig]] = {
        "debt_over_5_months": (debt_over_five_months, config),
        "largest_agreed": (largest_agreed, config),
        "tijdig": (TijdigPlanPolicy(model, policy), config),
    }
    for weight in cost_weights:
        if weight != policy.cost_weight:
            variant = replace(policy, cost_weight=float(weight))
            runs[f"tijdig_cost_weight_{weight:g}"] = (TijdigPlanPolicy(model, variant), config)
    for rate in pause_ask_rates:
        if rate != config.plan_pause_ask_rate:
            world = replace(config, plan_pause_ask_rate=float(rate))
            runs[f"tijdig_pause_ask_{rate:g}"] = (TijdigPlanPolicy(model, policy), world)
    data_end = pd.Timestamp(config.period()[1])
    report: dict[str, Any] = {
        "protocol": {
            "cohort": "each customer's first arrangement request at least "
            f"{HORIZON_MONTHS} months before the end of the data",
            "kept": "plan completed or not broken by 24 months after the request",
            "repaid": "principal of the debt the request covered, paid by any route",
            "costs": "collection costs charged on that debt after the request, within 24 months",
            "bailiff": "a bailiff step on that debt within 24 months",
        },
        "train_seed": train_seed if bundle_path is None else None,
        "train_months": train_months if bundle_path is None else None,
        "train_arrangements": bundle.metadata.get("plan_eval_train_arrangements"),
        "bundle": bundle.version,
        "plan_kept_metrics": model.metadata.get("metrics"),
        "plan_kept_version": model.version,
        "plan_policy": policy.to_dict(),
        "eval_seed": eval_seed,
        "n_customers": n_customers,
        "months": months,
        "period": [d.isoformat() for d in config.period()],
        "plan_pause_ask_rate": config.plan_pause_ask_rate,
        "horizon_months": HORIZON_MONTHS,
        "policies": {},
    }
    populations = {config: build_population(config)}
    cohorts: dict[str, pd.DataFrame] = {}
    for name, (fn, world) in runs.items():
        t0 = time.perf_counter()
        if world not in populations:
            populations[world] = build_population(world)
        recorded = RecordedPolicy(fn)
        sim = simulate(
            world,
            policy=CollectionPolicy(arrangement_monthly=recorded, name=name),
            population=populations[world],
        )
        cohorts[name] = first_request_cohort(sim.tables, recorded.requests(), data_end)
        summary = summarise_cohort(cohorts[name], sim.plan_pauses)
        if isinstance(fn, TijdigPlanPolicy):
            summary["cost_weight"] = fn.policy.cost_weight
            summary["plan_pause_ask_rate"] = world.plan_pause_ask_rate
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        report["policies"][name] = summary
        log(f"{name}: {json.dumps(summary, default=str)}")
    naive = [report["policies"][name] for name in NAIVE]
    report["goals"] = {
        name: goal_verdicts(summary, naive)
        for name, summary in report["policies"].items()
        if name not in NAIVE
    }
    report["cost_weight_trade_off"] = _trade_off(report["policies"], "cost_weight")
    report["pause_ask_rate_range"] = _trade_off(report["policies"], "plan_pause_ask_rate")
    report["same_cohort"] = same_cohort(cohorts)
    log(f"same cohort: {json.dumps(report['same_cohort'], default=str)}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "plan_eval.json").write_text(
            json.dumps(report, indent=2, default=str), encoding="utf-8"
        )
    return report

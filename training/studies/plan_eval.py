"""Evidence for issue 3: forward-simulate tijdig's payment plans against two naive policies.

Protocol (``tijdig plan-eval``):

1. Train a bundle (risk model + every component, including ``plan_kept``) on a
   simulation with seed A — or load one with ``--bundle``. In that training simulation the
   creditor *experiments with plan sizes*
   (:class:`training.simulation.policy.VariedArrangementAmounts`: the debt in N parts, N
   drawn from 1..18 per plan), so the P(kept) model sees monthly amounts that vary
   independently of what the customer can pay. Under ``debt / 5`` history alone the amount
   just follows the debt and the model cannot learn how much a lower amount helps. The
   default simulation (``tijdig run``, the early-warning yardstick) is unchanged.
2. Build a *separate* population with seed B and simulate it three times, the same
   customers and the same income/shock/spending draws, under three arrangement policies:

   * ``debt_over_5_months`` — current practice, the debt in 5 monthly parts;
   * ``largest_agreed`` — the creditor proposes the debt in 1, 2, 3, … 12 parts and takes
     the largest amount the customer agrees to. Customers agree up to twice what they can
     really pay (DOMAIN.md: 5 × EUR 100 agreed when EUR 50 is possible). This naive policy
     models the customer's answer with the simulator's hidden truth;
   * ``tijdig`` — uses ONLY what the creditor observes: the customer's events up to that
     day (``request.observed()``) → ``build_features`` → budget estimate → the bundle's
     P(kept) model → :func:`models.plans.plan_grid`. Where no plan reaches the P(kept)
     target within 18 months, or there is no free room, tijdig answers with a **referral
     to debt help** (CCD2 art. 36) instead of a plan; the simulator acts it out
     (``SimulationConfig.referral_pause_days``: no escalation during the debt-help intake,
     voluntary payments go on, then the creditor's dunning path resumes).

3. The cohort is every customer's FIRST arrangement request (the customers in arrears the
   policies answer; observable when it lies at least 12 months before the end of the
   data). Per policy: how many got a plan and how many a referral, the plans kept within
   12 months (not broken by start + 365 days), the euros repaid within 12 months on the
   debt the request covered (overdue, unpaid invoices; any payment method), and the
   collection costs charged on that debt in those 12 months (WIK, bailiff: what escalation
   put on top of the principal).
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
from models.bundle import Bundle, load_bundle
from models.plan_kept import PlanKeptModel
from models.plans import PlanPolicy, plan_grid
from training.simulation import (
    ArrangementRequest,
    CollectionPolicy,
    SimulationConfig,
    build_population,
    debt_over_five_months,
    simulate,
)
from training.simulation.observe import observed_event_arrays
from training.simulation.policy import VariedArrangementAmounts

HORIZON_DAYS = 365
AGREE_FACTOR = 2.0  # customers agree to up to twice what they can really pay
AGREE_MIN_CENTS = 50_00


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


@dataclass
class RecordedPolicy:
    """An arrangement policy that records every request and its answer (0 = referral)."""

    policy: Callable[[ArrangementRequest], np.ndarray]

    def __post_init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def __call__(self, request: ArrangementRequest) -> np.ndarray:
        monthly = np.asarray(self.policy(request), dtype=np.int64)
        part = pd.DataFrame(
            {
                "customer_id": np.asarray(request.customer_id),
                "start_date": pd.Timestamp(request.day),
                "debt_cents": np.asarray(request.debt_cents, dtype=np.int64),
                "monthly_cents": monthly,
                "referral": monthly <= 0,
            }
        )
        details = getattr(self.policy, "last_details", None)
        if details is not None:
            part = pd.concat([part, details.reset_index(drop=True)], axis=1)
        self._parts.append(part)
        return monthly

    def requests(self) -> pd.DataFrame:
        return pd.concat(self._parts, ignore_index=True) if self._parts else pd.DataFrame()


@dataclass
class TijdigPlanPolicy:
    """tijdig's plan as a simulator policy: the suggested plan's monthly amount, or 0 (a
    referral to debt help) where :func:`models.plans.plan_grid` refers."""

    model: PlanKeptModel
    policy: PlanPolicy

    def __post_init__(self) -> None:
        self.last_details: pd.DataFrame | None = None

    def __call__(self, request: ArrangementRequest) -> np.ndarray:
        if request.observed is None:
            raise ValueError("the simulator did not expose observed events")
        events = observed_event_arrays(
            request.population, request.observed(), request.customer_index
        )
        day = to_day(request.day)
        X = build_features(events, day)
        from models.budget import budget_arrays

        _, room = budget_arrays(X, np.full(len(X), day))
        room_pos = np.maximum(np.nan_to_num(room, nan=np.inf), 0)
        grid = plan_grid(
            self.model,
            X,
            day,
            request.debt_cents,
            self.policy,
            free_room_eur=room,
            standard_capacity_eur=np.where(
                np.isfinite(room), self.policy.standard_share * room_pos, np.nan
            ),
            maximum_capacity_eur=np.where(
                np.isfinite(room), self.policy.maximum_share * room_pos, np.nan
            ),
        )
        rows = np.arange(len(grid.choice))
        pick = np.where(grid.referral, grid.best_effort, grid.choice)
        self.last_details = pd.DataFrame(
            {
                "referral_reason": grid.referral_reason,
                "p_kept": np.where(grid.referral, np.nan, grid.p_kept[rows, pick]),
                "best_p_kept": grid.p_kept[rows, grid.best_effort],
                "months": np.where(grid.referral, 0, grid.terms[pick]),
            }
        )
        return np.where(grid.referral, 0, grid.monthly_cents[rows, pick]).astype(np.int64)


def _last_day(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    return max(tables["payments"]["paid_at"].max(), tables["invoices"]["issue_date"].max())


def debt_outcomes(tables: dict[str, pd.DataFrame], starts: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``starts`` (``key``, ``customer_id``, ``start_date``, ``window_end``): the
    debt it covered (the customer's invoices overdue and not fully paid at the start), the
    euros repaid on that debt in [start, window_end) by any route, and the collection costs
    charged on it after the start day, within the window (WIK, bailiff: what escalation
    put on top)."""
    inv = tables["invoices"][["invoice_id", "customer_id", "due_date", "amount_cents"]]
    pay = tables["payments"][["invoice_id", "paid_at", "amount_cents"]]
    steps = tables["collection_steps"][["invoice_id", "step_date", "cost_cents"]]
    pairs = starts[["key", "customer_id", "start_date", "window_end"]].merge(inv, on="customer_id")
    pairs = pairs[pairs["due_date"] < pairs["start_date"]]
    pp = pairs[["key", "invoice_id", "start_date", "window_end", "amount_cents"]].merge(
        pay, on="invoice_id", how="left", suffixes=("", "_paid")
    )
    before = pp["paid_at"] < pp["start_date"]
    during = (pp["paid_at"] >= pp["start_date"]) & (pp["paid_at"] < pp["window_end"])
    pp["before"] = np.where(before, pp["amount_cents_paid"], 0)
    pp["during"] = np.where(during, pp["amount_cents_paid"], 0)
    per_inv = pp.groupby(["key", "invoice_id"]).agg(
        amount=("amount_cents", "first"),
        before=("before", "sum"),
        during=("during", "sum"),
        start_date=("start_date", "first"),
        window_end=("window_end", "first"),
    )
    per_inv = per_inv[per_inv["before"] < per_inv["amount"]]
    per_inv["during"] = np.minimum(per_inv["during"], per_inv["amount"] - per_inv["before"])
    covered = per_inv.reset_index()[["key", "invoice_id", "start_date", "window_end"]]
    cs = covered.merge(steps, on="invoice_id")
    # after the decision day: the step that led to the request was charged either way
    cs = cs[(cs["step_date"] > cs["start_date"]) & (cs["step_date"] < cs["window_end"])]
    out = pd.DataFrame(index=pd.Index(starts["key"], name="key"))
    out["repaid_12m_cents"] = per_inv.groupby("key")["during"].sum()
    out["costs_12m_cents"] = cs.groupby("key")["cost_cents"].sum()
    return out.fillna(0).astype(np.int64)


def arrangement_outcomes(
    tables: dict[str, pd.DataFrame], horizon_days: int = HORIZON_DAYS
) -> pd.DataFrame:
    """Per arrangement: kept within the horizon and euros repaid on its debt within it
    (until the customer's next arrangement, so nothing is counted twice)."""
    arr = tables["arrangements"].sort_values(["customer_id", "start_date"]).reset_index(drop=True)
    arr["next_start"] = arr.groupby("customer_id")["start_date"].shift(-1)
    horizon = pd.Timedelta(days=horizon_days)
    arr["window_end"] = (arr["start_date"] + horizon).where(
        arr["next_start"].isna() | (arr["next_start"] > arr["start_date"] + horizon),
        arr["next_start"],
    )
    arr["observable"] = arr["start_date"] + horizon <= _last_day(tables)
    broken_in = (arr["outcome"] == "broken") & (arr["end_date"] < arr["start_date"] + horizon)
    arr["kept_12m"] = ~broken_in
    arr["kept_final"] = arr["outcome"] == "kept"
    done = debt_outcomes(tables, arr.assign(key=arr["arrangement_id"]))
    return arr.join(done, on="arrangement_id")


def first_request_cohort(
    tables: dict[str, pd.DataFrame], requests: pd.DataFrame, horizon_days: int = HORIZON_DAYS
) -> pd.DataFrame:
    """Each customer's FIRST arrangement request (a plan or a referral) with what followed
    on its debt within the horizon by any route — what the policy achieved on the arrears."""
    first = (
        requests.sort_values(["customer_id", "start_date"])
        .groupby("customer_id", as_index=False)
        .head(1)
        .reset_index(drop=True)
    )
    horizon = pd.Timedelta(days=horizon_days)
    first["key"] = np.arange(len(first))
    first["window_end"] = first["start_date"] + horizon
    first["observable"] = first["window_end"] <= _last_day(tables)
    arr = tables["arrangements"][
        ["customer_id", "start_date", "outcome", "end_date", "term_months"]
    ]
    first = first.merge(arr, on=["customer_id", "start_date"], how="left")
    plan = ~first["referral"]
    broken_in = (first["outcome"] == "broken") & (first["end_date"] < first["window_end"])
    first["kept_12m"] = np.where(plan, ~broken_in, np.nan)
    done = debt_outcomes(tables, first)
    return first.join(done, on="key")


def summarise(arrangements: pd.DataFrame) -> dict[str, float]:
    """Every observable arrangement of a run (later plans included)."""
    o = arrangements[arrangements["observable"]]
    return {
        "arrangements": len(o),
        "keep_rate_12m": float(o["kept_12m"].mean()) if len(o) else float("nan"),
        "kept_final_rate": float(o["kept_final"].mean()) if len(o) else float("nan"),
    }


def summarise_cohort(cohort: pd.DataFrame) -> dict[str, Any]:
    """The first-request cohort of a run: plans, referrals, kept, repaid, costs."""
    o = cohort[cohort["observable"]]
    plans = o[~o["referral"]]
    debt = max(int(o["debt_cents"].sum()), 1)
    return {
        "customers": len(o),
        "debt_eur": float(o["debt_cents"].sum() / 100),
        "plans": len(plans),
        "referrals": int(o["referral"].sum()),
        "referral_share": float(o["referral"].mean()) if len(o) else float("nan"),
        "plans_keep_rate_12m": float(plans["kept_12m"].mean()) if len(plans) else float("nan"),
        "repaid_12m_eur": float(o["repaid_12m_cents"].sum() / 100),
        "repaid_share_of_debt": float(o["repaid_12m_cents"].sum() / debt),
        "plans_repaid_12m_eur": float(plans["repaid_12m_cents"].sum() / 100),
        "referrals_repaid_12m_eur": float(o.loc[o["referral"], "repaid_12m_cents"].sum() / 100),
        "collection_costs_12m_eur": float(o["costs_12m_cents"].sum() / 100),
        "collection_costs_share_of_debt": float(o["costs_12m_cents"].sum() / debt),
        "plans_mean_monthly_eur": float(plans["monthly_cents"].mean() / 100)
        if len(plans)
        else float("nan"),
        "plans_mean_term_months": float(plans["term_months"].mean())
        if len(plans)
        else float("nan"),
    }


def train_bundle(
    config: SimulationConfig, num_threads: int = 0, *, varied_amounts: bool = True
) -> Bundle:
    """Simulate ``config`` (seed A) and train a full candidate bundle on it.

    ``varied_amounts``: the creditor in the training simulation varies plan sizes
    (:class:`VariedArrangementAmounts`) instead of ``debt / 5`` (module doc, step 1).
    """
    from features.labels import LabelConfig
    from training.dataset import build_snapshots, monthly_as_of_dates
    from training.train import train_candidate

    policy = None
    if varied_amounts:
        policy = CollectionPolicy(
            arrangement_monthly=VariedArrangementAmounts(seed=config.seed),
            name="varied_plan_amounts",
        )
    sim = simulate(config, policy=policy)
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
    candidate.bundle.metadata["plan_eval_train_seed"] = config.seed
    candidate.bundle.metadata["plan_eval_train_arrangements"] = (
        "varied_plan_amounts" if varied_amounts else "debt_over_5_months"
    )
    return candidate.bundle


def run_plan_eval(
    *,
    n_customers: int = 20_000,
    months: int = 24,
    train_seed: int = 101,
    eval_seed: int = 202,
    end_date: date = date(2026, 7, 1),
    bundle_path: Path | None = None,
    out: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
    varied_training_amounts: bool = True,
    other_targets: tuple[float, ...] = (),
) -> dict[str, Any]:
    """The whole protocol (module doc); returns (and optionally writes) the report.

    ``other_targets``: also run tijdig with these P(kept) targets instead of the policy's
    (``tijdig_target_0.70`` …), the trade-off between plans kept and customers referred."""
    started = time.perf_counter()
    if bundle_path is not None:
        bundle = load_bundle(str(bundle_path))
    else:
        log(f"training a bundle on simulation seed {train_seed} ({n_customers} customers)")
        bundle = train_bundle(
            SimulationConfig(
                n_customers=n_customers, months=months, seed=train_seed, end_date=end_date
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
        n_customers=n_customers, months=months, seed=eval_seed, end_date=end_date
    )
    population = build_population(config)
    policies: dict[str, Callable[[ArrangementRequest], np.ndarray]] = {
        "debt_over_5_months": debt_over_five_months,
        "largest_agreed": largest_agreed,
        "tijdig": TijdigPlanPolicy(model, policy),
    }
    for target in other_targets:
        variant = replace(policy, target_p_kept=float(target))
        policies[f"tijdig_target_{target:.2f}"] = TijdigPlanPolicy(model, variant)
    report: dict[str, Any] = {
        "train_seed": train_seed if bundle_path is None else None,
        "train_arrangements": bundle.metadata.get("plan_eval_train_arrangements"),
        "bundle": bundle.version,
        "plan_kept_metrics": model.metadata.get("metrics"),
        "plan_kept_version": model.version,
        "plan_policy": policy.to_dict(),
        "eval_seed": eval_seed,
        "n_customers": n_customers,
        "months": months,
        "horizon_days": HORIZON_DAYS,
        "policies": {},
    }
    cohorts: dict[str, pd.DataFrame] = {}
    for name, fn in policies.items():
        t0 = time.perf_counter()
        recorded = RecordedPolicy(fn)
        sim = simulate(
            config,
            policy=CollectionPolicy(arrangement_monthly=recorded, name=name),
            population=population,
        )
        cohort = first_request_cohort(sim.tables, recorded.requests())
        cohorts[name] = cohort
        summary: dict[str, Any] = summarise_cohort(cohort)
        summary["all_arrangements"] = summarise(arrangement_outcomes(sim.tables))
        if "p_kept" in cohort:
            o = cohort[cohort["observable"]]
            plans, refs = o[~o["referral"]], o[o["referral"]]
            summary["plans_mean_p_kept"] = float(plans["p_kept"].mean())
            summary["plans_ece"] = _ece(
                plans["kept_12m"].to_numpy(float), plans["p_kept"].to_numpy(float)
            )
            summary["referral_reasons"] = refs["referral_reason"].value_counts().to_dict()
            summary["referrals_best_p_kept_quartiles"] = [
                round(float(q), 3) for q in refs["best_p_kept"].quantile([0.25, 0.5, 0.75])
            ]
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        report["policies"][name] = summary
        log(f"{name}: {json.dumps(summary, default=str)}")
    report["same_customers"] = same_customers(cohorts)
    log(f"same customers: {json.dumps(report['same_customers'], default=str)}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "plan_eval.json").write_text(
            json.dumps(report, indent=2, default=str), encoding="utf-8"
        )
    return report


def same_customers(cohorts: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The customers whose first request is observable under every policy: plans kept,
    euros repaid and costs charged within 12 months on the same customers. (Their start
    day and debt can differ a little between runs: once answers differ, so do later draws.)"""
    common: pd.Series | None = None
    for frame in cohorts.values():
        ids = frame.loc[frame["observable"], "customer_id"]
        common = ids if common is None else common[common.isin(ids)]
    out: dict[str, Any] = {"customers": 0 if common is None else len(common)}
    if common is None or common.empty:
        return out
    for name, frame in cohorts.items():
        out[name] = summarise_cohort(frame[frame["customer_id"].isin(common)])
    return out


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    from training.plan_kept import expected_calibration_error

    ok = np.isfinite(p)
    return expected_calibration_error(y[ok], p[ok])

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
     P(kept) model → :func:`models.plans.plan_grid`. A referral (no plan reaches the
     target within 18 months) cannot be expressed in the simulator, which always makes
     the arrangement: those customers get the plan with the highest expected repayment
     within 12 months (P(kept)-weighted, :attr:`models.plans.PlanGrid.best_expected`) and
     are reported separately. The API still answers "refer" for them.

3. For every arrangement that started at least 12 months before the end of the data:
   kept within 12 months (not broken by start + 365 days) and euros repaid within 12
   months on the debt it covered (any payment method, until the customer's next
   arrangement so nothing is counted twice).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from training.simulation.observe import observed_event_arrays
from training.simulation.policy import VariedArrangementAmounts
from training.simulator import (
    ArrangementRequest,
    CollectionPolicy,
    SimulationConfig,
    build_population,
    debt_over_five_months,
    simulate,
)

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
class TijdigPlanPolicy:
    """tijdig's plan as a simulator policy; records what it decided for the report."""

    model: PlanKeptModel
    policy: PlanPolicy

    def __post_init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []

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
        pick = np.where(grid.referral, grid.best_expected, grid.choice)
        rows = np.arange(len(pick))
        monthly = grid.monthly_cents[rows, pick]
        for i in rows:
            self.decisions.append(
                {
                    "customer_id": request.customer_id[i],
                    "start_day": day,
                    "referral": bool(grid.referral[i]),
                    "referral_reason": grid.referral_reason[i],
                    "p_kept": float(grid.p_kept[i, pick[i]]),
                    "months": int(grid.terms[pick[i]]),
                }
            )
        return monthly


def arrangement_outcomes(
    tables: dict[str, pd.DataFrame], horizon_days: int = HORIZON_DAYS
) -> pd.DataFrame:
    """Per arrangement: kept within the horizon and euros repaid on its debt within it."""
    arr = tables["arrangements"].copy()
    inv = tables["invoices"][
        ["invoice_id", "customer_id", "issue_date", "due_date", "amount_cents"]
    ]
    pay = tables["payments"][["invoice_id", "paid_at", "amount_cents"]]
    last = max(tables["payments"]["paid_at"].max(), tables["invoices"]["issue_date"].max())
    arr = arr.sort_values(["customer_id", "start_date"]).reset_index(drop=True)
    arr["next_start"] = arr.groupby("customer_id")["start_date"].shift(-1)
    horizon = pd.Timedelta(days=horizon_days)
    arr["window_end"] = (arr["start_date"] + horizon).where(
        arr["next_start"].isna() | (arr["next_start"] > arr["start_date"] + horizon),
        arr["next_start"],
    )
    arr["observable"] = arr["start_date"] + horizon <= last
    broken_in = (arr["outcome"] == "broken") & (arr["end_date"] < arr["start_date"] + horizon)
    arr["kept_12m"] = ~broken_in
    arr["kept_final"] = arr["outcome"] == "kept"
    # the debt it covered: invoices overdue and not fully paid at the start
    pairs = arr[["arrangement_id", "customer_id", "start_date", "window_end"]].merge(
        inv, on="customer_id"
    )
    pairs = pairs[pairs["due_date"] < pairs["start_date"]]
    pp = pairs[["arrangement_id", "invoice_id", "start_date", "window_end", "amount_cents"]].merge(
        pay, on="invoice_id", how="left", suffixes=("", "_paid")
    )
    before = pp["paid_at"] < pp["start_date"]
    during = (pp["paid_at"] >= pp["start_date"]) & (pp["paid_at"] < pp["window_end"])
    pp["before"] = np.where(before, pp["amount_cents_paid"], 0)
    pp["during"] = np.where(during, pp["amount_cents_paid"], 0)
    per_inv = pp.groupby(["arrangement_id", "invoice_id"]).agg(
        amount=("amount_cents", "first"), before=("before", "sum"), during=("during", "sum")
    )
    per_inv = per_inv[per_inv["before"] < per_inv["amount"]]
    per_inv["during"] = np.minimum(per_inv["during"], per_inv["amount"] - per_inv["before"])
    repaid = per_inv.groupby("arrangement_id")["during"].sum()
    arr["repaid_12m_cents"] = arr["arrangement_id"].map(repaid).fillna(0).astype(np.int64)
    return arr


def first_plan_cohort(
    tables: dict[str, pd.DataFrame], horizon_days: int = HORIZON_DAYS
) -> pd.DataFrame:
    """Each customer's FIRST arrangement, repaid on its debt within the horizon by any route
    (the plan, later plans, agency payments): what the policy achieved on the arrears."""
    arr = tables["arrangements"].sort_values(["customer_id", "start_date"])
    first = arr.groupby("customer_id", as_index=False).head(1)
    sub = {**tables, "arrangements": first}
    return arrangement_outcomes(sub, horizon_days)


def summarise(outcomes: pd.DataFrame) -> dict[str, float]:
    o = outcomes[outcomes["observable"]]
    return {
        "arrangements": len(o),
        "customers": int(o["customer_id"].nunique()),
        "debt_eur": float(o["debt_cents"].sum() / 100),
        "keep_rate_12m": float(o["kept_12m"].mean()) if len(o) else float("nan"),
        "kept_final_rate": float(o["kept_final"].mean()) if len(o) else float("nan"),
        "repaid_12m_eur": float(o["repaid_12m_cents"].sum() / 100),
        "repaid_share_of_debt": float(o["repaid_12m_cents"].sum() / max(o["debt_cents"].sum(), 1)),
        "mean_monthly_eur": float(o["monthly_amount_cents"].mean() / 100)
        if len(o)
        else float("nan"),
        "mean_term_months": float(o["term_months"].mean()) if len(o) else float("nan"),
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
) -> dict[str, Any]:
    """The whole protocol (module doc); returns (and optionally writes) the report."""
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
    tijdig = TijdigPlanPolicy(model, policy)
    policies: dict[str, Callable[[ArrangementRequest], np.ndarray]] = {
        "debt_over_5_months": debt_over_five_months,
        "largest_agreed": largest_agreed,
        "tijdig": tijdig,
    }
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
        sim = simulate(
            config,
            policy=CollectionPolicy(arrangement_monthly=fn, name=name),
            population=population,
        )
        outcomes = arrangement_outcomes(sim.tables)
        summary: dict[str, Any] = dict(summarise(outcomes))
        first = first_plan_cohort(sim.tables)
        cohorts[name] = first
        cohort = summarise(first)
        summary.update({f"first_plan_{k}": v for k, v in cohort.items()})
        if name == "tijdig":
            dec = pd.DataFrame(tijdig.decisions)
            dec["start_date"] = pd.to_datetime(dec["start_day"], unit="D")
            joined = outcomes.merge(dec, on=["customer_id", "start_date"], how="left")
            obs = joined[joined["observable"]]
            plans, refs = (
                obs[~obs["referral"].fillna(False).astype(bool)],
                obs[obs["referral"].fillna(False).astype(bool)],
            )
            summary.update(
                {
                    "plans_keep_rate_12m": float(plans["kept_12m"].mean())
                    if len(plans)
                    else float("nan"),
                    "plans_repaid_12m_eur": float(plans["repaid_12m_cents"].sum() / 100),
                    "plans_mean_p_kept": float(plans["p_kept"].mean())
                    if len(plans)
                    else float("nan"),
                    "referrals": len(refs),
                    "referral_share": float(len(refs) / max(len(obs), 1)),
                    "referrals_keep_rate_12m_fallback": float(refs["kept_12m"].mean())
                    if len(refs)
                    else float("nan"),
                    "referrals_repaid_12m_eur": float(refs["repaid_12m_cents"].sum() / 100),
                    "referral_reasons": refs["referral_reason"].value_counts().to_dict(),
                    "plans_ece": _ece(
                        plans["kept_12m"].to_numpy(float), plans["p_kept"].to_numpy(float)
                    ),
                }
            )
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
    """First plans of the customers who got one (observable for 12 months) under every
    policy: keep rate and euros repaid within 12 months on the same customers. (Their start
    day and debt can differ a little between runs: once plans differ, so do later draws.)"""
    keys = ["customer_id"]
    common: pd.DataFrame | None = None
    for frame in cohorts.values():
        k = frame.loc[frame["observable"], keys]
        common = k if common is None else common.merge(k, on=keys)
    out: dict[str, Any] = {"customers": 0 if common is None else len(common)}
    if common is None or common.empty:
        return out
    for name, frame in cohorts.items():
        o = frame.merge(common, on=keys)
        out[name] = {
            "debt_eur": float(o["debt_cents"].sum() / 100),
            "keep_rate_12m": float(o["kept_12m"].mean()),
            "repaid_12m_eur": float(o["repaid_12m_cents"].sum() / 100),
            "repaid_share_of_debt": float(
                o["repaid_12m_cents"].sum() / max(o["debt_cents"].sum(), 1)
            ),
        }
    return out


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    from training.plan_kept import expected_calibration_error

    ok = np.isfinite(p)
    return expected_calibration_error(y[ok], p[ok])

"""Training the pay-later adjustment (:mod:`models.bnpl_adjustment`) on a closed-loop world.

Only where tijdig itself decides does the decline memory vary with the outcomes it should
predict: in a store whose creditor approved every order, every memory is empty. So the
adjustment learns from a population simulated beside the one being evaluated, as the
plan world is for P(kept) (:mod:`training.plan_world`): the naive policy ("approve every
order under EUR 1,000") for the warm-up, then tijdig's policy in the loop with the risk
model it will be used with (:class:`~training.studies.bnpl_eval.policies.TijdigBnplPolicy`,
``keep_inputs``: each decision's probability and memory). The labels: approved orders
with a known outcome (issued at least 120 days before the run's end), reached an agency or
bailiff or not. Declined orders have no outcome; the leak's orders are approved ones, so
they are in the labelled set. Nothing in the world is tuned toward a goal.

Used by ``tijdig bnpl-eval`` (training world: the risk model's own training seed, 101;
measured on seed 42). ``tijdig train`` does not build it (yet): see
``docs/experiments/bnpl-issue21.md``, "The adjustment, built".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from models.bnpl import BnplPolicy
from models.bnpl_adjustment import TERM_NAMES, BnplAdjustment, fit_adjustment, memory_columns_of
from training.simulation import PopulationState, SimulationConfig, build_population


class NoOutcomesError(ValueError):
    """The adjustment's training world has no approved order of one of the outcomes."""


def train_adjustment(
    config: SimulationConfig,
    predict: Callable[[np.ndarray], np.ndarray],
    policy: BnplPolicy,
    start: pd.Timestamp,
    population: PopulationState | None = None,
    log: Callable[[str], None] = print,
) -> tuple[BnplAdjustment, dict[str, Any]]:
    """Simulate ``config`` with tijdig (``predict``, ``policy``) deciding pay-later from
    ``start`` and fit the adjustment on its approved orders with a known outcome. Returns
    the adjustment and what it was trained on (orders, at an agency, customers declined
    before, seconds)."""
    from training.studies.bnpl_eval.policies import TijdigBnplPolicy
    from training.studies.bnpl_eval.run import simulate_orders

    t0 = time.perf_counter()
    log(
        f"pay-later adjustment: simulating seed {config.seed} ({config.n_customers:,} "
        f"customers) with tijdig in the loop from {start.date()}"
    )
    tijdig = TijdigBnplPolicy(predict, policy, start=start.date(), keep_inputs=True)
    population = build_population(config) if population is None else population
    _, orders = simulate_orders(config, tijdig, "tijdig_adjustment_world", population)
    decided = orders[orders["tijdig"].astype(bool)].reset_index(drop=True)
    rows = [m for part in tijdig.inputs for m in part["memory"]]
    p = np.concatenate([part["p"] for part in tijdig.inputs]) if rows else np.zeros(0)
    if len(rows) != len(decided):
        raise ValueError("the loop's decisions and their recorded inputs do not match")
    labelled = (decided["approved"] & decided["matured"]).to_numpy(bool)
    memory = {k: v[labelled] for k, v in memory_columns_of(rows).items()}
    y = decided["collection"].to_numpy(bool)[labelled]
    declined_before = (memory["declines_90d"] > 0) | (memory["situation_declines_365d"] > 0)
    seconds_loop = time.perf_counter() - t0
    if not 0 < int(y.sum()) < len(y):
        raise NoOutcomesError(
            f"the adjustment's world (seed {config.seed}, {config.n_customers:,} customers) "
            f"has {int(y.sum())} of {len(y):,} approved orders with a known outcome at an "
            "agency: nothing to fit on (a larger world or another --adjustment-seed)"
        )
    adjustment = fit_adjustment(
        p[labelled],
        memory,
        y,
        metadata={
            "world_seed": config.seed,
            "world_customers": config.n_customers,
            "tijdig_from": str(start.date()),
            "policy_version": policy.version,
            "policy_cutoff": policy.risk_cutoff,
        },
    )
    summary: dict[str, Any] = {
        "world_seed": config.seed,
        "customers": config.n_customers,
        "tijdig_from": str(start.date()),
        "orders_decided": len(decided),
        "approved_with_known_outcome": int(labelled.sum()),
        "reached_agency": int(y.sum()),
        "declined_before_share": float(declined_before.mean()) if len(y) else float("nan"),
        "collection_rate_declined_before": float(y[declined_before].mean())
        if declined_before.any()
        else float("nan"),
        "collection_rate_others": float(y[~declined_before].mean())
        if (~declined_before).any()
        else float("nan"),
        "intercept": adjustment.intercept,
        "logit_coef": adjustment.logit_coef,
        "coefs": dict(zip(TERM_NAMES, adjustment.coefs, strict=True)),
        "converged": adjustment.metadata.get("converged"),
        "loop_seconds": round(seconds_loop, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    log(
        f"pay-later adjustment: fitted on {summary['approved_with_known_outcome']:,} approved "
        f"orders ({summary['reached_agency']} at an agency) in {summary['seconds']:.0f} s"
    )
    return adjustment, summary

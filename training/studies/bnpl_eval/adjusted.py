"""bnpl-eval, step 6: the same figures with the pay-later adjustment (issue 21, the leak).

1. Train the adjustment (:func:`training.bnpl_adjustment.train_adjustment`) on a closed
   loop of the training population (seed A by default, the risk model's own training
   population; never the evaluation population) with tijdig's chosen policy deciding.
2. The cut-off then applies to the adjusted probability, so the policy's rule picks it
   again (:func:`~models.bnpl_operating_point.choose_operating_point`) on the replay's
   curve with the adjustment, for the chosen variant only, against the same rules-alone
   yardstick (the rules alone have no cut-off, so no adjustment).
3. The replay's and the closed loop's figures with it, the goal, and the leak: orders
   approved only in the loop, reaching an agency against tijdig's other approvals (the
   issue's ratio, as defined), beside the margin yardstick (the same ratio of the
   probabilities the cut-off applied to, and the adjustment's fitted P(agency) of those
   orders against what they did).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from models.bnpl_operating_point import choose_operating_point
from training.bnpl_adjustment import train_adjustment
from training.bnpl_replay import CUTOFFS
from training.simulation import SimulationConfig


def adjusted_evidence(
    bundle: Any,
    replay: Callable[..., dict[str, float]],
    rules_only: dict[str, float],
    world: SimulationConfig,
    start: pd.Timestamp,
    loop_args: dict[str, Any] | None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Any]:
    """Step 6 (module doc) for ``bundle`` (its policy: the one the rule chose without the
    adjustment). ``replay(policy, **kw)``: the evaluation replay; ``rules_only``: its
    rules-alone figures; ``world``: the adjustment's training world; ``loop_args``: what
    the closed loop needs (``config``, ``naive``, ``population``, ``orders``, the loop's
    ``rules_only``), None to skip it. Returns the report section and the bundle with the
    adjustment and its cut-off."""
    from training.studies.bnpl_eval.run import goal_figures, loop_vs_replay, run_closed_loop

    t0 = time.perf_counter()
    policy = bundle.bnpl_policy
    adjustment, trained = train_adjustment(
        world, bundle.predict_proba, policy, start, population=None, log=log
    )
    op = policy.operating_point
    cutoffs = tuple(op.get("cutoffs", CUTOFFS))
    log(f"pay-later adjustment: replaying {len(cutoffs)} cut-offs on the adjusted probability")
    curve = [
        {"cutoff": c, **replay(policy.with_cutoff(min(c, 0.999)), adjustment=adjustment)}
        for c in cutoffs
    ]
    chosen = (
        choose_operating_point(curve, rules_only, op)
        if op
        else {"cutoff": policy.risk_cutoff, "meets_rule": None}
    )
    adjusted_policy = policy.with_cutoff(min(chosen["cutoff"], 0.999))
    declines: dict[str, dict[str, float]] = {}
    replayed = np.zeros(len(loop_args["orders"]) if loop_args else 0, dtype=bool)
    configured = replay(
        adjusted_policy,
        adjustment=adjustment,
        declines=declines,
        **({"offered": replayed} if loop_args else {}),
    )
    section: dict[str, Any] = {
        "training": trained,
        "operating_point": chosen,
        "curve": curve,
        "tijdig_configured_policy": {"cutoff": adjusted_policy.risk_cutoff, **configured},
        "declines_configured": declines,
        "goal": goal_figures(configured, rules_only),
    }
    log(f"pay-later adjustment: operating point {chosen}")
    if loop_args is not None:
        loop, loop_orders = run_closed_loop(
            loop_args["config"],
            bundle.predict_proba,
            adjusted_policy,
            start,
            naive=loop_args["naive"],
            population=loop_args["population"],
            log=log,
            adjustment=adjustment,
        )
        loop.update(loop_vs_replay(loop_orders, loop_args["orders"], replayed))
        loop["rules_only"] = loop_args["rules_only"]
        loop["goal"] = goal_figures(loop["tijdig_configured_policy"], loop["rules_only"])
        loop.pop("treated_alike", None)  # the same check as without; kept there
        section["closed_loop"] = loop
    section["seconds"] = round(time.perf_counter() - t0, 1)
    components = {**getattr(bundle, "components", {}), "bnpl_adjustment": adjustment}
    return section, replace(bundle, bnpl_policy=adjusted_policy, components=components)

"""Evidence for the pay-later policy: approval rate vs orders that end in collection.

Protocol (one run):

1. Train the early-warning model on one simulated population (seed A) — or take a
   bundle — so the evaluation population is never seen in training.
2. Simulate another population (seed B) forward under the naive policy "approve every
   pay-later order under EUR 1,000", so every order's outcome is observed.
3. Replay tijdig's decision for every order placed after the warm-up, day by day:
   features as of the order day (point in time: the order itself and everything after it
   unseen), the model's probability, the open-collection-case flag, the policy of the
   bundle, and the decline memory of the replay's own earlier answers
   (``models.decline_memory``, as the service reads its decision log).
4. Compare, on the same orders: approval rate, the share of approved orders whose
   invoice reached a collection agency, pay-later lent and lost. The yardstick is the
   rules alone (issue 5's policy without a risk cut-off, decline memory or growing
   limits). Sweep the risk cut-off for the trade-off curve; the policy's stated rule
   (``operating_point`` in the policy) picks the cut-off in force from it.
5. Closed loop (``closed_loop``): simulate seed B forward again with tijdig deciding in
   the simulator from the end of the warm-up (the naive policy before it, so both runs
   share their first months): each day, the ordering customers' events observed so far,
   features as of the order day, the same decision code as the replay. Customers place
   the same orders at their own rate whatever the answers; a declined order is not lent.
   The rules alone run forward the same way. Per run: approval rate and approved orders
   that reached an agency or bailiff after the warm-up, pay-later lent and lost, and for
   the whole population the customers with any claim at an agency or bailiff and the
   collection costs (WIK, bailiff) charged.
6. The pay-later adjustment (``adjustment``, :mod:`models.bnpl_adjustment`): trained on a
   closed loop of a third population (``adjustment_seed``, default
   :data:`ADJUSTMENT_SEED`: on the risk model's own training population its probabilities
   are in sample and the memory has little left to explain)
   with the chosen policy deciding; the cut-off chosen again by the same rule on the
   adjusted probability; the replay's and the closed loop's figures, the goal and the
   leak with it (:mod:`training.studies.bnpl_eval.adjusted`), beside those without.

In the replay (steps 3-4) an order tijdig declines is simply not lent; its outcome under
approval is what the naive run observed. Knock-on effects of a decline are not in those
figures, either way: less debt and fewer later arrears, but also a customer whose history
looks better *because* earlier orders were declined, and whose later orders tijdig then
approves. The closed loop has both (the customer's later history follows tijdig's
answers); ``same_decision_as_replay_share`` says how often it decides an order as the
replay does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.events import EventArrays
from features.labels import LabelConfig
from models.bnpl import BnplPolicy
from models.bnpl_adjustment import BnplAdjustment
from models.bundle import Bundle
from training.bnpl_replay import (
    choose_policy,
    decline_table,
    evaluate_policy,
    money,
    order_days,
    order_inputs,
    rates,
)
from training.dataset import build_snapshots, monthly_as_of_dates
from training.simulation import (
    PopulationState,
    SimulationConfig,
    SimulationResult,
    build_population,
    simulate,
)
from training.simulation.policy import BnplRequest, CollectionPolicy
from training.studies.bnpl_eval.policies import (
    NAIVE_MAX_ORDER_CENTS,
    BnplOrderLog,
    TijdigBnplPolicy,
    approve_under_1000,
)
from training.studies.bnpl_eval.report import (
    approved_only_in_loop,
    log_to_mlflow,
    order_table,
    plot_tradeoff,
    run_figures,
    thin_file_growth,
    treated_alike,
)
from training.train import train_candidate

#: the pay-later adjustment's closed-loop world: neither the risk model's training seed
#: (101) nor the evaluated one (42), so the adjustment learns what the memory says beyond
#: out-of-sample probabilities (docs/experiments/bnpl-issue21.md, 5,000-customer runs)
ADJUSTMENT_SEED = 7
WARMUP_MONTHS = 6


def goal_figures(tijdig: dict[str, float], rules_only: dict[str, float]) -> dict[str, float]:
    """Issue 21's goal on one pair of runs: tijdig's approval in points below the rules
    alone (at most 3) and the reduction of approved orders reaching an agency (>= 30 %)."""
    return {
        "approval_points_below_rules_only": 100
        * (rules_only["approval_rate"] - tijdig["approval_rate"]),
        "collection_reduction_vs_rules_only": 1
        - tijdig["collection_rate_approved"] / rules_only["collection_rate_approved"]
        if rules_only["collection_rate_approved"]
        else float("nan"),
    }


def train_bundle(n_customers: int, months: int, seed: int) -> Bundle:
    result = simulate(SimulationConfig(n_customers=n_customers, months=months, seed=seed))
    events = EventArrays.from_frames(result.tables)
    labels = LabelConfig()
    snaps = build_snapshots(events, monthly_as_of_dates(events, labels), labels)
    return train_candidate(events, snaps, labels).bundle


def _positions(events: EventArrays) -> dict[str, int]:
    return {cid: i for i, cid in enumerate(events.customer_ids.tolist())}


def order_features(events: EventArrays, orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Features and open-case flags as of each order's day (point in time)."""
    cust = orders["customer_id"].map(_positions(events)).to_numpy()
    return order_inputs(events, cust, order_days(orders))


def simulate_orders(
    config: SimulationConfig,
    approve: Callable[[BnplRequest], np.ndarray],
    name: str,
    population: PopulationState | None = None,
) -> tuple[SimulationResult, pd.DataFrame]:
    """Simulate ``config`` with ``approve`` deciding pay-later orders (current practice
    otherwise): the result and every order placed, with its outcome (``collection``: it
    was approved and its invoice reached an agency or bailiff)."""
    recorder = BnplOrderLog(approve)
    result = simulate(
        config,
        policy=replace(CollectionPolicy.current_practice(), approve_bnpl=recorder, name=name),
        population=population,
    )
    return result, placed_orders(result.tables, recorder.orders())


def placed_orders(tables: dict[str, pd.DataFrame], orders: pd.DataFrame) -> pd.DataFrame:
    """``orders`` (placed, approved or not) joined to their invoices: ``invoice_id`` and
    ``collection`` (False for a declined order: it was never lent). One order per customer
    and day at most (the simulator draws one per customer per day)."""
    invoices = order_table(tables)[
        ["customer_id", "issue_date", "invoice_id", "collection", "lost_cents", "matured"]
    ]
    if invoices.duplicated(["customer_id", "issue_date"]).any():
        raise ValueError("more than one pay-later order of a customer on one day")
    out = orders.merge(invoices, on=["customer_id", "issue_date"], how="left", validate="1:1")
    if (out["invoice_id"].notna() != out["approved"]).any():
        raise ValueError("approved orders and pay-later invoices do not match")
    out["collection"] = out["collection"].astype("boolean").fillna(False).astype(bool)
    out["matured"] = out["matured"].astype("boolean").fillna(False).astype(bool)
    out["lost_cents"] = out["lost_cents"].fillna(0).astype(np.int64)
    return out


def run_closed_loop(
    config: SimulationConfig,
    predict: Callable[[np.ndarray], np.ndarray],
    policy: BnplPolicy,
    start: pd.Timestamp,
    naive: tuple[SimulationResult, pd.DataFrame],
    population: PopulationState,
    log: Callable[[str], None] = print,
    adjustment: BnplAdjustment | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Simulate ``config`` (``population``) forward under tijdig's policy in the loop (from
    ``start``; the naive policy before it) and compare it with the naive run ``naive`` (its
    result and :func:`simulate_orders`' orders): the orders after ``start`` and the
    population. Customers place the same orders in both runs (the order stream does not
    depend on the answers); a declined order does not become an invoice. Returns the
    report and tijdig's orders after ``start`` (approved, probability, declined_by).
    ``adjustment``: the bundle's pay-later adjustment in tijdig's decisions (None: none)."""
    naive_result, naive_orders = naive
    with_adjustment = "" if adjustment is None else " with the pay-later adjustment"
    log(
        f"closed loop: simulating seed {config.seed} under tijdig's policy{with_adjustment} "
        f"from {start.date()}"
    )
    t0 = time.perf_counter()
    tijdig = TijdigBnplPolicy(predict, policy, start=start.date(), adjustment=adjustment)
    result, orders = simulate_orders(config, tijdig, "tijdig_bnpl", population)
    seconds = time.perf_counter() - t0
    log(f"closed loop: {seconds:.0f} s ({tijdig.seconds:.0f} s in tijdig's decisions)")
    keys = ["customer_id", "issue_date", "amount_cents"]
    after = orders[orders["issue_date"] >= start].reset_index(drop=True)
    same = after[keys].merge(naive_orders[[*keys, "collection"]], how="left", on=keys)
    if same["collection"].isna().any() or len(after) != int(
        (naive_orders["issue_date"] >= start).sum()
    ):
        raise ValueError("the two runs placed different orders")
    naive_figures = run_figures(naive_result.tables, naive_orders, start)
    tijdig_figures = run_figures(result.tables, orders, start)
    report: dict[str, Any] = {
        "tijdig_from": str(start.date()),
        "naive_approve_under_1000": naive_figures,
        "tijdig_configured_policy": {"cutoff": policy.risk_cutoff, **tijdig_figures},
        # why tijdig declined in the loop; how often those orders reached an agency when the
        # naive run lent them
        "declines_configured": decline_table(
            [list(c) for c in after["declined_by"]], same["collection"].to_numpy(bool)
        ),
        # customers every order of whom got the same answer in both runs: their histories
        # must be the same (customers_with_another_history 0), and so must their costs
        "treated_alike": treated_alike(naive_result, naive_orders, result, orders, start),
        "seconds": round(seconds, 1),
        "decision_seconds": round(tijdig.seconds, 1),
    }
    if naive_figures["collection_rate_approved"]:
        report["reduction_vs_naive"] = (
            1
            - tijdig_figures["collection_rate_approved"] / naive_figures["collection_rate_approved"]
        )
    return report, after


def loop_vs_replay(
    loop_orders: pd.DataFrame, orders: pd.DataFrame, replayed: np.ndarray
) -> dict[str, Any]:
    """The same orders decided in the loop and in the replay (``replayed``: the replay's
    answers, one per row of ``orders``; features differ where earlier declines changed
    the customer's history): how often the answers agree, and the orders approved only
    in the loop (the leak) with the issue's ratio and the margin yardstick."""
    both = loop_orders.merge(
        orders[["customer_id", "issue_date"]].assign(replayed=replayed),
        on=["customer_id", "issue_date"],
        validate="1:1",
    )
    only = approved_only_in_loop(both)
    only["collection_rate_ratio"] = (
        only["collection_rate"] / only["collection_rate_other_approvals"]
        if only["collection_rate_other_approvals"]
        else float("nan")
    )
    return {
        "same_decision_as_replay_share": float((both["approved"] == both["replayed"]).mean())
        if len(both)
        else float("nan"),
        "approved_only_in_loop": only,
    }


def _with_elapsed(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` with the seconds since the run started after each line (a progress line
    per stage, so a long run shows where it is)."""
    t0 = time.perf_counter()
    return lambda text: log(f"{text} [{time.perf_counter() - t0:.0f} s]")


def run_bnpl_eval(
    n_customers: int = 20_000,
    months: int = 24,
    train_seed: int = 101,
    eval_seed: int = 42,
    bundle_path: Path | None = None,
    out: Path | None = None,
    mlflow_uri: str | None = None,
    log: Callable[[str], None] = print,
    closed_loop: bool = True,
    adjustment: bool = True,
    adjustment_seed: int | None = None,
) -> dict[str, Any]:
    """The whole protocol (module doc); ``closed_loop=False`` skips step 5,
    ``adjustment=False`` step 6 (``adjustment_seed``: its training world's seed, default
    :data:`ADJUSTMENT_SEED`)."""
    log = _with_elapsed(log)
    if bundle_path is not None:
        bundle = Bundle.load(bundle_path)
        log(f"bundle {bundle.version} from {bundle_path}")
    else:
        log(f"training the risk model on seed {train_seed} ({n_customers:,} customers)")
        bundle = train_bundle(n_customers, months, train_seed)
    log(f"simulating seed {eval_seed} under 'approve every order under EUR 1,000'")
    config = SimulationConfig(n_customers=n_customers, months=months, seed=eval_seed)
    population = build_population(config)
    result, placed = simulate_orders(
        config, approve_under_1000, "approve_under_1000", population=population
    )
    events = EventArrays.from_frames(result.tables)
    start = pd.Timestamp(config.period()[0]) + pd.DateOffset(months=WARMUP_MONTHS)
    orders = order_table(result.tables)
    orders = orders[orders["issue_date"] >= start].reset_index(drop=True)
    log(f"{len(orders):,} orders after the warm-up; features as of each order day")
    cust = orders["customer_id"].map(_positions(events)).to_numpy()
    X, cases = order_inputs(events, cust, order_days(orders))
    p = bundle.predict_proba(X)
    birth_years = events.customers["birth_year"][cust]

    naive_offer = orders["amount_cents"].to_numpy() < NAIVE_MAX_ORDER_CENTS
    naive = {**rates(naive_offer, orders["collection"].to_numpy()), **money(orders, naive_offer)}

    def replay(policy: BnplPolicy, **kw: Any) -> dict[str, float]:
        return evaluate_policy(policy, orders, X, p, cases, birth_years, cust=cust, **kw)

    # the yardstick (the rules alone), the trade-off curve of the full policy (rules,
    # decline memory, growing limits) and the operating point its stated rule picks from
    # it, among the variants the rule leaves to the evidence: the code training runs too
    op = bundle.bnpl_policy.operating_point
    choice = choose_policy(bundle.bnpl_policy, replay, log)
    rules_policy = bundle.bnpl_policy.rules_only()
    rules_only, rule_declines = choice.rules_only, choice.rules_only_declines
    curve, variants, chosen = choice.curve, choice.variants, choice.chosen
    bundle = replace(bundle, bnpl_policy=choice.policy)
    log(f"operating point: {chosen}")
    declines: dict[str, dict[str, float]] = {}
    replayed = np.zeros(len(orders), dtype=bool)
    configured = replay(bundle.bnpl_policy, declines=declines, offered=replayed)
    # the same orders ranked by the model alone (no hard rules), and at the rules' approval
    collection = orders["collection"].to_numpy()
    risk_only = []
    for share in (0.0, 0.02, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4):
        threshold = np.quantile(p, 1 - share) if share else np.inf
        offer = p < threshold
        risk_only.append({"declined_share": share, **rates(offer, collection)})
    at_rules = p < np.quantile(p, rules_only["approval_rate"])
    risk_only_at_rules = {**rates(at_rules, collection), **money(orders, at_rules)}
    perfect = min(1.0, 0.05 * naive["orders"] / max(naive["approved_to_collection"], 1))
    report: dict[str, Any] = {
        "protocol": __doc__.split("\n\n", 1)[1] if __doc__ else "",
        "customers": n_customers,
        "train_seed": train_seed,
        "eval_seed": eval_seed,
        "model_version": bundle.version,
        "policy_version": bundle.bnpl_policy.version,
        "operating_point_rule": op,
        "operating_point": chosen,
        "naive_approve_under_1000": naive,
        "rules_only": rules_only,
        "tijdig_configured_policy": {"cutoff": bundle.bnpl_policy.risk_cutoff, **configured},
        "risk_only_at_rules_only_approval": risk_only_at_rules,
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
    report["goal"] = goal_figures(configured, rules_only)
    # every variant's curve and chosen point; "curve" is the policy in force's
    report["operating_point_variants"] = variants
    for name, point in (("configured", configured), ("rules_only", rules_only)):
        report[f"reduction_vs_naive_{name}"] = (
            1 - point["collection_rate_approved"] / naive["collection_rate_approved"]
        )
    if closed_loop:
        loop, loop_orders = run_closed_loop(
            config,
            bundle.predict_proba,
            bundle.bnpl_policy,
            start,
            naive=(result, placed),
            population=population,
            log=log,
        )
        loop.update(loop_vs_replay(loop_orders, orders, replayed))
        loop["thin_file"] = thin_file_growth(loop_orders)
        # the yardstick forward too: the rules alone deciding in the loop
        log("closed loop: the rules alone")
        rules_loop = TijdigBnplPolicy(bundle.predict_proba, rules_policy, start=start.date())
        rules_result, rules_orders = simulate_orders(config, rules_loop, "rules_only", population)
        loop["rules_only"] = run_figures(rules_result.tables, rules_orders, start)
        loop["goal"] = goal_figures(loop["tijdig_configured_policy"], loop["rules_only"])
        report["closed_loop"] = loop
    adjusted_bundle = None
    if adjustment:
        from training.bnpl_adjustment import NoOutcomesError
        from training.studies.bnpl_eval.adjusted import adjusted_evidence

        try:
            report["pay_later_adjustment"], adjusted_bundle = adjusted_evidence(
                bundle,
                replay,
                rules_only,
                SimulationConfig(
                    n_customers=n_customers,
                    months=months,
                    seed=ADJUSTMENT_SEED if adjustment_seed is None else adjustment_seed,
                ),
                start,
                loop_args=None
                if not closed_loop
                else {
                    "config": config,
                    "naive": (result, placed),
                    "population": population,
                    "orders": orders,
                    "rules_only": report["closed_loop"]["rules_only"],
                },
                log=log,
            )
        except NoOutcomesError as why:  # a small world: the rest of the evidence stands
            report["pay_later_adjustment"] = {"skipped": str(why)}
            log(f"pay-later adjustment skipped: {why}")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bnpl_eval.json").write_text(json.dumps(report, indent=2, default=str))
        plot = plot_tradeoff(
            curve,
            naive,
            out / "bnpl_tradeoff.png",
            risk_only,
            rules_only,
            report["tijdig_configured_policy"],
        )
        bundle.save(out / "bundle")
        if adjusted_bundle is not None:  # the same bundle with the adjustment and its cut-off
            adjusted_bundle.save(out / "bundle-adjusted")
        log(f"wrote {out / 'bnpl_eval.json'} and {plot}")
    if mlflow_uri:
        log_to_mlflow(mlflow_uri, report, curve, naive)
    return report

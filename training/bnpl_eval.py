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
5. Closed loop (``closed_loop``): simulate seed B forward again with tijdig deciding in
   the simulator from the end of the warm-up (the naive policy before it, so both runs
   share their first months): each day, the ordering customers' events observed so far,
   features as of the order day, the same decision code as the replay. Customers place
   the same orders at their own rate whatever the answers; a declined order is not lent.
   Per run: approval rate and approved orders that reached an agency or bailiff after the
   warm-up, and for the whole population the customers with any claim at an agency or
   bailiff and the collection costs (WIK, bailiff) charged.

In the replay (steps 3-4) an order tijdig declines is simply not lent; its outcome under
approval is what the naive run observed. Knock-on effects of a decline are not in those
figures, either way: less debt and fewer later arrears, but also a customer whose history
looks better *because* earlier orders were declined, and whose later orders tijdig then
approves. The closed loop has both (the customer's later history follows tijdig's
answers); ``same_decision_as_replay_share`` says how often it decides an order as the
replay does.
"""

from __future__ import annotations

import argparse
import json
import tempfile
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
from features.labels import LabelConfig
from models.bnpl import AgeCheck, BnplDecision, BnplPolicy, decide, open_collection_cases
from models.bundle import Bundle
from training.dataset import build_snapshots, monthly_as_of_dates
from training.simulation import (
    PopulationState,
    SimulationConfig,
    SimulationResult,
    build_population,
    simulate,
)
from training.simulation.observe import observed_event_arrays
from training.simulation.policy import BnplRequest, CollectionPolicy
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


def _positions(events: EventArrays) -> dict[str, int]:
    return {cid: i for i, cid in enumerate(events.customer_ids.tolist())}


def _order_days(orders: pd.DataFrame) -> np.ndarray:
    return np.array([to_day(d) for d in orders["issue_date"]], dtype=np.int64)


def order_features(events: EventArrays, orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Features and open-case flags as of each order's day (point in time)."""
    cust = orders["customer_id"].map(_positions(events)).to_numpy()
    return order_inputs(events, cust, _order_days(orders))


def order_inputs(
    events: EventArrays, cust: np.ndarray, day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Features and open-case flags of orders by customers ``cust`` (positions in
    ``events``) on days ``day`` (day numbers), each as of its own day: only events dated
    before the order day count. The replay and the closed loop both come here.

    A customer may order many times; round k takes every customer's k-th order, so each
    round is one columnar call with a per-customer as_of.
    """
    cust = np.asarray(cust, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    rank = pd.Series(cust).groupby(cust).cumcount().to_numpy()
    X = np.empty((len(cust), 0))
    cases = np.zeros(len(cust), dtype=bool)
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        rows = np.flatnonzero(rank == k)
        as_of = np.full(events.n, day.min(), dtype=np.int64)
        as_of[cust[rows]] = day[rows]
        Xk = build_features(events, as_of)
        if X.shape[1] == 0:
            X = np.full((len(cust), Xk.shape[1]), np.nan)
        X[rows] = Xk[cust[rows]]
        cases[rows] = open_collection_cases(events, as_of)[cust[rows]]
    return X, cases


def order_decision(
    policy: BnplPolicy,
    *,
    amount_cents: int,
    on: date,
    features: np.ndarray,
    probability: float,
    open_case: bool,
    birth_year: float,
) -> BnplDecision:
    """tijdig's decision on one simulated order: the one call of :func:`models.bnpl.decide`
    that the replay and the closed loop share. The simulator knows a birth year, not a
    birth date: the age is taken as on 1 July of that year (verified)."""
    born = date(int(birth_year), 7, 1) if np.isfinite(birth_year) else None
    return decide(
        policy,
        order_eur=amount_cents / 100,
        currency="EUR",
        age=AgeCheck(verified=born is not None, birth_date=born, method="simulated"),
        on=on,
        features=features,
        probability=probability,
        open_case=open_case,
    )


def decide_orders(
    policy: BnplPolicy,
    amount_cents: np.ndarray,
    days: list[date],
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
) -> list[BnplDecision]:
    """:func:`order_decision` for each order (row ``i`` of every argument)."""
    return [
        order_decision(
            policy,
            amount_cents=int(amount_cents[i]),
            on=days[i],
            features=X[i],
            probability=float(p[i]),
            open_case=bool(cases[i]),
            birth_year=float(birth_years[i]),
        )
        for i in range(len(amount_cents))
    ]


def decline_codes(decisions: list[BnplDecision]) -> list[list[str]]:
    """The declining reason codes of each decision (most decisive first)."""
    return [[r.code.value for r in d.reasons if r.declines] for d in decisions]


def decline_table(
    codes: list[list[str]], collection: np.ndarray | None
) -> dict[str, dict[str, float]]:
    """Per decline reason: the share of the orders it declines, the share it alone declines
    and, with ``collection`` (per order: did it reach an agency when approved?), how often
    the orders it declines did."""
    by_code: dict[str, list[int]] = {}
    alone: dict[str, int] = {}
    for i, row in enumerate(codes):
        for code in row:
            by_code.setdefault(code, []).append(i)
        if len(row) == 1:
            alone[row[0]] = alone.get(row[0], 0) + 1
    n = max(len(codes), 1)
    table: dict[str, dict[str, float]] = {}
    for code, rows in sorted(by_code.items(), key=lambda kv: -len(kv[1])):
        table[code] = {
            "declined_share": len(rows) / n,
            "declined_alone_share": alone.get(code, 0) / n,
        }
        if collection is not None:
            table[code]["collection_rate_declined"] = float(collection[rows].mean())
    return table


def evaluate_policy(
    policy: BnplPolicy,
    orders: pd.DataFrame,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    declines: dict[str, dict[str, float]] | None = None,
    offered: np.ndarray | None = None,
) -> dict[str, float]:
    """Approval and collection rates of ``policy`` on the orders. With ``declines`` given,
    it is filled per decline reason: the share of orders it declines, the share it alone
    declines, and how often those orders reached an agency under the naive run. With
    ``offered`` (a bool array, one per order) given, it is filled with the decisions."""
    days = [ts.date() for ts in orders["issue_date"]]
    decisions = decide_orders(
        policy, orders["amount_cents"].to_numpy(), days, X, p, cases, birth_years
    )
    offer = np.array([d.offer for d in decisions], dtype=bool)
    collection = orders["collection"].to_numpy()
    if declines is not None:
        declines.update(decline_table(decline_codes(decisions), collection))
    if offered is not None:
        offered[:] = offer
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


@dataclass
class TijdigBnplPolicy:
    """tijdig's pay-later decision as the simulator's policy (the closed loop).

    For the day's orders: the ordering customers' events observed so far
    (``request.observed()``: nothing of the day's orders or later), features and the
    open-case flag as of the order day (:func:`order_inputs`), the model's probability
    (``predict``), the age from the birth year, and :func:`order_decision` — the code path
    of the replay. Before ``start`` (the warm-up) ``before_start`` answers instead, so
    the world up to the warm-up is the naive run's.
    """

    predict: Callable[[np.ndarray], np.ndarray]
    policy: BnplPolicy
    start: date | None = None
    before_start: Callable[[BnplRequest], np.ndarray] = approve_under_1000
    keep_inputs: bool = False  # keep each decision's inputs (X, p, open case, birth year)

    def __post_init__(self) -> None:
        self.last_details: pd.DataFrame | None = None
        self.inputs: list[dict[str, np.ndarray]] = []
        self.seconds = 0.0

    def __call__(self, request: BnplRequest) -> np.ndarray:
        n = len(request.customer_index)
        if self.start is not None and request.day < self.start:
            self.last_details = pd.DataFrame(
                {"tijdig": np.zeros(n, bool), "probability": np.full(n, np.nan)}
            ).assign(declined_by=pd.Series([()] * n, dtype=object))
            return np.asarray(self.before_start(request), dtype=bool)
        if request.observed is None:
            raise ValueError("the simulator did not expose observed events")
        t0 = time.perf_counter()
        customers, position = np.unique(request.customer_index, return_inverse=True)
        events = observed_event_arrays(request.population, request.observed(), customers)
        X, cases = order_inputs(events, position, np.full(n, to_day(request.day)))
        p = np.asarray(self.predict(X), dtype=np.float64)
        birth_years = events.customers["birth_year"][position]
        decisions = decide_orders(
            self.policy, request.amount_cents, [request.day] * n, X, p, cases, birth_years
        )
        offer = np.array([d.offer for d in decisions], dtype=bool)
        codes = pd.Series([tuple(c) for c in decline_codes(decisions)], dtype=object)
        self.last_details = pd.DataFrame({"tijdig": np.ones(n, bool), "probability": p}).assign(
            declined_by=codes
        )
        if self.keep_inputs:
            self.inputs.append(
                {"X": X, "p": p, "open_case": cases, "birth_year": birth_years, "offer": offer}
            )
        self.seconds += time.perf_counter() - t0
        return offer


@dataclass
class BnplOrderLog:
    """A pay-later policy that records every order placed and its answer (with the
    policy's ``last_details``, when it has them)."""

    policy: Callable[[BnplRequest], np.ndarray]

    def __post_init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def __call__(self, request: BnplRequest) -> np.ndarray:
        ok = np.asarray(self.policy(request), dtype=bool)
        part = pd.DataFrame(
            {
                "customer_id": np.asarray(request.customer_id),
                "issue_date": pd.Timestamp(request.day),
                "amount_cents": np.asarray(request.amount_cents, dtype=np.int64),
                "approved": ok,
            }
        )
        details = getattr(self.policy, "last_details", None)
        if details is not None:
            part = pd.concat([part, details.reset_index(drop=True)], axis=1)
        self._parts.append(part)
        return ok

    def orders(self) -> pd.DataFrame:
        """Every order placed (approved or not), in the order of the run."""
        if not self._parts:
            return pd.DataFrame(
                {
                    "customer_id": pd.Series(dtype=object),
                    "issue_date": pd.Series(dtype="datetime64[ns]"),
                    "amount_cents": pd.Series(dtype=np.int64),
                    "approved": pd.Series(dtype=bool),
                }
            )
        orders = pd.concat(self._parts, ignore_index=True)
        return orders.assign(issue_date=orders["issue_date"].astype("datetime64[ns]"))


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
    invoices = order_table(tables)[["customer_id", "issue_date", "invoice_id", "collection"]]
    if invoices.duplicated(["customer_id", "issue_date"]).any():
        raise ValueError("more than one pay-later order of a customer on one day")
    out = orders.merge(invoices, on=["customer_id", "issue_date"], how="left", validate="1:1")
    if (out["invoice_id"].notna() != out["approved"]).any():
        raise ValueError("approved orders and pay-later invoices do not match")
    out["collection"] = out["collection"].astype("boolean").fillna(False).astype(bool)
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
    return {
        **_rates(after["approved"].to_numpy(bool), after["collection"].to_numpy(bool)),
        "population": population_figures(tables, start),
    }


def run_closed_loop(
    config: SimulationConfig,
    predict: Callable[[np.ndarray], np.ndarray],
    policy: BnplPolicy,
    start: pd.Timestamp,
    naive: tuple[SimulationResult, pd.DataFrame],
    population: PopulationState,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Simulate ``config`` (``population``) forward under tijdig's policy in the loop (from
    ``start``; the naive policy before it) and compare it with the naive run ``naive`` (its
    result and :func:`simulate_orders`' orders): the orders after ``start`` and the
    population. Customers place the same orders in both runs (the order stream does not
    depend on the answers); a declined order does not become an invoice. Returns the
    report and tijdig's orders after ``start`` (approved, probability, declined_by)."""
    naive_result, naive_orders = naive
    log(f"closed loop: simulating seed {config.seed} under tijdig's policy from {start.date()}")
    t0 = time.perf_counter()
    tijdig = TijdigBnplPolicy(predict, policy, start=start.date())
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
        "seconds": round(seconds, 1),
        "decision_seconds": round(tijdig.seconds, 1),
    }
    if naive_figures["collection_rate_approved"]:
        report["reduction_vs_naive"] = (
            1
            - tijdig_figures["collection_rate_approved"] / naive_figures["collection_rate_approved"]
        )
    return report, after


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
) -> dict[str, Any]:
    """The whole protocol (module doc); ``closed_loop=False`` skips step 5."""
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
    X, cases = order_inputs(events, cust, _order_days(orders))
    p = bundle.predict_proba(X)
    birth_years = events.customers["birth_year"][cust]

    naive = _rates(
        orders["amount_cents"].to_numpy() < NAIVE_MAX_ORDER_CENTS, orders["collection"].to_numpy()
    )
    declines: dict[str, dict[str, float]] = {}
    replayed = np.zeros(len(orders), dtype=bool)
    configured = evaluate_policy(
        bundle.bnpl_policy, orders, X, p, cases, birth_years, declines, replayed
    )
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
        "protocol": __doc__.split("\n\n", 1)[1] if __doc__ else "",
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
        # the same orders decided in the loop and in the replay (features differ where
        # earlier declines changed the customer's history)
        both = loop_orders.merge(
            orders[["customer_id", "issue_date"]].assign(replayed=replayed),
            on=["customer_id", "issue_date"],
            validate="1:1",
        )
        loop["same_decision_as_replay_share"] = (
            float((both["approved"] == both["replayed"]).mean()) if len(both) else float("nan")
        )
        loop["approved_only_in_loop"] = approved_only_in_loop(both)
        report["closed_loop"] = loop
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bnpl_eval.json").write_text(json.dumps(report, indent=2, default=str))
        plot = _plot(curve, naive, out / "bnpl_tradeoff.png", risk_only)
        bundle.save(out / "bundle")
        log(f"wrote {out / 'bnpl_eval.json'} and {plot}")
    if mlflow_uri:
        _log_mlflow(mlflow_uri, report, curve, naive)
    return report


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

    return {
        "orders": float(only.sum()),
        "declined_earlier_share": share(earlier, only),
        "declined_earlier_share_of_replay_declines": share(earlier, replay_declined),
        "collection_rate": share(collection, only),
        "collection_rate_other_approvals": share(collection, other),
    }


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
        if "closed_loop" in report:
            mlflow.log_param("closed_loop.tijdig_from", report["closed_loop"]["tijdig_from"])
            mlflow.log_metrics(_numbers(report["closed_loop"], "closed_loop"))
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
    "closed_loop",
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
    parser.add_argument(
        "--no-closed-loop",
        dest="closed_loop",
        action="store_false",
        help="skip the closed-loop run (step 5 of the protocol)",
    )
    args = parser.parse_args(argv)
    report = run_bnpl_eval(
        args.customers,
        args.months,
        args.train_seed,
        args.eval_seed,
        args.bundle,
        args.out,
        args.mlflow_uri,
        closed_loop=args.closed_loop,
    )
    print(json.dumps(summary(report), indent=2, default=str))  # noqa: T201


if __name__ == "__main__":
    main()

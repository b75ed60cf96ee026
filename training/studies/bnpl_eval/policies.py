"""The pay-later policies bnpl-eval compares, as the simulator calls them: the naive
"approve every order under EUR 1,000" and tijdig's decision in the loop
(:class:`TijdigBnplPolicy`), with the one decision call the replay shares
(:func:`order_decision`) and a recorder of every order placed (:class:`BnplOrderLog`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.build import FEATURE_INDEX, build_features
from features.collection_cases import open_collection_cases
from features.events import EventArrays, from_day, to_day
from models.bnpl import AgeCheck, BnplDecision, BnplPolicy, decide
from models.budget import budget_arrays
from models.decline_memory import DecisionHistory, DecisionLogArrays, decline_memory
from training.simulation.observe import observed_event_arrays
from training.simulation.policy import BnplRequest

NAIVE_MAX_ORDER_CENTS = 100_000


def approve_under_1000(request: BnplRequest) -> np.ndarray:
    """The naive policy: every pay-later order under EUR 1,000."""
    return request.amount_cents < NAIVE_MAX_ORDER_CENTS


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
    memory: dict[str, float] | None = None,
    free_room_eur: float | None = None,
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
        memory=memory,
        free_room_eur=free_room_eur,
    )


def decide_orders(
    policy: BnplPolicy,
    amount_cents: np.ndarray,
    days: list[date],
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    memory: list[dict[str, float]] | None = None,
) -> list[BnplDecision]:
    """:func:`order_decision` for each order (row ``i`` of every argument; ``memory``:
    each order's decline memory). The budget's free room is computed for all orders in
    one columnar call (the same function the single decision calls)."""
    day_numbers = np.array([to_day(d) for d in days], dtype=np.int64)
    _, room = budget_arrays(X, day_numbers, prudent=True) if len(X) else (None, np.zeros(0))
    return [
        order_decision(
            policy,
            amount_cents=int(amount_cents[i]),
            on=days[i],
            features=X[i],
            probability=float(p[i]),
            open_case=bool(cases[i]),
            birth_year=float(birth_years[i]),
            memory=None if memory is None else memory[i],
            free_room_eur=float(room[i]),
        )
        for i in range(len(amount_cents))
    ]


def remembered_decisions(
    policy: BnplPolicy,
    log: DecisionLogArrays,
    cust: np.ndarray,
    day: np.ndarray,
    amount_cents: np.ndarray,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
) -> tuple[list[BnplDecision], list[dict[str, float]]]:
    """One day's orders (``day`` all equal; ``cust``: positions in ``log``'s customer
    index): each decided with its decline memory from ``log`` as of the day
    (:func:`models.decline_memory.decline_memory`, the computation the service runs on
    its decision log), then the answers are added to ``log``. Returns the decisions and
    the memory rows they were decided on."""
    memory = decline_memory(log.history(), cust, day, term_days=policy.term_days)
    rows = [memory.row(i) for i in range(len(cust))]
    days = [from_day(int(d)) for d in day]
    decisions = decide_orders(policy, amount_cents, days, X, p, cases, birth_years, rows)
    log.add(
        DecisionHistory.of(
            cust,
            day,
            [d.offer for d in decisions],
            amount_cents,
            [[r.code.value for r in d.reasons if r.declines] for d in decisions],
        )
    )
    return decisions, rows


def replay_decisions(
    policy: BnplPolicy,
    cust: np.ndarray,
    day: np.ndarray,
    amount_cents: np.ndarray,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
) -> list[BnplDecision]:
    """The replay: every order (row ``i`` of every argument; ``day``: day numbers) decided
    day by day, each with the memory of the replay's own earlier answers, as the loop
    and the service decide. Returns the decisions in the rows' order."""
    log = DecisionLogArrays()
    out: list[BnplDecision | None] = [None] * len(cust)
    for d in np.unique(day):
        rows = np.flatnonzero(day == d)
        for i, decision in zip(
            rows,
            remembered_decisions(
                policy,
                log,
                cust[rows],
                day[rows],
                amount_cents[rows],
                X[rows],
                p[rows],
                cases[rows],
                birth_years[rows],
            )[0],
            strict=True,
        ):
            out[i] = decision
    return [d for d in out if d is not None]


def decline_codes(decisions: list[BnplDecision]) -> list[list[str]]:
    """The declining reason codes of each decision (most decisive first)."""
    return [[r.code.value for r in d.reasons if r.declines] for d in decisions]


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
        self.inputs: list[dict[str, Any]] = []
        self.seconds = 0.0
        # the creditor's own decision log, by population index (the loop's decisions only)
        self.log = DecisionLogArrays()

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
        decisions, memory = remembered_decisions(
            self.policy,
            self.log,
            np.asarray(request.customer_index, dtype=np.int64),
            np.full(n, to_day(request.day)),
            np.asarray(request.amount_cents, dtype=np.int64),
            X,
            p,
            cases,
            birth_years,
        )
        offer = np.array([d.offer for d in decisions], dtype=bool)
        codes = pd.Series([tuple(c) for c in decline_codes(decisions)], dtype=object)
        self.last_details = pd.DataFrame(
            {
                "tijdig": np.ones(n, bool),
                "probability": p,
                "limit_eur": [d.limit_eur for d in decisions],
                "thin_file": [d.thin_file for d in decisions],
                "repaid_on_time": [d.repaid_on_time for d in decisions],
                "late_365d": X[:, FEATURE_INDEX["bnpl_late_365d"]],
            }
        ).assign(declined_by=codes)
        if self.keep_inputs:
            self.inputs.append(
                {
                    "X": X,
                    "p": p,
                    "open_case": cases,
                    "birth_year": birth_years,
                    "offer": offer,
                    "memory": memory,
                }
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

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

from features.build import FEATURE_INDEX
from features.events import to_day
from models.bnpl import BnplPolicy
from models.bnpl_adjustment import BnplAdjustment, memory_columns_of
from models.decline_memory import DecisionLogArrays
from training.bnpl_replay import decline_codes, order_inputs, remembered_decisions
from training.simulation.observe import observed_event_arrays
from training.simulation.policy import BnplRequest

NAIVE_MAX_ORDER_CENTS = 100_000


def approve_under_1000(request: BnplRequest) -> np.ndarray:
    """The naive policy: every pay-later order under EUR 1,000."""
    return request.amount_cents < NAIVE_MAX_ORDER_CENTS


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
    adjustment: BnplAdjustment | None = None  # the bundle's pay-later adjustment, if any

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
            self.adjustment,
        )
        offer = np.array([d.offer for d in decisions], dtype=bool)
        # the adjustment's fitted P(order reaches an agency): the yardstick for the leak
        agency = (
            np.full(n, np.nan)
            if self.adjustment is None
            else self.adjustment.agency_probability(p, memory_columns_of(memory))
        )
        codes = pd.Series([tuple(c) for c in decline_codes(decisions)], dtype=object)
        self.last_details = pd.DataFrame(
            {
                "tijdig": np.ones(n, bool),
                "probability": p,
                "pay_later_probability": [
                    np.nan if d.pay_later_probability is None else d.pay_later_probability
                    for d in decisions
                ],
                "agency_probability": agency,
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

"""The targeting rules the study compares, as the simulator's contact team calls them
(:data:`training.simulation.contact.Targeting`): at random, the traditional rule (second
reminder open, closest to the agency first), by a score of the creditor-observable
features (tijdig's probability, or an uplift estimate), and the pilot's randomisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from features.build import build_features
from features.events import to_day
from training.simulation.contact import ContactRequest
from training.simulation.observe import observed_event_arrays

#: the columns :func:`candidate_features` appends to the model's features (the creditor's
#: own dunning state of the candidate)
CASE_COLUMNS = ("dunning_stage", "days_overdue", "days_to_escalation", "overdue_debt_eur")


def _day_uniforms(seed: int, request: ContactRequest) -> np.ndarray:
    """One U(0, 1) per candidate from (seed, day), read at the customer's position: who
    else is a candidate that day never changes a customer's draw."""
    rng = np.random.default_rng([seed, 22, request.day.toordinal()])
    return rng.random(request.population.n)[request.customer_index]


def candidate_features(request: ContactRequest) -> tuple[np.ndarray, np.ndarray]:
    """(model features, case columns) of the candidates as of the call day: only events
    dated before it (point in time), built by the service's own :func:`build_features`."""
    if request.observed is None:
        raise ValueError("the simulator did not expose observed events")
    events = observed_event_arrays(request.population, request.observed(), request.customer_index)
    X = build_features(events, to_day(request.day))
    case = np.column_stack(
        [
            request.stage,
            request.days_overdue,
            request.days_to_escalation,
            request.debt_cents / 100.0,
        ]
    ).astype(np.float64)
    return X, case


@dataclass
class RandomTargeting:
    """Call candidates in a random order."""

    seed: int = 0
    name: str = "random"

    def __call__(self, request: ContactRequest) -> np.ndarray:
        return request.customer_index[np.argsort(_day_uniforms(self.seed, request))]


def second_reminder_rule(request: ContactRequest) -> np.ndarray:
    """The traditional rule: call customers whose second reminder (the 14-day letter) is
    open, those closest to the agency hand-over first (then the longest overdue)."""
    open_letter = request.stage >= 2
    order = np.lexsort(
        (-request.days_overdue[open_letter], request.days_to_escalation[open_letter])
    )
    return request.customer_index[open_letter][order]


@dataclass
class ScoreTargeting:
    """Call the candidates with the highest ``score`` first: ``score(X, case)`` of the
    model features and the case columns (:func:`candidate_features`)."""

    score: Callable[[np.ndarray, np.ndarray], np.ndarray]
    name: str = "score"
    seconds: float = 0.0

    def __call__(self, request: ContactRequest) -> np.ndarray:
        t0 = time.perf_counter()
        X, case = candidate_features(request)
        s = np.asarray(self.score(X, case), dtype=np.float64)
        self.seconds += time.perf_counter() - t0
        return request.customer_index[np.argsort(-s, kind="stable")]


@dataclass
class PilotRandomisation:
    """A creditor's pilot. When a customer becomes a candidate (an *episode*: a candidate
    today who was not one on the previous call day), two draws fix the episode's design: a
    coin with ``share`` (call or control) and a delay of 0..``max_delay_days`` days. On
    the first call day at or after the delay, if the customer is still a candidate, the
    episode becomes a unit (features as of that day) and, if the coin said so, they are
    called; a control is not called in that episode. Up to the unit's day both arms are
    treated alike, so the coin is independent of the features: the unit set covers every
    stage a candidate can be called at (new arrears up to the 14-day letter), as the
    targeting rules call them. Whether the call was made is read from the contact log
    afterwards (the capacity may leave an assigned customer uncalled).
    """

    share: float = 0.4
    seed: int = 0
    max_delay_days: int = 30
    name: str = "pilot"
    units: list[dict[str, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"share must lie in (0, 1); got {self.share}")
        self._previous = np.zeros(0, np.int64)
        self._due: np.ndarray | None = None  # day the episode's unit is due, or -1 (done)
        self._assigned: np.ndarray | None = None

    def __call__(self, request: ContactRequest) -> np.ndarray:
        n = request.population.n
        if self._due is None or self._assigned is None:
            self._due = np.full(n, -1, np.int64)
            self._assigned = np.zeros(n, bool)
        today = to_day(request.day)
        cand = request.customer_index
        new = cand[~np.isin(cand, self._previous)]
        self._previous = cand
        if len(new):
            rng = np.random.default_rng([self.seed, 23, request.day.toordinal()])
            u = rng.random((2, n))  # one coin and one delay per customer position
            self._assigned[new] = u[0, new] < self.share
            self._due[new] = today + np.floor(u[1, new] * (self.max_delay_days + 1)).astype(
                np.int64
            )
        ready = (self._due[cand] >= 0) & (self._due[cand] <= today)
        if not ready.any():
            return np.zeros(0, np.int64)
        sub = _subset(request, ready)
        self._due[sub.customer_index] = -1
        X, case = candidate_features(sub)
        assigned = self._assigned[sub.customer_index]
        self.units.append(
            {
                "customer_index": sub.customer_index,
                "day": np.full(len(sub.customer_index), today),
                "X": X,
                "case": case,
                "assigned": assigned,
            }
        )
        treat = sub.customer_index[assigned]
        return treat[np.argsort(_day_uniforms(self.seed, sub)[assigned])]

    def unit_table(self) -> dict[str, np.ndarray]:
        """Every unit of the pilot: customer_index, day (days since 1970), X, case,
        assigned (the coin said: call)."""
        if not self.units:
            raise ValueError("the pilot made no units")
        return {k: np.concatenate([u[k] for u in self.units]) for k in self.units[0]}


def _subset(request: ContactRequest, keep: np.ndarray) -> ContactRequest:
    from dataclasses import replace

    return replace(
        request,
        customer_index=request.customer_index[keep],
        customer_id=request.customer_id[keep],
        stage=request.stage[keep],
        days_overdue=request.days_overdue[keep],
        days_to_escalation=request.days_to_escalation[keep],
        debt_cents=request.debt_cents[keep],
    )

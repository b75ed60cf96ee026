"""The creditor's own recent pay-later decisions, point in time: the decline memory.

A customer declined for their situation (high risk, arrears, a claim at an agency) who
is kept out of pay-later debt soon *looks* less risky: the decline itself improved the
history the model sees. The creditor knows better — it declined them — and this module
gives that knowledge to the policy: per customer, as of the start of a day, the
declines of the last 30 and 90 days and their reasons, the days since the last decline
on the customer's situation, what was approved, and the approved orders old enough to
have been repaid (for limits that grow, :mod:`models.bnpl`).

One definition for both places that decide: the service reads its decision log
(``service/decision_log``) into a :class:`DecisionHistory`; the simulator's closed loop
and the replay append each day's answers to a :class:`DecisionLogArrays`. Both then call
:func:`decline_memory`. Point in time: a decision dated on or after ``as_of`` never
counts (decisions are dated by the day they decided for; an event of day *d* is known
from *d + 1*, as everywhere in tijdig).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from features.events import to_day

#: the declining reason codes that say something about the customer's situation (the
#: memory counts them separately; the order's size, currency or age check do not)
SITUATION_CODES: tuple[str, ...] = (
    "B03_OPEN_ARREARS",
    "B04_COLLECTION_CASE",
    "B05_HIGH_RISK",
    "B11_RECENT_DECLINE",
)
#: codes with a bit of their own in :attr:`DecisionHistory.codes` (any other code is
#: still a decline, counted in the totals)
CODE_BITS: dict[str, int] = {code: 1 << i for i, code in enumerate(SITUATION_CODES)}
_SITUATION_MASK = sum(CODE_BITS.values())
_DAY_SPAN = 1 << 32  # customer * span + day: one sortable key (day numbers are far below)


def code_mask(codes: Iterable[str]) -> int:
    """The bit mask of the situation codes among ``codes``."""
    return sum(CODE_BITS.get(c, 0) for c in set(codes))


@dataclass(frozen=True)
class DecisionHistory:
    """Pay-later decisions, one row each: customer (a position in the caller's index),
    day (``features.events.to_day``), offered or not, the order in cents, and the mask of
    its declining situation codes (:data:`CODE_BITS`)."""

    customer: np.ndarray
    day: np.ndarray
    offer: np.ndarray
    order_cents: np.ndarray
    codes: np.ndarray

    @classmethod
    def empty(cls) -> DecisionHistory:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros(0, dtype=bool), z, z)

    @classmethod
    def of(
        cls,
        customer: Sequence[int] | np.ndarray,
        day: Sequence[int] | np.ndarray,
        offer: Sequence[bool] | np.ndarray,
        order_cents: Sequence[int] | np.ndarray,
        declined_by: Sequence[Iterable[str]],
    ) -> DecisionHistory:
        """A history from plain columns; ``declined_by`` holds each decision's declining
        reason codes."""
        return cls(
            np.asarray(customer, dtype=np.int64),
            np.asarray(day, dtype=np.int64),
            np.asarray(offer, dtype=bool),
            np.asarray(order_cents, dtype=np.int64),
            np.array([code_mask(c) for c in declined_by], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.day)


class DecisionLogArrays:
    """An append-only pay-later decision log in memory (the simulator's loop and replay):
    each day's answers are added after they are given, read back as one history."""

    def __init__(self) -> None:
        self._parts: list[DecisionHistory] = []
        self._joined: DecisionHistory | None = DecisionHistory.empty()

    def add(self, part: DecisionHistory) -> None:
        self._parts.append(part)
        self._joined = None

    def history(self) -> DecisionHistory:
        if self._joined is None:
            cols = [
                np.concatenate([getattr(p, name) for p in self._parts])
                for name in ("customer", "day", "offer", "order_cents", "codes")
            ]
            self._joined = DecisionHistory(*cols)
            self._parts = [self._joined]
        return self._joined


@dataclass(frozen=True)
class DeclineMemory:
    """Per query row, as of the start of its day (every array one entry per row).

    ``days_since_*``: days since the latest decline on the customer's situation (any),
    on high risk, arrears or an agency claim; NaN without one in the last 90 days.
    ``approved_recent_eur``: orders approved in the last ``recent_days`` (possibly not yet
    in the event store: the policy takes the larger of this and the open pay-later
    orders the events show). ``approved_matured_365d``: orders approved 365 to
    ``term_days`` days ago (due by now: repaid on time or late)."""

    declines_30d: np.ndarray
    declines_90d: np.ndarray
    situation_declines_90d: np.ndarray
    situation_declines_365d: np.ndarray  # on risk, arrears or a claim (not B11 itself)
    risk_declines_90d: np.ndarray
    arrears_declines_90d: np.ndarray
    case_declines_90d: np.ndarray
    days_since_situation_decline: np.ndarray
    days_since_risk_decline: np.ndarray
    days_since_arrears_decline: np.ndarray
    days_since_case_decline: np.ndarray
    approved_90d: np.ndarray
    approved_recent_eur: np.ndarray
    approved_matured_365d: np.ndarray

    def row(self, i: int) -> dict[str, float]:
        """Row ``i`` as plain numbers (what a decision logs and the policy reads)."""
        return {name: float(getattr(self, name)[i]) for name in self.__dataclass_fields__}


def decline_memory(
    history: DecisionHistory,
    customer: np.ndarray | Sequence[int],
    as_of: np.ndarray | Sequence[int],
    term_days: int = 30,
    recent_days: int = 3,
) -> DeclineMemory:
    """The memory of each query (``customer[i]`` as of the start of day ``as_of[i]``):
    only decisions dated before ``as_of[i]`` count. Columnar: sorted keys and cumulative
    sums, so a day of the simulator's orders is one call."""
    customer = np.asarray(customer, dtype=np.int64)
    as_of = np.asarray(as_of, dtype=np.int64)
    order = np.lexsort((history.day, history.customer))
    key = history.customer[order] * _DAY_SPAN + history.day[order]
    offer = history.offer[order]
    codes = history.codes[order]
    cents = history.order_cents[order]
    declined = ~offer

    def window(values: np.ndarray, start_days_ago: int, end_days_ago: int = 0) -> np.ndarray:
        """Sum of ``values`` over decisions dated in [as_of - start, as_of - end)."""
        cum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
        base = customer * _DAY_SPAN
        lo = np.searchsorted(key, base + as_of - start_days_ago, side="left")
        hi = np.searchsorted(key, base + as_of - end_days_ago, side="left")
        return cum[hi] - cum[lo]

    def declined_for(code: str) -> np.ndarray:
        return declined & (codes & CODE_BITS[code] > 0)

    def days_since(mask: np.ndarray) -> np.ndarray:
        """Days since the latest decision in ``mask`` before as_of (NaN beyond 90)."""
        k = key[mask]
        last = np.searchsorted(k, customer * _DAY_SPAN + as_of, side="left") - 1
        last_key = k[np.maximum(last, 0)] if len(k) else np.full(len(customer), -1)
        same = (last >= 0) & (last_key // _DAY_SPAN == customer)
        out = np.where(same, as_of - last_key % _DAY_SPAN, np.nan).astype(np.float64)
        out[out > 90] = np.nan
        return out

    situation = declined & (codes & _SITUATION_MASK > 0)
    return DeclineMemory(
        declines_30d=window(declined, 30),
        declines_90d=window(declined, 90),
        situation_declines_90d=window(situation, 90),
        situation_declines_365d=window(
            declined_for("B05_HIGH_RISK")
            | declined_for("B03_OPEN_ARREARS")
            | declined_for("B04_COLLECTION_CASE"),
            365,
        ),
        risk_declines_90d=window(declined_for("B05_HIGH_RISK"), 90),
        arrears_declines_90d=window(declined_for("B03_OPEN_ARREARS"), 90),
        case_declines_90d=window(declined_for("B04_COLLECTION_CASE"), 90),
        days_since_situation_decline=days_since(situation),
        days_since_risk_decline=days_since(declined_for("B05_HIGH_RISK")),
        days_since_arrears_decline=days_since(declined_for("B03_OPEN_ARREARS")),
        days_since_case_decline=days_since(declined_for("B04_COLLECTION_CASE")),
        approved_90d=window(offer, 90),
        approved_recent_eur=window(np.where(offer, cents, 0), recent_days) / 100,
        approved_matured_365d=window(offer, 365, term_days),
    )


#: how far back the memory looks: the longest window above
LOOKBACK_DAYS = 365


def customer_memory(
    decisions: Sequence[tuple[date, bool, int, Iterable[str]]], as_of: date, term_days: int = 30
) -> dict[str, float]:
    """One customer's memory as of the start of ``as_of`` from their logged decisions
    (day decided for, offered, order in cents, declining reason codes): the service's
    call, the same computation as the simulator's. Most customers have no earlier
    pay-later decision: their memory is the empty history's, computed once."""
    if not decisions:
        return dict(_empty_memory(term_days))
    history = DecisionHistory.of(
        [0] * len(decisions),
        [to_day(d[0]) for d in decisions],
        [d[1] for d in decisions],
        [d[2] for d in decisions],
        [d[3] for d in decisions],
    )
    return decline_memory(history, [0], [to_day(as_of)], term_days=term_days).row(0)


@functools.cache
def _empty_memory(term_days: int) -> dict[str, float]:
    """The memory of a customer without earlier decisions (the same on every day)."""
    empty = DecisionHistory.of([], [], [], [], [])
    return decline_memory(empty, [0], [0], term_days=term_days).row(0)

"""The collection policy the simulated creditor follows (the seam for counterfactual runs).

A :class:`CollectionPolicy` decides what the creditor controls: the day of the month it
collects by direct debit (per customer), the monthly amount of a payment arrangement,
and whether a pay-later order is accepted. Customers' incomes, shocks and spending are
not part of the policy, so re-running the same population under another policy changes
only what follows from these decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from training.simulation.contact import ContactPlan
    from training.simulation.engine import RawEvents
    from training.simulation.population import PopulationState


@dataclass(frozen=True)
class ArrangementRequest:
    """Customers for whom an arrangement is made today, with their open (overdue) debt."""

    day: date
    customer_index: np.ndarray
    customer_id: np.ndarray
    debt_cents: np.ndarray
    population: PopulationState  # hidden truth: an oracle policy may use it, a real one should not
    #: the events logged so far (what the creditor could observe), built on demand
    observed: Callable[[], RawEvents] | None = None


@dataclass(frozen=True)
class BnplRequest:
    """Pay-later orders placed today (one row per order)."""

    day: date
    customer_index: np.ndarray
    customer_id: np.ndarray
    amount_cents: np.ndarray
    open_agency_claims: np.ndarray  # open invoices of the customer at agency/bailiff (observable)
    overdue_invoices: np.ndarray  # open invoices past their due date (observable)
    population: PopulationState
    #: the events logged so far (what the creditor could observe), built on demand. Asked
    #: before the day's orders are answered: the day's income and regular invoices are in
    #: it, the day's orders, debits, payments and steps are not (features as of the day,
    #: which see only events dated before it, are point in time either way)
    observed: Callable[[], RawEvents] | None = None


@dataclass(frozen=True)
class ArrangementAnswer:
    """A policy's answer to an :class:`ArrangementRequest`, one entry per customer.

    ``monthly_cents`` 0 is a referral to debt help (no plan). A plan may carry a safety net
    (CCD2 art. 35): the customer may pause it ``pause_times`` times for up to
    ``pause_max_months`` months (0 = no pause). A policy may also answer with the monthly
    amounts alone (a plain array): plans without a pause, as the naive policies offer.
    """

    monthly_cents: np.ndarray
    pause_max_months: np.ndarray | int = 0
    pause_times: np.ndarray | int = 0

    @classmethod
    def of(cls, answer: ArrangementAnswer | np.ndarray) -> ArrangementAnswer:
        """``answer`` with every field an int64 array of one entry per customer."""
        if not isinstance(answer, ArrangementAnswer):
            answer = cls(np.asarray(answer))
        monthly = np.asarray(answer.monthly_cents, dtype=np.int64)
        shape = monthly.shape
        return cls(
            monthly,
            np.broadcast_to(np.asarray(answer.pause_max_months, dtype=np.int64), shape).copy(),
            np.broadcast_to(np.asarray(answer.pause_times, dtype=np.int64), shape).copy(),
        )


#: what an arrangement policy returns: the full answer, or the monthly amounts alone
ArrangementPolicy = Callable[[ArrangementRequest], ArrangementAnswer | np.ndarray]


def debt_over_five_months(request: ArrangementRequest) -> np.ndarray:
    """Current practice: the debt in 5 monthly parts (whole euros, at least EUR 25)."""
    monthly = np.ceil(request.debt_cents / 5 / 100) * 100
    return np.minimum(np.maximum(monthly, 25_00), request.debt_cents).astype(np.int64)


@dataclass(frozen=True)
class VariedArrangementAmounts:
    """A creditor experimenting with plan sizes: the debt in N parts, N drawn per plan.

    N is uniform on ``min_parts..max_parts`` (default 1..18, the debt-scheme length), so
    the monthly amount varies independently of what the customer can pay — the data the
    P(kept) model needs to learn how much a lower amount helps (under ``debt / 5`` the
    amount just follows the debt). One draw per customer and day from (seed, day), read at
    the customer's position, so who else asks that day never changes a customer's N. Whole
    euros, at least ``min_monthly_cents``. A training-data policy
    (``training.studies.plan_eval``); the default simulation keeps :func:`debt_over_five_months`.
    """

    seed: int = 0
    min_parts: int = 1
    max_parts: int = 18
    min_monthly_cents: int = 10_00

    def __call__(self, request: ArrangementRequest) -> np.ndarray:
        if not 1 <= self.min_parts <= self.max_parts:
            raise ValueError("need 1 <= min_parts <= max_parts")
        rng = np.random.default_rng([self.seed, request.day.toordinal()])
        # value i of the day's stream is customer i's (one double each, in order), so
        # drawing up to the highest position asked for gives every customer the same N
        index = np.asarray(request.customer_index, dtype=np.int64)
        u = rng.random(int(index.max(initial=-1)) + 1)[index]
        parts = self.min_parts + np.floor(u * (self.max_parts - self.min_parts + 1))
        monthly = np.ceil(request.debt_cents / parts / 100) * 100
        return np.minimum(np.maximum(monthly, self.min_monthly_cents), request.debt_cents).astype(
            np.int64
        )


def accept_unless_at_agency(request: BnplRequest) -> np.ndarray:
    """Current practice: accept every order unless the customer has a claim at the agency."""
    return request.open_agency_claims == 0


@dataclass(frozen=True)
class CollectionPolicy:
    """What the creditor decides. ``debit_day=None`` keeps each customer's current day."""

    debit_day: np.ndarray | None = None  # per customer (population order), 1..28
    debit_day_from: date | None = None  # new days apply to months starting on/after this date
    arrangement_monthly: ArrangementPolicy = debt_over_five_months
    approve_bnpl: Callable[[BnplRequest], np.ndarray] = accept_unless_at_agency
    name: str = "current_practice"
    #: calls by a contact team of limited capacity (:mod:`training.simulation.contact`);
    #: None (the default world): no calls, no contact draws
    contact: ContactPlan | None = None

    @classmethod
    def current_practice(cls) -> CollectionPolicy:
        return cls()

    def with_debit_days(
        self, days: np.ndarray, *, effective_from: date | None = None, name: str | None = None
    ) -> CollectionPolicy:
        days = np.asarray(days, dtype=np.int64)
        if days.ndim != 1 or days.min(initial=1) < 1 or days.max(initial=1) > 28:
            raise ValueError("debit days must be a 1-d array of days 1..28")
        return replace(
            self,
            debit_day=days,
            debit_day_from=effective_from,
            name=name or f"{self.name}+debit_days",
        )

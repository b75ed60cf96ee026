"""Contact in the simulator: a team with a limited daily capacity calls the customers its
targeting picks, and a reached customer responds according to their hidden situation.

Issue 22 item 2. tijdig's early warning recommends an action (a personal call, a plan
offer, a debt-help referral; :class:`models.policy.RecommendedAction`); a creditor can act
on only as many customers a day as its team can call. A :class:`ContactPlan` in
:attr:`training.simulation.policy.CollectionPolicy.contact` models that:

* every business day in ``[start, end)``, the candidates are the customers with an open
  overdue invoice not yet at an agency, not in a payment plan, and not called in the last
  ``cooldown_days``; the plan's ``targeting`` orders them (a :class:`ContactRequest` holds
  only what the creditor can observe, plus the population for an oracle) and the first
  ``capacity_per_day`` are called — never more;
* a called customer is reached with probability ``reach_rate[behaviour]``; a reached one
  takes up a plan or debt help now (the creditor's own arrangement policy makes the
  offer: a plan, or 0 = a referral) with probability ``plan_take_up[behaviour]``;
  otherwise, with probability ``pay_share[behaviour]`` they pay within ``effect_days``
  when the money is there (a floor on their daily probability of paying; a forgetful
  customer pays, someone who will not pay is hardly moved). Every effect size is an assumption in :class:`ContactEffects`
  (sources and reasoning: docs/contact-effects.md); the evidence shows them over a range.

Off by default (``contact=None``): the engine then takes no contact draws and the world is
the same event for event. A contact's draws come from their own stream (``RNG_CONTACT``),
one block of one value per customer per day (:mod:`training.simulation.streams`), so a
call changes only the called customer's history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from training.simulation.engine import RawEvents
    from training.simulation.population import PopulationState
    from training.simulation.streams import Streams

# Far from the engine's purposes (0..8) so that a purpose another change adds meanwhile
# cannot take the same stream.
RNG_CONTACT = 21
# what a contact came to (the log's ``response``)
RESPONSE_NOT_REACHED, RESPONSE_PLAN, RESPONSE_NUDGED = 0, 1, 2
RESPONSES = ("not_reached", "plan_or_help", "nudged_to_pay")

Tuple4 = tuple[float, float, float, float]


def _check_shares(name: str, values: Tuple4) -> None:
    if len(values) != 4 or not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"{name} must be 4 shares in [0, 1] (BEHAVIOURS order); got {values}")


@dataclass(frozen=True)
class ContactEffects:
    """How a called customer responds, by hidden behaviour (``BEHAVIOURS`` order: willing,
    forgetful, cannot_cope, unwilling). Every value is an assumption; docs/contact-effects.md
    gives the source or the reasoning for each, and the targeting evidence shows its
    figures over :meth:`scaled` versions of these."""

    # P(the right person answers the call). Collection practice calls a right-party-contact
    # rate over 80% high (DOMAIN.md §6); a municipality's outreach after an early-warning
    # signal reaches about 1 in 5 (Divosa 2023, DOMAIN.md §3). The creditor's own call lies
    # between; someone who will not pay avoids it most. Assumptions.
    reach_rate: Tuple4 = (0.6, 0.6, 0.5, 0.3)
    # P(a reached customer takes up a plan or debt help now). Divosa (H1 2024): 1 in 3 of the
    # people reached after an early-warning signal accept help (docs/contact-effects.md);
    # the others take it up rarely (they can pay). Assumptions beyond the 1 in 3.
    plan_take_up: Tuple4 = (0.10, 0.05, 0.33, 0.05)
    # P(a reached customer who does not take up a plan pays within ``effect_days`` when the
    # money is there): turned into a floor on the daily P(paying | able) (without a call:
    # engine.P_PAY, e.g. forgetful 0.03/day while overdue, 0.35 after a reminder). A text
    # message raised payment of overdue court fines from 5% to 23-33% (Haynes et al. 2013,
    # docs/contact-effects.md); a personal call is taken to do at least as much for the
    # forgetful. Assumptions.
    pay_share: Tuple4 = (0.50, 0.60, 0.15, 0.05)
    effect_days: int = 14

    def __post_init__(self) -> None:
        for name in ("reach_rate", "plan_take_up", "pay_share"):
            _check_shares(name, getattr(self, name))
        if self.effect_days < 1:
            raise ValueError(f"effect_days must be >= 1; got {self.effect_days}")

    def scaled(self, factor: float) -> ContactEffects:
        """Every probability times ``factor`` (capped at 1): the sensitivity range."""
        if factor < 0:
            raise ValueError(f"factor must be >= 0; got {factor}")

        def times(values: Tuple4) -> Tuple4:
            a, b, c, d = (min(1.0, v * factor) for v in values)
            return (a, b, c, d)

        return replace(
            self,
            reach_rate=times(self.reach_rate),
            plan_take_up=times(self.plan_take_up),
            pay_share=times(self.pay_share),
        )

    def daily_pay_floor(self) -> np.ndarray:
        """The daily P(paying | able) that makes ``pay_share`` pay within ``effect_days``."""
        share = np.minimum(np.asarray(self.pay_share, dtype=np.float64), 1.0 - 1e-9)
        return 1.0 - (1.0 - share) ** (1.0 / self.effect_days)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reach_rate": list(self.reach_rate),
            "plan_take_up": list(self.plan_take_up),
            "pay_share": list(self.pay_share),
            "effect_days": self.effect_days,
        }


@dataclass(frozen=True)
class ContactRequest:
    """Today's candidates for a call (population indices), with what the creditor sees."""

    day: date
    customer_index: np.ndarray
    customer_id: np.ndarray
    #: furthest dunning step sent on their open overdue invoices: 0 none, 1 reminder,
    #: 2 the 14-day letter ("second reminder")
    stage: np.ndarray
    days_overdue: np.ndarray  # of their oldest open overdue invoice
    days_to_escalation: np.ndarray  # until the creditor's next dunning step on any of them
    debt_cents: np.ndarray  # open overdue amount
    capacity: int  # calls the team can make today
    population: PopulationState  # hidden truth: only an oracle may use it
    observed: Callable[[], RawEvents] | None = None


#: a targeting rule: today's candidates -> the customers to call, most urgent first
#: (population indices; the engine calls the first ``capacity`` of them that are candidates)
Targeting = Callable[[ContactRequest], np.ndarray]


@dataclass
class ContactPlan:
    """The creditor's contact team: whom it calls (``targeting``), how many a day, when;
    and how customers respond (``effects``, the world's side). ``contacts`` after a run:
    one row per call (customer index, day index, date, reached, response)."""

    targeting: Targeting
    capacity_per_day: int
    effects: ContactEffects = field(default_factory=ContactEffects)
    start: date | None = None  # first day calls are made (inclusive)
    end: date | None = None  # exclusive
    cooldown_days: int = 30  # a called customer is not called again for this long
    name: str = "contact"

    def __post_init__(self) -> None:
        if self.capacity_per_day < 0:
            raise ValueError(f"capacity_per_day must be >= 0; got {self.capacity_per_day}")
        if self.cooldown_days < 0:
            raise ValueError(f"cooldown_days must be >= 0; got {self.cooldown_days}")
        self.state: ContactState | None = None

    def begin(self, n: int) -> ContactState:
        """A fresh state for one run over ``n`` customers (kept as ``self.state``)."""
        self.state = ContactState(self, n)
        return self.state

    @property
    def contacts(self) -> pd.DataFrame:
        """The calls of the last run."""
        if self.state is None:
            raise ValueError("the plan has not been run")
        return self.state.table()


class ContactState:
    """One run's contact bookkeeping (built by the engine via :meth:`ContactPlan.begin`)."""

    def __init__(self, plan: ContactPlan, n: int) -> None:
        self.plan = plan
        self.last_call = np.full(n, -(1 << 40), np.int64)
        self.boost_until = np.full(n, -1, np.int64)
        self.boost_p = np.zeros(n)
        self._log: list[tuple[np.ndarray, ...]] = []
        self._dates: dict[int, date] = {}

    def step(
        self,
        d: int,
        pop: PopulationState,
        streams: Streams,
        inv: dict[str, np.ndarray],
        open_idx: np.ndarray,
        active_arr: np.ndarray,
        observed: Callable[[], RawEvents],
    ) -> np.ndarray:
        """Make day ``d``'s calls; returns who takes up a plan or help today (bool, n)."""
        plan, cal, n = self.plan, pop.calendar, pop.n
        take_up = np.zeros(n, bool)
        today = cal.date_of(d)
        if (
            plan.capacity_per_day == 0
            or not cal.is_business(d)
            or (plan.start is not None and today < plan.start)
            or (plan.end is not None and today >= plan.end)
        ):
            return take_up
        o = open_idx
        out = inv["amount"][o] - inv["paid"][o]
        live = (out > 0) & (inv["due"][o] < d) & (inv["stage"][o] < 3) & (inv["arr"][o] < 0)
        ii = o[live]
        cc = inv["cust"][ii]
        candidate = np.zeros(n, bool)
        candidate[cc] = True
        candidate &= (active_arr < 0) & (d - self.last_call >= plan.cooldown_days)
        who = np.flatnonzero(candidate)
        if len(who) == 0:
            return take_up
        keep = candidate[cc]
        ii, cc = ii[keep], cc[keep]
        stage = np.zeros(n, np.int64)
        np.maximum.at(stage, cc, inv["stage"][ii])
        oldest_due = np.full(n, 1 << 40, np.int64)
        np.minimum.at(oldest_due, cc, inv["due"][ii])
        next_step = np.full(n, 1 << 40, np.int64)
        np.minimum.at(next_step, cc, inv["next_step"][ii])
        debt = np.bincount(cc, weights=inv["amount"][ii] - inv["paid"][ii], minlength=n)
        request = ContactRequest(
            day=today,
            customer_index=who,
            customer_id=pop.customer_ids[who],
            stage=stage[who],
            days_overdue=d - oldest_due[who],
            days_to_escalation=np.maximum(next_step[who] - d, 0),
            debt_cents=debt[who].astype(np.int64),
            capacity=plan.capacity_per_day,
            population=pop,
            observed=observed,
        )
        ranked = np.asarray(plan.targeting(request), dtype=np.int64)
        # only candidates, each once, in the targeting's order, and never over capacity
        ranked = ranked[(ranked >= 0) & (ranked < n)]
        ranked = ranked[candidate[ranked]]
        _, first = np.unique(ranked, return_index=True)
        called = ranked[np.sort(first)][: plan.capacity_per_day]
        # the day's draws: fixed blocks of one value per customer, whoever is called
        u = streams.day(RNG_CONTACT, d).uniform(2)
        effects = plan.effects
        b = pop.behaviour[called]
        reached = u[0, called] < np.asarray(effects.reach_rate)[b]
        plans = reached & (u[1, called] < np.asarray(effects.plan_take_up)[b])
        nudged = reached & ~plans
        take_up[called[plans]] = True
        self.boost_until[called[nudged]] = d + effects.effect_days
        self.boost_p[called[nudged]] = effects.daily_pay_floor()[b[nudged]]
        self.last_call[called] = d
        response = np.where(
            plans, RESPONSE_PLAN, np.where(nudged, RESPONSE_NUDGED, RESPONSE_NOT_REACHED)
        )
        self._log.append((called, np.full(len(called), d), reached, response))
        self._dates[d] = today
        return take_up

    def pay_probability(self, p: np.ndarray, d: int) -> np.ndarray:
        """``p`` (per customer) raised to the nudge's floor for customers still under it."""
        return np.where(d < self.boost_until, np.maximum(p, self.boost_p), p)

    def table(self) -> pd.DataFrame:
        """One row per call: customer (index), day (index), date, reached, response."""
        if self._log:
            cust, day, reached, response = (np.concatenate(x) for x in zip(*self._log, strict=True))
        else:
            cust = day = response = np.zeros(0, np.int64)
            reached = np.zeros(0, bool)
        return pd.DataFrame(
            {
                "customer_index": cust.astype(np.int64),
                "day": day.astype(np.int64),
                "date": pd.to_datetime([self._dates[int(x)] for x in day]),
                "reached": reached.astype(bool),
                "response": pd.Categorical.from_codes(
                    response.astype(np.int64), categories=pd.Index(RESPONSES)
                ),
            }
        )

"""The creditor's four levers and the collection policy of each flow-eval run.

A run is the traditional flow (:meth:`CollectionPolicy.current_practice`: the customer's
fixed debit day, reminder → 14-day letter → agency → bailiff, "debt / 5" plans, pay-later
accepted unless the customer has a claim at an agency, no calls) with some of tijdig's
levers switched on from the adoption day:

* ``contact`` — a contact team of limited daily capacity calls the candidates tijdig ranks
  first (:class:`~training.simulation.contact.ContactPlan`);
* ``debit_day`` — tijdig's suggested debit day per customer, from the first month the
  14-day pre-notification allows;
* ``plans`` — tijdig's plan advice (an affordable plan with a pause, or a debt-help
  referral) for every arrangement request, including those a call brings about;
* ``pay_later`` — tijdig's pay-later decision in the loop.

Before the adoption day every run is the traditional one, so all runs share their
history up to it (tested) and tijdig's decisions are made from that shared history
onwards. :class:`Levers` holds factories, not policies: a policy with a memory (the
pay-later decline memory, a contact team's call log) must start fresh in every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from training.simulation.contact import ContactEffects, ContactPlan, Targeting
from training.simulation.policy import (
    ArrangementPolicy,
    BnplRequest,
    CollectionPolicy,
    accept_unless_at_agency,
    debt_over_five_months,
)
from training.studies.bnpl_eval.policies import BnplOrderLog
from training.studies.plan_cohort import RecordedPolicy

LEVERS: tuple[str, ...] = ("contact", "debit_day", "plans", "pay_later")
TRADITIONAL = "traditional"
TIJDIG = "tijdig"

BnplApproval = Callable[[BnplRequest], np.ndarray]


@dataclass(frozen=True)
class Levers:
    """tijdig's policy for each lever, acting from ``adoption`` (module doc).

    ``debit_days``: per customer (population order), applied to months starting on or after
    ``debit_days_from``. The ``make_*`` factories build a fresh policy for each run.
    """

    adoption: date
    debit_days: np.ndarray
    debit_days_from: date
    make_plans: Callable[[], ArrangementPolicy]
    make_pay_later: Callable[[], BnplApproval]
    make_targeting: Callable[[], Targeting]
    capacity_per_day: int
    effects: ContactEffects = field(default_factory=ContactEffects)
    #: the trained models the levers use (a :class:`models.bundle.Bundle`), kept to save
    bundle: Any = None


@dataclass
class FromDay:
    """``after`` answers requests dated on or after ``day``, ``before`` the earlier ones
    (the traditional answer before tijdig is adopted)."""

    day: date
    after: Callable[[Any], Any]
    before: Callable[[Any], Any]

    def __call__(self, request: Any) -> Any:
        return (self.after if request.day >= self.day else self.before)(request)


@dataclass
class FlowRun:
    """One run's policy and the recorders that log what it decided."""

    name: str
    levers: tuple[str, ...]
    policy: CollectionPolicy
    plans: RecordedPolicy
    orders: BnplOrderLog
    contact: ContactPlan | None

    def requests(self) -> pd.DataFrame:
        """Every arrangement request and its answer (``referral``: debt help, no plan)."""
        return self.plans.requests()

    def calls(self) -> pd.DataFrame:
        """Every call the contact team made (empty without the contact lever)."""
        if self.contact is None or self.contact.state is None:
            return pd.DataFrame(
                {"customer_index": [], "day": [], "date": [], "reached": [], "response": []}
            )
        return self.contact.contacts


def run_names(leave_one_out: bool = False) -> dict[str, tuple[str, ...]]:
    """The runs of the study, each with the levers it switches on: the traditional flow,
    tijdig (all four), each lever alone and, with ``leave_one_out``, all but one."""
    runs: dict[str, tuple[str, ...]] = {TRADITIONAL: (), TIJDIG: LEVERS}
    runs.update({f"{lever}_alone": (lever,) for lever in LEVERS})
    if leave_one_out:
        runs.update(
            {f"without_{lever}": tuple(x for x in LEVERS if x != lever) for lever in LEVERS}
        )
    return runs


def flow_run(name: str, on: Iterable[str], levers: Levers | None) -> FlowRun:
    """The policy of run ``name`` with the levers ``on`` (a subset of :data:`LEVERS`),
    wrapped in recorders. ``levers`` may be None only when ``on`` is empty."""
    on = tuple(on)
    unknown = set(on) - set(LEVERS)
    if unknown:
        raise ValueError(f"levers must be among {LEVERS}; got {sorted(unknown)}")
    if on and levers is None:
        raise ValueError("levers are needed to switch any of them on")
    plans: ArrangementPolicy = debt_over_five_months
    pay_later: BnplApproval = accept_unless_at_agency
    policy = CollectionPolicy.current_practice()
    contact = None
    if levers is not None:
        if "plans" in on:
            plans = FromDay(levers.adoption, levers.make_plans(), debt_over_five_months)
        if "pay_later" in on:
            pay_later = FromDay(levers.adoption, levers.make_pay_later(), accept_unless_at_agency)
        if "debit_day" in on:
            policy = policy.with_debit_days(
                levers.debit_days, effective_from=levers.debit_days_from
            )
        if "contact" in on:
            contact = ContactPlan(
                levers.make_targeting(),
                levers.capacity_per_day,
                levers.effects,
                start=levers.adoption,
                name="tijdig_targeting",
            )
    recorded_plans = RecordedPolicy(plans)
    orders = BnplOrderLog(pay_later)
    policy = replace(
        policy,
        arrangement_monthly=recorded_plans,
        approve_bnpl=orders,
        contact=contact,
        name=name,
    )
    return FlowRun(name, on, policy, recorded_plans, orders, contact)


def effective_month(adoption: date, pre_notification_days: int) -> date:
    """The first month a debit day changed on ``adoption`` can take effect: the first of a
    month at least ``pre_notification_days`` later (as ``tijdig debit-eval`` applies it)."""
    from datetime import timedelta

    notified = adoption + timedelta(days=pre_notification_days)
    if notified.day == 1:
        return notified
    index = notified.year * 12 + notified.month  # the next month, 0-based month + 1
    return date(index // 12, index % 12 + 1, 1)


def events_before(tables: dict[str, pd.DataFrame], day: date) -> dict[str, pd.DataFrame]:
    """The event tables as a creditor saw them on ``day``: rows dated before it, and plans
    that ended on or after it still active (their outcome was not known yet)."""
    cut = pd.Timestamp(day)
    dated = {
        "customers": "created_at",
        "invoices": "issue_date",
        "payments": "paid_at",
        "debit_attempts": "attempted_at",
        "collection_steps": "step_date",
        "arrangements": "start_date",
        "income_receipts": "received_at",
        "account_balances": "observed_at",
    }
    out = {}
    for name, df in tables.items():
        column = dated.get(name)
        out[name] = df if column is None else df[df[column] < cut].reset_index(drop=True)
    arr = out.get("arrangements")
    if arr is not None and len(arr):
        later = arr["end_date"].isna() | (arr["end_date"] >= cut)
        arr = arr.copy()
        arr.loc[later, "outcome"] = "active"
        arr.loc[later, "end_date"] = pd.NaT
        out["arrangements"] = arr
    return out


def referrals(requests: pd.DataFrame, since: date) -> int:
    """Arrangement requests from ``since`` answered with a debt-help referral."""
    if requests.empty:
        return 0
    return int((requests["referral"] & (requests["start_date"] >= pd.Timestamp(since))).sum())


__all__ = [
    "LEVERS",
    "TIJDIG",
    "TRADITIONAL",
    "FlowRun",
    "FromDay",
    "Levers",
    "effective_month",
    "events_before",
    "flow_run",
    "referrals",
    "run_names",
]

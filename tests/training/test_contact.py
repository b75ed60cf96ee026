"""Contact in the simulator (training.simulation.contact): a team of limited capacity calls
the customers its targeting picks; a reached customer responds by their hidden behaviour."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from training.simulation import (
    CollectionPolicy,
    SimulationConfig,
    SimulationResult,
    build_population,
    customers_changed,
    simulate,
)
from training.simulation.contact import ContactEffects, ContactPlan, ContactRequest

CONFIG = SimulationConfig(
    n_customers=600, months=8, end_date=date(2026, 1, 1), seed=11, validate=False
)
CAPACITY = 4


@pytest.fixture(scope="module")
def population():
    return build_population(CONFIG)


@pytest.fixture(scope="module")
def base(population) -> SimulationResult:
    return simulate(CONFIG, population=population)


def with_contact(plan: ContactPlan) -> CollectionPolicy:
    return replace(CollectionPolicy(), contact=plan, name=plan.name)


def everyone_twice_and_strangers(request: ContactRequest) -> np.ndarray:
    """A sloppy targeting: every candidate twice, plus customers who are not candidates."""
    return np.r_[request.customer_index, request.customer_index, -1, 10**9]


def assert_same_world(a: SimulationResult, b: SimulationResult) -> None:
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:  # row for row, ids included
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], obj=name)
    pd.testing.assert_frame_equal(a.truth_monthly, b.truth_monthly)


def test_contact_off_is_the_same_world(population, base) -> None:
    # no capacity, or a period outside the world: not one event moves
    for plan in (
        ContactPlan(everyone_twice_and_strangers, capacity_per_day=0),
        ContactPlan(everyone_twice_and_strangers, capacity_per_day=5, start=date(2027, 1, 1)),
    ):
        assert_same_world(base, simulate(CONFIG, population=population, policy=with_contact(plan)))
        assert plan.contacts.empty


@pytest.fixture(scope="module")
def sure_reach(population):
    """Everyone called is reached; cannot-cope customers all take up a plan or help."""
    effects = ContactEffects(
        reach_rate=(1.0, 1.0, 1.0, 1.0),
        plan_take_up=(0.0, 0.0, 1.0, 0.0),
        pay_share=(0.9, 0.99, 0.1, 0.0),
    )
    plan = ContactPlan(everyone_twice_and_strangers, capacity_per_day=CAPACITY, effects=effects)
    result = simulate(CONFIG, population=population, policy=with_contact(plan))
    return plan, result


def test_capacity_is_never_exceeded_and_only_candidates_are_called(sure_reach) -> None:
    plan, _ = sure_reach
    calls = plan.contacts
    assert len(calls) > 0
    per_day = calls.groupby("day").size()
    assert per_day.max() <= CAPACITY
    assert (per_day == CAPACITY).any()  # the team was busy: capacity bound
    assert not calls.duplicated(["customer_index", "day"]).any()
    assert calls["customer_index"].between(0, CONFIG.n_customers - 1).all()
    # business days only, and nobody called again within the cool-down
    assert (calls["date"].dt.weekday < 5).all()
    gaps = calls.sort_values("day").groupby("customer_index")["day"].diff().dropna()
    assert (gaps >= plan.cooldown_days).all()


def test_response_follows_the_hidden_situation(population, base, sure_reach) -> None:
    plan, result = sure_reach
    calls = plan.contacts.assign(behaviour=population.behaviour[plan.contacts["customer_index"]])
    response = calls.groupby("behaviour")["response"].agg(lambda r: (r == "plan_or_help").mean())
    assert response.get(2) == 1.0  # cannot cope: takes up a plan or help
    assert response.drop(2, errors="ignore").eq(0.0).all()
    # the plans were made: more arrangements for the called cannot-cope customers
    ids = population.customer_ids
    cannot = set(ids[calls.loc[calls["behaviour"] == 2, "customer_index"]])

    def arrangements(r: SimulationResult) -> int:
        return int(r.tables["arrangements"]["customer_id"].isin(cannot).sum())

    assert arrangements(result) > arrangements(base)

    # forgetful customers called pay sooner (within a week, before a reminder would come);
    # someone who will not pay is not moved
    def paid_within_nudge(r: SimulationResult, b: int) -> float:
        who = calls[calls["behaviour"] == b]
        pays = r.tables["payments"][["customer_id", "paid_at"]]
        hits = 0
        for cust, on in zip(ids[who["customer_index"]], who["date"], strict=True):
            p = pays.loc[pays["customer_id"] == cust, "paid_at"]
            hits += bool(((p >= on) & (p < on + pd.Timedelta(days=7))).any())
        return hits / max(len(who), 1)

    assert paid_within_nudge(result, 1) > paid_within_nudge(base, 1) + 0.05
    assert paid_within_nudge(result, 3) == paid_within_nudge(base, 3)


def test_a_call_changes_only_the_called_customers_history(population, base, sure_reach) -> None:
    plan, _ = sure_reach
    calls = plan.contacts
    first = calls.iloc[0]
    who, day = int(first["customer_index"]), first["date"].date()

    def just_that_one(request: ContactRequest) -> np.ndarray:
        if request.day == day:
            return np.array([who])
        return np.zeros(0, np.int64)

    one = ContactPlan(just_that_one, capacity_per_day=1, effects=plan.effects)
    result = simulate(CONFIG, population=population, policy=with_contact(one))
    assert len(one.contacts) == 1
    changed = customers_changed(base, result)
    assert changed <= {population.customer_ids[who]}


def test_effects_scale_and_check_their_values() -> None:
    low = ContactEffects().scaled(0.5)
    assert low.reach_rate[0] == pytest.approx(ContactEffects().reach_rate[0] / 2)
    assert max(ContactEffects().scaled(10).pay_share) == 1.0
    effects = ContactEffects()
    within = 1 - (1 - effects.daily_pay_floor()) ** effects.effect_days
    assert within == pytest.approx(np.array(effects.pay_share))
    with pytest.raises(ValueError, match="reach_rate"):
        ContactEffects(reach_rate=(1.2, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="capacity_per_day"):
        ContactPlan(everyone_twice_and_strangers, capacity_per_day=-1)

"""The targeting study's parts: the uplift estimator, the rules, the pilot's randomisation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from training.simulation import CollectionPolicy, SimulationConfig, build_population, simulate
from training.simulation.contact import ContactPlan, ContactRequest
from training.studies.targeting_eval.policies import (
    PilotRandomisation,
    RandomTargeting,
    second_reminder_rule,
)
from training.studies.targeting_eval.run import fit_uplift, pilot_units
from training.studies.targeting_eval.uplift import TLearner


def test_t_learner_recovers_a_planted_effect() -> None:
    # outcome rate 0.4 for everyone; a call lowers it by 0.25, but only where x0 > 0.5
    rng = np.random.default_rng(0)
    n = 6_000
    X = rng.random((n, 4))
    treated = rng.random(n) < 0.5
    responds = X[:, 0] > 0.5
    p = 0.4 - 0.25 * (treated & responds)
    y = (rng.random(n) < p).astype(int)
    model = TLearner(seed=1).fit(X, treated, y)
    test = rng.random((2_000, 4))
    uplift = model.predict(test)
    mine = test[:, 0] > 0.5
    assert uplift[mine].mean() == pytest.approx(0.25, abs=0.06)
    assert uplift[~mine].mean() == pytest.approx(0.0, abs=0.06)
    # the ranking finds who responds: the top fifth are nearly all responders
    top = uplift >= np.quantile(uplift, 0.8)
    assert mine[top].mean() > 0.9


def test_t_learner_refuses_a_group_without_both_outcomes() -> None:
    X = np.zeros((100, 2))
    with pytest.raises(ValueError, match="treated group"):
        TLearner().fit(
            X, np.r_[np.ones(50, bool), np.zeros(50, bool)], np.r_[np.zeros(50), np.arange(50) % 2]
        )


def _request(stage, days_to_escalation, days_overdue) -> ContactRequest:
    k = len(stage)
    pop = build_population(SimulationConfig(n_customers=50, months=2, validate=False))
    return ContactRequest(
        day=date(2025, 3, 3),
        customer_index=np.arange(10, 10 + k),
        customer_id=np.array([f"C{i}" for i in range(k)], dtype=object),
        stage=np.asarray(stage),
        days_overdue=np.asarray(days_overdue),
        days_to_escalation=np.asarray(days_to_escalation),
        debt_cents=np.full(k, 100_00),
        capacity=2,
        population=pop,
    )


def test_the_rule_calls_open_second_reminders_closest_to_the_agency_first() -> None:
    request = _request([0, 2, 1, 2, 2], [3, 9, 2, 1, 1], [4, 28, 12, 36, 30])
    # stage-2 customers only (indices 11, 13, 14): 13 and 14 are a day from the agency
    # (13 longer overdue first), then 11
    assert second_reminder_rule(request).tolist() == [13, 14, 11]


def test_random_order_of_a_customer_does_not_depend_on_the_others() -> None:
    request = _request([0] * 5, [5] * 5, [3] * 5)
    order = RandomTargeting(seed=3)(request).tolist()
    assert sorted(order) == request.customer_index.tolist()
    fewer = replace(
        request,
        customer_index=request.customer_index[:3],
        stage=request.stage[:3],
        days_overdue=request.days_overdue[:3],
        days_to_escalation=request.days_to_escalation[:3],
    )
    assert RandomTargeting(seed=3)(fewer).tolist() == [c for c in order if c in (10, 11, 12)]


def test_the_pilot_randomises_new_candidates_and_labels_escalations() -> None:
    config = SimulationConfig(
        n_customers=800, months=8, end_date=date(2026, 1, 1), seed=4, validate=False
    )
    pop = build_population(config)
    pilot = PilotRandomisation(share=0.3, seed=1)
    plan = ContactPlan(pilot, capacity_per_day=50, start=date(2025, 7, 1))
    result = simulate(config, population=pop, policy=replace(CollectionPolicy(), contact=plan))
    units = pilot_units(pilot, plan, result, pop)
    share = units["treated"].mean()
    assert 0.2 < share < 0.4  # the coin, the capacity never bound at 50 a day
    assert len(plan.contacts) == int(units["treated"].sum())  # only coin-chosen were called
    assert units["X"].shape[0] == len(units["y"]) and 0 < units["y"].mean() < 1
    _, check = fit_uplift(units, seed=0)
    assert check["treated"] + check["control"] == len(units["y"])


def test_the_offer_is_todays_plan_unless_tijdig_is_asked_for() -> None:
    from training.simulation import debt_over_five_months
    from training.studies.targeting_eval.run import _arrangement_policy

    today = _arrangement_policy("debt_over_5", None)  # type: ignore[arg-type]
    assert today.arrangement_monthly is debt_over_five_months
    with pytest.raises(ValueError, match="offer must be one of"):
        _arrangement_policy("debt_over_3", None)  # type: ignore[arg-type]


def test_prevented_escalations_come_only_from_called_customers() -> None:
    from training.studies.targeting_eval.run import (
        handovers_by_customer,
        outcome_figures,
        run_figures,
    )

    config = SimulationConfig(
        n_customers=600, months=8, end_date=date(2026, 1, 1), seed=9, validate=False
    )
    pop = build_population(config)
    since = date(2025, 7, 1)
    none_result = simulate(config, population=pop)
    plan = ContactPlan(RandomTargeting(seed=2), capacity_per_day=6, start=since)
    result = simulate(config, population=pop, policy=replace(CollectionPolicy(), contact=plan))
    figures = run_figures(
        plan,
        result,
        outcome_figures(none_result, since),
        since,
        pop,
        handovers_by_customer(none_result, since),
    )
    assert figures["calls"] == len(plan.contacts) > 0
    assert figures["handovers_changed_outside_called"] == 0
    assert figures["prevented_per_100_calls_se"] >= 0

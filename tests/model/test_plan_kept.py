"""P(kept) component: trained with the bundle, calibrated, monotone in the monthly amount."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from features.build import build_features
from models.plan_kept import PlanKeptModel, plan_matrix
from models.plans import PlanPolicy, plan_grid


@pytest.fixture(scope="module")
def component(trained):
    assert "plan_kept" in trained.bundle.components
    return trained.bundle.components["plan_kept"]


@pytest.fixture(scope="module")
def customers(population_events):
    day = int(population_events.arrangements["start_day"].max())
    return build_features(population_events, day), day


def _three_arrangements_only(events):
    """A training context whose events keep only 3 arrangements: too few to learn from."""
    thin = dataclasses.replace(
        events,
        arrangements=events.arrangements.__class__(
            {k: v[:3] for k, v in events.arrangements.cols.items()}
        ),
    )
    return SimpleNamespace(events=thin, split=SimpleNamespace(dates={}), params={"num_threads": 1})


def test_trained_and_gated_with_the_bundle(trained, component):
    assert "plan_kept" in trained.components
    fitted = trained.components["plan_kept"]
    results = fitted.compare(None)
    assert results and all(isinstance(ok, bool) and reason for ok, reason in results)
    assert fitted.compare(component)  # against itself: comparable
    component.self_check()


def test_metrics_include_held_out_calibration(trained, component):
    m = trained.components["plan_kept"].metrics
    assert "rows" in m and "kept_rate" in m
    if component.mode == "lightgbm":
        for key in ("roc_auc", "brier", "ece"):
            assert key in m
        assert 0 <= m["ece"] <= 1


def test_higher_monthly_amount_never_raises_p_kept(component, customers):
    X, day = customers
    rng = np.random.default_rng(3)
    rows = X[rng.choice(len(X), 60, replace=False)]
    amounts = np.array([5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 800, 1500.0])
    for debt in (150.0, 600.0, 2500.0):
        n, k = len(rows), len(amounts)
        P = component.predict(
            plan_matrix(np.repeat(rows, k, 0), day, np.tile(amounts, n), np.full(n * k, debt))
        ).reshape(n, k)
        assert np.all(np.diff(P, axis=1) <= 1e-12), "asking more per month raised P(kept)"
        # also with a declared budget
        P2 = component.predict(
            plan_matrix(
                np.repeat(rows, k, 0),
                day,
                np.tile(amounts, n),
                np.full(n * k, debt),
                income_eur=np.full(n * k, 1800.0),
                free_room_eur=np.full(n * k, 120.0),
            )
        ).reshape(n, k)
        assert np.all(np.diff(P2, axis=1) <= 1e-12)


def test_save_load_round_trip(component, customers, tmp_path):
    X, day = customers
    component.save(tmp_path / "plan_kept")
    loaded = PlanKeptModel.load(tmp_path / "plan_kept")
    loaded.self_check()
    rows = plan_matrix(X[:20], day, np.full(20, 50.0), np.full(20, 400.0))
    np.testing.assert_allclose(loaded.predict(rows), component.predict(rows))


def test_thin_data_gives_a_valid_conservative_component(population_events):
    from training.plan_kept import PlanKeptTrainer

    fitted = PlanKeptTrainer().fit(_three_arrangements_only(population_events))
    assert fitted.component.mode == "prior"
    fitted.component.self_check()
    assert all(ok for ok, _ in fitted.compare(None))
    assert all(ok for ok, _ in fitted.compare(fitted.component))  # a prior after a prior


def test_the_gate_never_trades_a_learned_champion_for_the_prior(population_events, component):
    """Review, 1 Dec 2026: a candidate whose P(kept) fell back to the constant prior passed
    the gate against a learned champion it lost to on the Brier score (debit failure
    already refused that)."""
    from training.plan_kept import PlanKeptTrainer

    assert component.mode == "lightgbm"
    prior = PlanKeptTrainer().fit(_three_arrangements_only(population_events))
    (verdict,) = prior.compare(component)
    assert verdict[0] is False and "champion's is learned" in verdict[1]


def test_a_champion_that_cannot_be_compared_is_not_passed(trained):
    class Unscorable:
        mode = "lightgbm"

        def predict(self, X):
            raise ValueError("features it was not trained on")

    verdicts = trained.components["plan_kept"].compare(Unscorable())
    assert any(not ok and "not comparable" in why for ok, why in verdicts)


def test_plans_respect_max_months_and_referral(component, customers):
    X, day = customers
    policy = PlanPolicy.default()
    debt = np.full(len(X), 500_00)
    grid = plan_grid(component, X, day, debt, policy)
    # issue 20: P(kept) is no cut-off; without budget limits nobody is referred
    assert not grid.referral.any()
    rows = np.arange(len(X))
    assert grid.terms.max() == policy.max_months
    assert np.all(
        grid.monthly_cents[rows, grid.choice[rows]] * grid.terms[grid.choice[rows]] >= 500_00
    )
    # no free room -> referral with that reason, whatever the model says
    g2 = plan_grid(component, X[:5], day, debt[:5], policy, free_room_eur=np.full(5, -10.0))
    assert g2.referral.all() and set(g2.referral_reason) == {"no_free_room"}


def test_search_maximises_the_expected_outcome(component, customers):
    X, day = customers
    policy = PlanPolicy.default()
    debt = np.random.default_rng(5).integers(50_00, 3000_00, len(X))
    grid = plan_grid(component, X, day, debt, policy)
    rows = np.flatnonzero(~grid.referral)
    checked = 0
    for i in rows[:300]:
        scores = grid.objective_cents[i][grid.acceptable[i]]
        best, worst = scores.max(), scores.min()
        bar = best - policy.tie_tolerance * (best - worst) - 1e-6
        # the objective's pick: the shortest acceptable plan within the tolerance of the best
        pick = int(np.flatnonzero(grid.acceptable[i] & (grid.objective_cents[i] >= bar))[0])
        assert grid.acceptable[i, grid.choice[i]]
        if grid.p_kept[i, pick] >= policy.target_p_kept:
            assert grid.choice[i] == pick
            checked += 1
        else:  # the low-P(kept) rule (test_plan_referrals): a longer term, never shorter
            assert grid.choice[i] >= pick
    assert checked > 0
    # the grid holds, per term, the smallest step amount that repays in that term
    m, t = grid.monthly_cents, grid.terms[None, :]
    smaller = np.maximum(m - policy.amount_step_cents, 1)
    cut = grid.valid & (m - policy.amount_step_cents >= policy.min_monthly_amount_cents)
    assert np.all((-(-debt[:, None] // smaller) > t)[cut])


def test_fallback_is_the_most_expected_repaid_plan(component, customers):
    X, day = customers
    policy = PlanPolicy.default()
    debt = np.full(len(X), 800_00)
    grid = plan_grid(component, X, day, debt, policy)
    exp = np.where(grid.valid, grid.objective_cents, -np.inf)
    i = np.arange(len(X))
    assert np.all(grid.valid[i, grid.best_expected])
    np.testing.assert_allclose(exp[i, grid.best_expected], exp.max(axis=1))
    # with a capacity, the fallback fits it when any valid plan does
    cap = np.full(len(X), 60.0)
    g2 = plan_grid(
        component, X, day, debt, policy, standard_capacity_eur=cap, maximum_capacity_eur=cap
    )
    assert np.all(g2.monthly_cents[i, g2.best_expected] <= 60_00)


def test_varied_training_amounts_are_deterministic_and_span_1_to_18_parts():
    from datetime import date

    from training.simulation.policy import ArrangementRequest, VariedArrangementAmounts

    debt = np.full(5000, 900_00)
    req = ArrangementRequest(
        date(2025, 3, 4), np.arange(5000), np.arange(5000), debt, population=None
    )
    a, b = VariedArrangementAmounts(seed=1)(req), VariedArrangementAmounts(seed=1)(req)
    np.testing.assert_array_equal(a, b)
    parts = -(-debt // a)
    assert parts.min() == 1 and parts.max() == 18 and len(np.unique(parts)) == 18
    assert np.all(a % 100 == 0) and np.all(a >= 10_00)
    small = VariedArrangementAmounts(seed=1)(
        ArrangementRequest(
            date(2025, 3, 4),
            np.arange(3),
            np.arange(3),
            np.array([30_00, 5_00, 100_00]),
            population=None,
        )
    )
    assert np.all(small <= np.array([30_00, 5_00, 100_00])) and small[1] == 5_00

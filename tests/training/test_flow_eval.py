"""The whole-flow study: every run shares the population and its history, the traditional
run is the plain current practice, a lever alone changes only what it controls, and the
goals read met or missed as the figures say."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from training.simulation import build_population, customers_changed, simulate
from training.studies.flow_eval.figures import goal_rows, lever_shares
from training.studies.flow_eval.levers import (
    LEVERS,
    TIJDIG,
    TRADITIONAL,
    Levers,
    effective_month,
    events_before,
    run_names,
)
from training.studies.flow_eval.report import render_markdown
from training.studies.flow_eval.run import eval_config, evaluate_runs, run_flows
from training.studies.targeting_eval.policies import RandomTargeting


def debt_over_ten(request):
    """A stand-in plan policy: the debt in 10 parts."""
    return np.maximum(np.ceil(request.debt_cents / 10 / 100) * 100, 1).astype(np.int64)


def small_orders_only(request):
    """A stand-in pay-later policy: orders under EUR 60 only."""
    return request.amount_cents < 60_00


@pytest.fixture(scope="module")
def flows():
    config, adoption = eval_config(n_customers=250, months=4, seed=7)
    config = config.__class__(**{**config.__dict__, "validate": False})
    population = build_population(config)
    levers = Levers(
        adoption=adoption,
        debit_days=np.where(population.debit_day == 25, 1, 25).astype(np.int64),
        debit_days_from=effective_month(adoption, 14),
        make_plans=lambda: debt_over_ten,
        make_pay_later=lambda: small_orders_only,
        make_targeting=lambda: RandomTargeting(seed=3),
        capacity_per_day=6,
    )
    simulated = run_flows(config, population, levers, run_names())
    return config, population, adoption, simulated


@pytest.fixture(scope="module")
def evaluated(flows):
    _, _, adoption, simulated = flows
    return evaluate_runs(simulated, adoption)


def test_the_runs_are_traditional_all_four_and_each_lever_alone() -> None:
    assert run_names() == {
        TRADITIONAL: (),
        TIJDIG: LEVERS,
        **{f"{lever}_alone": (lever,) for lever in LEVERS},
    }
    assert len(run_names(leave_one_out=True)) == 2 + 2 * len(LEVERS)


def test_every_run_shares_the_population_and_the_history_before_adoption(flows, evaluated) -> None:
    _, _, _, simulated = flows
    customers = [r.tables["customers"] for _, r in simulated.values()]
    for other in customers[1:]:
        pd.testing.assert_frame_equal(customers[0], other)
    assert set(evaluated["shared_history"].values()) == {0}
    # and tijdig did act after it
    assert customers_changed(simulated[TRADITIONAL][1], simulated[TIJDIG][1])


def test_traditional_is_the_plain_current_practice(flows, evaluated) -> None:
    config, population, _adoption, simulated = flows
    plain = simulate(config, population=population)
    traditional = simulated[TRADITIONAL][1]
    assert customers_changed(plain, traditional) == set()
    figures = evaluated["runs"][TRADITIONAL]
    assert figures["calls"] == figures["debt_help_referrals"] == figures["debit_days_changed"] == 0
    assert 0 < figures["pay_later_approved"] <= figures["pay_later_orders"]


def _touched(lever: str, flows) -> set[str]:
    """The customers lever ``lever`` alone acted on (decided otherwise than traditional)."""
    _, population, adoption, simulated = flows
    base_run, _base = simulated[TRADITIONAL]
    run, result = simulated[f"{lever}_alone"]
    if lever == "debit_day":
        truth = result.truth_customers
        return set(
            truth.loc[
                truth["creditor_debit_day"] != truth["current_practice_debit_day"], "customer_id"
            ]
        )
    if lever == "plans":
        requests = base_run.requests()
        return set(requests.loc[requests["start_date"] >= pd.Timestamp(adoption), "customer_id"])
    if lever == "pay_later":
        keys = ["customer_id", "issue_date", "amount_cents"]
        both = base_run.orders.orders().merge(run.orders.orders(), on=keys, how="outer")
        differ = both["approved_x"].astype("boolean") != both["approved_y"].astype("boolean")
        return set(both.loc[differ.fillna(True), "customer_id"])
    called = run.calls()["customer_index"].to_numpy(np.int64)
    return set(population.customer_ids[called].tolist())


@pytest.mark.parametrize("lever", LEVERS)
def test_a_lever_alone_changes_only_the_customers_it_acted_on(lever, flows) -> None:
    _, _, _adoption, simulated = flows
    changed = customers_changed(simulated[TRADITIONAL][1], simulated[f"{lever}_alone"][1])
    touched = _touched(lever, flows)
    assert changed, f"{lever} alone changed nobody"
    assert changed <= touched
    # e.g. the debit day alone: every other customer's pay-later orders got the same answers
    keys = ["customer_id", "issue_date", "amount_cents", "approved"]
    orders = [simulated[name][0].orders.orders()[keys] for name in (TRADITIONAL, f"{lever}_alone")]
    same = [o[~o["customer_id"].isin(changed)].reset_index(drop=True) for o in orders]
    pd.testing.assert_frame_equal(same[0], same[1])


@pytest.mark.parametrize("lever", LEVERS)
def test_a_lever_alone_leaves_the_other_levers_decisions_alone(lever, flows, evaluated) -> None:
    _, _, _, simulated = flows
    figures = evaluated["runs"][f"{lever}_alone"]
    if lever != "contact":
        assert figures["calls"] == 0
    if lever != "debit_day":
        assert figures["debit_days_changed"] == 0
    if lever != "plans":
        assert figures["debt_help_referrals"] == 0
    if lever != "pay_later":
        # the traditional rule still decides: only a claim at an agency declines
        run = simulated[f"{lever}_alone"][0]
        assert run.policy.approve_bnpl.policy.__name__ == "accept_unless_at_agency"


def _figures(costs: float, recovered: float, bailiff: int) -> dict[str, float]:
    return {
        "collection_costs_eur": costs,
        "principal_recovered_pct": recovered,
        "customers_reaching_bailiff": bailiff,
        "failed_debits_per_1000": 50.0,
        "plans_kept_share": 0.4,
    }


@pytest.mark.parametrize(
    ("tijdig", "met"),
    [
        (_figures(50.0, 89.0, 6), [True, True, True]),  # exactly on every target
        (_figures(51.0, 88.9, 7), [False, False, False]),
        (_figures(10.0, 95.0, 0), [True, True, True]),
    ],
)
def test_the_goal_rows_say_met_or_missed(tijdig, met) -> None:
    rows = goal_rows({TRADITIONAL: _figures(100.0, 90.0, 10), TIJDIG: tijdig})
    assert [r["met"] for r in rows] == met
    for row in rows:
        assert (row["gap"] == 0) == row["met"]
    if not met[0]:
        assert rows[0]["gap"] == pytest.approx(0.01)  # 49 % lower: 1 point short of 50 %
        assert rows[1]["gap"] == pytest.approx(0.1)  # 1.1 points below: 0.1 too many
        assert rows[2]["gap"] == pytest.approx(0.1)  # 30 % fewer: 10 points short of 40 %


def test_a_levers_share_is_its_change_alone_over_tijdigs_change() -> None:
    runs = {
        TRADITIONAL: _figures(100.0, 90.0, 10),
        TIJDIG: _figures(60.0, 91.0, 6),
        "plans_alone": _figures(80.0, 90.5, 9),
        "without_plans": _figures(70.0, 90.0, 8),
    }
    shares = lever_shares(runs)["collection_costs_eur"]
    assert shares["change"] == -40.0
    assert shares["plans"]["alone"] == -20.0 and shares["plans"]["alone_share"] == 0.5
    assert shares["plans"]["leave_one_out"] == -10.0
    assert shares["plans"]["leave_one_out_share"] == 0.25
    assert shares["contact"] == {}


def test_the_report_states_each_goal_met_or_missed(flows, evaluated) -> None:
    _, _, adoption, _ = flows
    report = {
        "customers": 400,
        "seed": 7,
        "period": ["2025-05-01", "2026-11-01"],
        "adoption": adoption.isoformat(),
        "months_from_adoption": 6,
        "levers": {
            "train_seed": 1,
            "train_period": ["a", "b"],
            "bundle": "stand-in",
            "capacity_per_business_day": 6,
            "targeting": "random",
            "debit_days_changed": 1,
            "debit_days_changed_share": 0.1,
            "debit_days_from": "x",
            "debit_model": "none",
            "bnpl_policy": "stand-in",
            "bnpl_risk_cutoff": None,
        },
        **evaluated,
    }
    page = render_markdown(report)
    for row in report["goals"]:
        line = next(x for x in page.splitlines() if x.startswith(f"| {row['goal']} |"))
        assert line.rstrip(" |").endswith("met") == row["met"]
        assert ("missed by" in line) == (not row["met"])


def test_the_history_a_creditor_saw_hides_later_outcomes() -> None:
    tables = {
        "arrangements": pd.DataFrame(
            {
                "start_date": pd.to_datetime(["2025-01-05", "2025-03-01", "2025-06-01"]),
                "outcome": ["kept", "broken", "active"],
                "end_date": pd.to_datetime(["2025-02-01", "2025-07-01", None]),
            }
        ),
        "payments": pd.DataFrame({"paid_at": pd.to_datetime(["2025-03-31", "2025-04-01"])}),
    }
    seen = events_before(tables, date(2025, 4, 1))
    assert len(seen["payments"]) == 1
    assert seen["arrangements"]["outcome"].tolist() == ["kept", "active"]
    assert seen["arrangements"]["end_date"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("adoption", "effective"),
    [
        (date(2025, 11, 1), date(2025, 12, 1)),
        (date(2025, 11, 17), date(2025, 12, 1)),  # notified on the 1st: that month
        (date(2025, 11, 18), date(2026, 1, 1)),
        (date(2025, 12, 20), date(2026, 2, 1)),
    ],
)
def test_a_debit_day_takes_effect_after_the_pre_notification(adoption, effective) -> None:
    assert effective_month(adoption, 14) == effective

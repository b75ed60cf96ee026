"""The plan pause in the simulator (CCD2 art. 35): a customer whose income drops while a
plan with a pause runs asks for it instead of breaking the plan."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from training.simulation import (
    ArrangementAnswer,
    ArrangementRequest,
    CollectionPolicy,
    SimulationConfig,
    SimulationResult,
    build_population,
    debt_over_five_months,
    simulate,
)

# frequent income drops, and every customer asks for the pause their plan offers
CONFIG = SimulationConfig(
    n_customers=3_000,
    months=12,
    end_date=date(2026, 1, 1),
    seed=5,
    validate=False,
    job_loss_rate=0.05,
    income_cut_rate=0.05,
    plan_pause_ask_rate=1.0,
)
PAUSE_MONTHS = 2
# the pause moves every instalment still to pay, the one missed but in its grace included,
# by whole months: no plan breaks within this many days of its pause (the shortest months)
PAUSE_DAYS = pd.Timedelta(days=28 * PAUSE_MONTHS)


def with_pause(request: ArrangementRequest) -> ArrangementAnswer:
    return ArrangementAnswer(debt_over_five_months(request), PAUSE_MONTHS, 1)


def without_pause(request: ArrangementRequest) -> ArrangementAnswer:
    return ArrangementAnswer(debt_over_five_months(request), 0, 0)


@pytest.fixture(scope="module")
def runs() -> tuple[SimulationResult, SimulationResult]:
    population = build_population(CONFIG)
    paused, unpaused = (
        simulate(CONFIG, policy=CollectionPolicy(arrangement_monthly=f), population=population)
        for f in (with_pause, without_pause)
    )
    return paused, unpaused


def _plans(result: SimulationResult) -> pd.DataFrame:
    plans = result.tables["arrangements"].merge(
        result.plan_pauses[["arrangement_id", "paused_on"]], on="arrangement_id", how="left"
    )
    return plans.set_index(["customer_id", "start_date"])


def _sure_drops(result: SimulationResult) -> pd.DataFrame:
    """(customer_id, day): the 1st of a month on which the customer surely lost income (a
    job loss or a new income cut shows in the next month's state; the state of a month is
    the one before that day's draws)."""
    t = result.truth_monthly.sort_values(["customer_id", "month_start"])
    nxt = t.groupby("customer_id")[["unemployed", "income_cut"]].shift(-1)
    lost = (nxt["unemployed"].eq(True) & ~t["unemployed"]) | (
        nxt["income_cut"].eq(True) & ~t["income_cut"]
    )
    return t.loc[lost, ["customer_id", "month_start"]].rename(columns={"month_start": "day"})


def test_a_customer_whose_income_drops_mid_plan_pauses_rather_than_breaks(runs) -> None:
    paused, unpaused = runs
    with_net, without_net = _plans(paused), _plans(unpaused)
    assert unpaused.plan_pauses.empty
    # the first drop during each plan (the runs are the same until then)
    drops = _sure_drops(unpaused).merge(without_net.reset_index(), on="customer_id")
    during = (drops["day"] > drops["start_date"]) & (
        drops["end_date"].isna() | (drops["end_date"] >= drops["day"])
    )
    first = drops[during].groupby(["customer_id", "start_date"])["day"].min()
    assert len(first) > 20
    twin = with_net.loc[first.index]
    # every such plan was paused, on that drop or on an earlier one
    assert twin["paused_on"].notna().all()
    assert (twin["paused_on"] <= first).all()
    # plans paused on that drop which broke within the pause without it were not broken
    # then with it
    pause_end = first + PAUSE_DAYS
    broke = without_net.loc[first.index]
    saved = (
        (twin["paused_on"] == first)
        & (broke["outcome"] == "broken")
        & (broke["end_date"] < pause_end)
    )
    assert saved.sum() > 5
    rescued = twin[saved]
    assert not ((rescued["outcome"] == "broken") & (rescued["end_date"] < pause_end[saved])).any()


def test_no_instalment_is_missed_during_a_pause_and_the_end_moves(runs) -> None:
    paused, _ = runs
    plans = _plans(paused)
    p = plans[plans["paused_on"].notna()]
    assert len(p) > 20
    assert (p["paused_on"].dt.day == 1).all()  # asked at the month's income change
    broken = p[p["outcome"] == "broken"]
    assert len(broken) > 0
    assert (broken["end_date"] >= broken["paused_on"] + PAUSE_DAYS).all()
    # a kept plan that paused ends the pause later than its term allows without one
    kept = p[p["outcome"] == "kept"].reset_index()
    assert len(kept) > 0
    months = kept["term_months"] - 1 + PAUSE_MONTHS  # first instalment a week after the start
    earliest_end = kept["start_date"] + pd.to_timedelta(7 + 28 * months, "D")
    assert (kept["end_date"] >= earliest_end).all()


def test_an_answer_without_a_pause_never_pauses() -> None:
    config = SimulationConfig(
        n_customers=500, months=6, end_date=date(2026, 1, 1), seed=3, validate=False,
        job_loss_rate=0.05, income_cut_rate=0.05, plan_pause_ask_rate=1.0,
    )  # fmt: skip
    result = simulate(config)  # current practice: debt / 5, a plain amount, no pause
    assert len(result.tables["arrangements"]) > 0
    assert result.plan_pauses.empty


def test_the_ask_rate_is_a_probability() -> None:
    with pytest.raises(ValueError, match="plan_pause_ask_rate"):
        SimulationConfig(plan_pause_ask_rate=1.5)

"""The simulator's population-wide income shock (issue 23): off by default, so the default
world is unchanged; on, the world is the same up to the shock and poorer after it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from features.schemas import TABLES
from training.simulation import SimulationConfig, simulate

BASE = SimulationConfig(n_customers=600, months=10, end_date=date(2026, 1, 1), seed=5)
SHOCK = date(2025, 9, 15)  # from 1 September 2025
SHOCKED = replace(BASE, income_shock_from=SHOCK, income_shock_share=0.5, income_shock_cut=0.4)


@pytest.fixture(scope="module")
def normal():
    return simulate(BASE)


@pytest.fixture(scope="module")
def shocked():
    return simulate(SHOCKED)


@pytest.mark.parametrize(
    "off",
    [
        replace(BASE, income_shock_from=SHOCK),  # a date, nobody hit
        replace(BASE, income_shock_share=0.5, income_shock_cut=0.4),  # no date
        replace(BASE, income_shock_from=SHOCK, income_shock_share=0.5),  # nothing lost
    ],
)
def test_a_shock_that_is_off_changes_nothing(normal, off):
    assert off.income_shock_start() is None
    again = simulate(off)
    for name in TABLES:
        pd.testing.assert_frame_equal(normal.tables[name], again.tables[name], obj=name)
    pd.testing.assert_frame_equal(normal.truth_monthly, again.truth_monthly)


def test_the_default_config_has_no_shock():
    default = SimulationConfig()
    assert default.income_shock_from is None and default.income_shock_start() is None


def _before(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[pd.to_datetime(frame[column]) < pd.Timestamp(2025, 9, 1)].reset_index(drop=True)


def test_the_shocked_world_is_the_same_until_the_shock(normal, shocked):
    for name, column in [
        ("income_receipts", "received_at"),
        ("invoices", "issue_date"),
        ("payments", "paid_at"),
    ]:
        pd.testing.assert_frame_equal(
            _before(normal.tables[name], column), _before(shocked.tables[name], column), obj=name
        )


def test_after_the_shock_about_the_share_lost_about_the_cut(normal, shocked):
    def monthly_income(result):
        receipts = result.tables["income_receipts"]
        after = receipts[pd.to_datetime(receipts["received_at"]) >= pd.Timestamp(2025, 10, 1)]
        return after.groupby("customer_id")["amount_cents"].sum()

    before, after = monthly_income(normal), monthly_income(shocked)
    both = before.index.intersection(after.index)
    ratio = after[both] / before[both]
    hit = ratio < 0.9
    assert 0.4 < hit.mean() < 0.6  # about half the customers
    assert ratio[hit].median() == pytest.approx(0.6, abs=0.1)  # lost about 40 %
    assert ratio[~hit].median() == pytest.approx(1.0, abs=0.02)


def test_the_config_round_trips_the_shock():
    assert SimulationConfig.from_dict(SHOCKED.to_dict()) == SHOCKED
    assert SHOCKED.income_shock_start() == date(2025, 9, 1)
    with pytest.raises(ValueError, match="income_shock_cut"):
        replace(BASE, income_shock_cut=1.5)

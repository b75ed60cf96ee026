"""The budget view: protected minimum, free room, Nibud split, income detection (DOMAIN.md §2)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from features.build import FEATURE_INDEX, FEATURE_NAMES
from models.budget import (
    Confidence,
    DeclaredBudget,
    IncomeMethod,
    amounts_on,
    budget_arrays,
    budget_view,
    detect_income,
    prudent_free_room,
)
from models.legal import legal_table_on

ON = date(2026, 3, 1)


def row(**values: float) -> np.ndarray:
    out = np.full(len(FEATURE_NAMES), np.nan)
    out[FEATURE_INDEX["household_adults"]] = 1
    out[FEATURE_INDEX["household_children"]] = 0
    out[FEATURE_INDEX["household_pensioner"]] = 0
    for k, v in values.items():
        out[FEATURE_INDEX[k]] = v
    return out


def receipts(mean: float, recent: float, **more: float) -> np.ndarray:
    """A customer whose open-banking receipts show ``mean`` a month over the year and
    ``recent`` a month over the last 90 days."""
    return row(
        has_income_data=1, income_monthly_365d_eur=mean, income_monthly_90d_eur=recent, **more
    )


def view(r: np.ndarray, declared: DeclaredBudget | None = None):
    return budget_view(r, ON, declared, standard_share=0.65, maximum_share=1.0)


def test_protected_minimum_is_vtlb_share_of_the_norm_plus_housing_and_care():
    amounts = amounts_on(ON)
    norm = legal_table_on(ON).bijstandsnorm_incl_holiday_cents["single"] / 100
    b = view(row(), DeclaredBudget(net_income_eur=2000, household_type="single"))
    assert b.protected_minimum_eur == pytest.approx(round(amounts.vtlb_share * norm, 2))
    b2 = view(
        row(),
        DeclaredBudget(
            net_income_eur=2000, housing_costs_eur=700, care_costs_eur=40, household_type="single"
        ),
    )
    excess = 700 - amounts.norm_rent_cents / 100
    assert b2.protected_minimum_eur == pytest.approx(
        b.protected_minimum_eur + excess + 40, abs=0.01
    )
    # rent above the counted maximum raises the correction no further
    b3 = view(
        row(), DeclaredBudget(net_income_eur=2000, housing_costs_eur=5000, household_type="single")
    )
    assert b3.protected_minimum_eur == pytest.approx(
        b.protected_minimum_eur + (amounts.max_rent_counted_cents - amounts.norm_rent_cents) / 100,
        abs=0.01,
    )
    assert b.legal_table_version == legal_table_on(ON).version


def test_free_room_uses_the_higher_floor_and_subtracts_arrangements():
    declared = DeclaredBudget(
        net_income_eur=2000,
        housing_costs_eur=800,
        other_fixed_costs_eur=600,
        other_arrangements_eur=50,
        household_type="single",
    )
    b = view(row(arrangement_monthly_eur=25.0, monthly_billed_eur=30.0), declared)
    assert b.fixed_costs_eur == pytest.approx(800 + 600 + 30)
    assert b.nibud_floor_eur == pytest.approx(
        b.fixed_costs_eur + amounts_on(ON).nibud_min_living_cents["single"] / 100
    )
    floor = max(b.protected_minimum_eur, b.nibud_floor_eur)
    assert b.free_room_eur == pytest.approx(2000 - floor - 75, abs=0.01)
    assert b.standard_capacity_eur == pytest.approx(0.65 * max(b.free_room_eur, 0), abs=0.01)
    assert b.maximum_capacity_eur == pytest.approx(max(b.free_room_eur, 0), abs=0.01)


def test_no_free_room_gives_zero_capacity():
    b = view(row(), DeclaredBudget(net_income_eur=900, household_type="couple"))
    assert b.free_room_eur < 0
    assert b.standard_capacity_eur == 0 and b.maximum_capacity_eur == 0


def test_unknown_household_type_is_refused():
    with pytest.raises(ValueError, match="household_type"):
        view(row(), DeclaredBudget(household_type="commune"))


def test_household_from_features_selects_the_norm():
    couple = row(household_adults=2, household_children=1, declared_income_eur=3000)
    assert view(couple).household_type == "couple_with_children"
    pensioner = row(household_adults=1, household_pensioner=1, declared_income_eur=3000)
    assert view(pensioner).household_type == "pensioner_single"


def test_income_detection_says_how_and_how_sure():
    seen = receipts(2100, 2100, income_variability_180d=0.02, days_since_income=10)
    d = detect_income(seen)
    assert (d.method, d.confidence, d.amount_eur) == (
        IncomeMethod.OPEN_BANKING_RECEIPTS,
        Confidence.HIGH,
        2100,
    )
    short = row(
        has_income_data=1,
        income_monthly_365d_eur=2100,
        income_monthly_90d_eur=2100,
        days_since_income=10,
    )
    assert detect_income(short).confidence == Confidence.MEDIUM
    declared = detect_income(row(declared_income_eur=1800))
    assert (declared.method, declared.confidence) == (
        IncomeMethod.DECLARED_ON_RECORD,
        Confidence.LOW,
    )
    none = detect_income(row())
    assert (none.method, none.amount_eur) == (IncomeMethod.UNKNOWN, None)
    b = view(row())
    assert b.free_room_eur is None and b.standard_capacity_eur is None


def test_caller_declared_income_wins_but_the_detected_one_is_shown():
    seen = row(
        has_income_data=1,
        income_monthly_365d_eur=2500,
        income_monthly_90d_eur=2500,
        days_since_income=5,
    )
    b = view(seen, DeclaredBudget(net_income_eur=1500))
    assert b.income.method == IncomeMethod.DECLARED_BY_CALLER and b.income.amount_eur == 1500
    assert b.detected_income.amount_eur == 2500
    assert any("differs" in n for n in b.notes)


def test_columnar_budget_matches_the_single_view():
    r = row(
        has_income_data=1,
        income_monthly_365d_eur=2300,
        income_monthly_90d_eur=2300,
        monthly_billed_eur=40,
        arrangement_monthly_eur=20,
        days_since_income=3,
    )
    from features.events import to_day

    income, room = budget_arrays(r.reshape(1, -1), np.array([to_day(ON)]))
    b = view(r)
    assert income[0] == pytest.approx(2300)
    assert room[0] == pytest.approx(b.free_room_eur, abs=0.01)


def test_columnar_budget_matches_the_single_view_for_every_household_income_and_day():
    """One matrix mixing households, income sources and legal-table days: each row's
    columnar answer equals the single view's (the pay-later limit and the P(kept)
    model's free-room feature rest on the columnar one)."""
    from features.events import to_day

    rows, days = [], []
    households = [(1, 0, 0), (1, 1, 0), (2, 0, 0), (2, 1, 0), (1, 0, 1), (2, 0, 1), (np.nan,) * 3]
    incomes = [
        {"has_income_data": 1, "income_monthly_365d_eur": 2300.0},
        {  # the income fell: the last 90 days' rate counts
            "has_income_data": 1,
            "income_monthly_365d_eur": 2996.7,
            "income_monthly_90d_eur": 2247.0,
        },
        {"has_income_data": 0, "declared_income_eur": 1800.0},
        {"has_income_data": 1, "income_monthly_365d_eur": np.nan, "declared_income_eur": 1700.0},
        {"has_income_data": 0},  # nothing known: NaN, like the view's None
    ]
    for on in (date(2024, 6, 1), ON, date(2026, 11, 1)):
        for adults, children, pensioner in households:
            for income in incomes:
                r = row(monthly_billed_eur=40, arrangement_monthly_eur=20, **income)
                r[FEATURE_INDEX["household_adults"]] = adults
                r[FEATURE_INDEX["household_children"]] = children
                r[FEATURE_INDEX["household_pensioner"]] = pensioner
                rows.append(r)
                days.append(to_day(on))
    X, as_of = np.vstack(rows), np.array(days)

    income, room = budget_arrays(X, as_of, prudent=True)
    for i, r in enumerate(X):
        one_day = budget_arrays(r.reshape(1, -1), as_of[i : i + 1], prudent=True)
        assert (one_day[0][0], one_day[1][0]) == pytest.approx((income[i], room[i]), nan_ok=True)
        b = budget_view(
            r,
            date.fromordinal(date(1970, 1, 1).toordinal() + int(as_of[i])),
            standard_share=0.65,
            maximum_share=1.0,
        )
        if b.free_room_eur is None:
            assert np.isnan(room[i]) and np.isnan(income[i]), i
        else:
            assert income[i] == pytest.approx(b.income.amount_eur, abs=0.005), i
            assert room[i] == pytest.approx(b.free_room_eur, abs=0.005), i


def test_one_rows_free_room_is_the_columnar_one_bit_for_bit():
    """The pay-later route's one-row free room (plain floats) equals budget_arrays'
    prudent free room exactly, over households, income sources, NaNs and legal-table
    days (a limit is floored from it: an ulp could move a euro)."""
    from features.events import to_day

    rng = np.random.default_rng(3)
    n = 4000
    X = np.full((n, len(FEATURE_NAMES)), np.nan)

    def col(name, values, nan_share=0.2):
        X[:, FEATURE_INDEX[name]] = np.where(rng.random(n) < nan_share, np.nan, values)

    col("has_income_data", rng.integers(0, 2, n), 0.05)
    col("income_monthly_365d_eur", rng.normal(2200, 900, n).round(2))
    col("income_monthly_90d_eur", rng.normal(2100, 1100, n).round(2), 0.4)
    col("declared_income_eur", rng.choice([0.0, 1450.5, 2600.0, -5.0], n), 0.5)
    col("household_adults", rng.integers(1, 3, n), 0.1)
    col("household_children", rng.integers(0, 2, n), 0.1)
    col("household_pensioner", rng.integers(0, 2, n), 0.1)
    col("monthly_billed_eur", rng.gamma(2.0, 60.0, n).round(2))
    col("arrangement_monthly_eur", rng.choice([0.0, 25.0, 112.37], n), 0.5)
    days = np.array([to_day(d) for d in rng.choice([date(2024, 6, 1), ON, date(2026, 11, 1)], n)])
    _, room = budget_arrays(X, days, prudent=True)
    one = np.array([prudent_free_room(X[i], int(days[i])) for i in range(n)])
    assert np.isfinite(room).sum() > n // 3 and np.isnan(room).sum() > n // 10
    assert np.array_equal(one, room, equal_nan=True)


@pytest.mark.parametrize(
    ("adults", "children", "pensioner", "expected"),
    [
        (1, 0, 0, "single"),
        (1, 1, 0, "single_parent"),
        (2, 0, 0, "couple"),
        (2, 1, 0, "couple_with_children"),
        (1, 0, 1, "pensioner_single"),
        (2, 1, 1, "pensioner_couple"),
        (np.nan, np.nan, np.nan, "single"),  # unknown: single, as documented
    ],
)
def test_household_type_from_features(adults, children, pensioner, expected):
    from models.budget import household_from_features

    r = row()
    r[FEATURE_INDEX["household_adults"]] = adults
    r[FEATURE_INDEX["household_children"]] = children
    r[FEATURE_INDEX["household_pensioner"]] = pensioner
    assert household_from_features(r) == expected


def test_an_income_that_fell_counts_as_it_is_now():
    """Review, 1 Dec 2026: a couple on benefits (EUR 2,247/month) after a job loss was
    budgeted on the old salary's 12-month mean (EUR 2,997) and offered pay-later on it."""
    from features.events import to_day

    fell = receipts(2996.7, 2247.0, income_variability_180d=0.05, days_since_income=5)
    d = detect_income(fell)
    assert d.amount_eur == 2247.0 and d.confidence is not Confidence.HIGH
    assert "below the mean" in d.detail
    income, room = budget_arrays(fell.reshape(1, -1), np.array([to_day(ON)]), prudent=True)
    assert income[0] == 2247.0
    assert room[0] == pytest.approx(view(fell).free_room_eur, abs=0.01)
    # the P(plan kept) component's feature keeps the definition it was fitted on
    assert budget_arrays(fell.reshape(1, -1), np.array([to_day(ON)]))[0][0] == 2996.7
    rose = receipts(2000.0, 2600.0)
    assert detect_income(rose).amount_eur == 2000.0  # a rise waits for the year to show it

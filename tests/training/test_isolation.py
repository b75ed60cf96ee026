"""Clean counterfactuals: a decision for one customer never moves another customer's history.

Each test runs the same population twice, the second time with one decision changed for
one customer through the engine's policy hooks (the ones the debit-date, plan and
pay-later studies use), and compares every event table and the hidden monthly state row
for row, the treated customer left out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from training.simulation import (
    ArrangementRequest,
    BnplRequest,
    CollectionPolicy,
    SimulationConfig,
    SimulationResult,
    accept_unless_at_agency,
    build_population,
    debt_over_five_months,
    simulate,
)

CONFIG = SimulationConfig(
    n_customers=3_000, months=9, end_date=date(2026, 1, 1), seed=5, validate=False
)


@pytest.fixture(scope="module")
def population():
    return build_population(CONFIG)


@pytest.fixture(scope="module")
def base(population) -> SimulationResult:
    return simulate(CONFIG, population=population)


def comparable(result: SimulationResult) -> dict[str, pd.DataFrame]:
    """The event tables and the monthly hidden state, each row named by its customer.

    Row ids (``invoice_id``, ``payment_id`` ...) number rows over all customers, so one
    customer's extra invoice renumbers everyone's; an invoice is named instead by its
    customer and its place in that customer's history.
    """
    invoices = result.tables["invoices"]
    place = invoices.groupby("customer_id").cumcount().astype(str)
    local_name = dict(
        zip(invoices["invoice_id"], invoices["customer_id"] + "#" + place, strict=True)
    )
    out = {}
    for name, df in {**result.tables, "truth_monthly": result.truth_monthly}.items():
        row_ids = [c for c in df.columns if c.endswith("_id") and c != "customer_id"]
        named = df.drop(columns=[c for c in row_ids if c != "invoice_id"])
        if "invoice_id" in named:
            named = named.assign(invoice_id=named["invoice_id"].map(local_name))
        out[name] = named
    return out


def customers_changed(a: SimulationResult, b: SimulationResult) -> set[str]:
    """Customers with at least one row in one run that is not in the other (any table)."""
    changed: set[str] = set()
    for name, left in comparable(a).items():
        right = comparable(b)[name]
        both = left.merge(right, how="outer", on=list(left.columns), indicator=True)
        changed |= set(both.loc[both["_merge"] != "both", "customer_id"])
    return changed


def assert_only(treated: str, base: SimulationResult, counterfactual: SimulationResult) -> None:
    changed = customers_changed(base, counterfactual)
    # the decision did change the treated customer's own history (the test is not vacuous)
    assert treated in changed
    others = sorted(changed - {treated})
    assert not others, f"{len(others)} other customers changed, e.g. {others[:5]}"


def test_moving_one_debit_day_changes_no_other_customer(population, base) -> None:
    direct_debit = np.flatnonzero((population.method == 0) & (population.created_day == 0))
    who = int(direct_debit[0])
    days = population.debit_day.copy()
    days[who] = (days[who] + 10 - 1) % 28 + 1
    moved = simulate(
        CONFIG,
        population=population,
        policy=CollectionPolicy().with_debit_days(days, effective_from=date(2025, 7, 1)),
    )
    assert_only(population.customer_ids[who], base, moved)


def test_declining_one_pay_later_order_changes_no_other_customer(population, base) -> None:
    # an order whose invoice reached the 14-day letter: declining it changes its
    # customer's dunning (and so whether they are offered an arrangement)
    invoices = base.tables["invoices"]
    steps = base.tables["collection_steps"]
    lettered = steps.loc[steps["step"] == "fourteen_day_letter", "invoice_id"]
    order = invoices[(invoices["product"] == "bnpl") & invoices["invoice_id"].isin(lettered)].iloc[
        0
    ]
    customer, day = order["customer_id"], order["issue_date"].date()

    def decline_that_order(request: BnplRequest) -> np.ndarray:
        ok = accept_unless_at_agency(request)
        return ok & ~((request.customer_id == customer) & (request.day == day))

    declined = simulate(
        CONFIG,
        population=population,
        policy=replace(CollectionPolicy(), approve_bnpl=decline_that_order),
    )
    after = declined.tables["invoices"]
    assert not (
        (after["customer_id"] == customer) & (after["issue_date"] == order["issue_date"])
    ).any()
    assert_only(customer, base, declined)


def test_another_plan_amount_for_one_customer_changes_no_other_customer(population, base) -> None:
    # the customer of the run's first plan is offered the debt in 18 parts instead of 5
    plans = base.tables["arrangements"].sort_values("start_date", kind="stable")
    customer = plans["customer_id"].iloc[0]

    def smaller_plan_for_one(request: ArrangementRequest) -> np.ndarray:
        monthly = debt_over_five_months(request)
        smaller = np.maximum(-(-request.debt_cents // 18), 1)
        return np.where(request.customer_id == customer, smaller, monthly)

    other_plan = simulate(
        CONFIG,
        population=population,
        policy=CollectionPolicy(arrangement_monthly=smaller_plan_for_one),
    )
    assert_only(customer, base, other_plan)


def test_the_world_does_not_depend_on_the_policy(population) -> None:
    """Same seed, two policies that differ in all three decisions: the same customers,
    incomes, shocks and pay-later orders (placed, whatever the answer)."""
    placed: dict[str, list[pd.DataFrame]] = {"current": [], "other": []}

    def recording(name: str, approve):
        def answer(request: BnplRequest) -> np.ndarray:
            placed[name].append(
                pd.DataFrame(
                    {
                        "customer_id": request.customer_id,
                        "day": pd.Timestamp(request.day),
                        "amount_cents": request.amount_cents,
                    }
                )
            )
            return approve(request)

        return answer

    current = simulate(
        CONFIG,
        population=population,
        policy=replace(
            CollectionPolicy(), approve_bnpl=recording("current", accept_unless_at_agency)
        ),
    )
    other = simulate(
        CONFIG,
        population=population,
        policy=CollectionPolicy(
            arrangement_monthly=lambda request: request.debt_cents,
            approve_bnpl=recording("other", lambda request: request.amount_cents < 50_00),
        ).with_debit_days(np.full(population.n, 3), effective_from=date(2025, 6, 1)),
    )
    assert not current.tables["debit_attempts"].equals(other.tables["debit_attempts"])
    for table in ("customers", "income_receipts"):
        pd.testing.assert_frame_equal(current.tables[table], other.tables[table])
    world = ["customer_id", "month_start", "monthly_income_cents", "unemployed"]
    world += ["income_cut", "in_shock", "is_customer"]
    pd.testing.assert_frame_equal(current.truth_monthly[world], other.truth_monthly[world])
    hidden = current.truth_customers.columns.drop("creditor_debit_day")
    pd.testing.assert_frame_equal(current.truth_customers[hidden], other.truth_customers[hidden])
    orders = {name: pd.concat(parts, ignore_index=True) for name, parts in placed.items()}
    assert len(orders["current"]) > 100
    pd.testing.assert_frame_equal(orders["current"], orders["other"])

"""Tests of the embedded simulator (training.simulation)."""

from __future__ import annotations

from datetime import date

import holidays
import numpy as np
import pandas as pd
import pytest

from features.schemas import OPTIONAL_TABLES, TABLES
from models.legal import wik_costs_cents
from training.simulation import (
    CollectionPolicy,
    SimulationConfig,
    SimulationResult,
    build_population,
    label_rates,
    settled_days,
    simulate,
)

CONFIG = SimulationConfig(n_customers=700, months=12, end_date=date(2026, 1, 1), seed=7)
STEP_ORDER = ["reminder", "fourteen_day_letter", "agency", "bailiff"]


@pytest.fixture(scope="module")
def result() -> SimulationResult:
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def population():
    return build_population(CONFIG)


# --- shape and contract --------------------------------------------------------------


def test_all_tables_validate_against_their_schema(result: SimulationResult) -> None:
    assert set(result.tables) == set(TABLES)
    for name, (schema, key, date_col) in TABLES.items():
        df = result.tables[name]
        # the optional attributes table: the simulated creditor keeps no dated updates
        assert len(df) > 0 or name in OPTIONAL_TABLES, name
        df = schema.validate(df)
        assert df[key].is_unique, name
        assert df[date_col].dtype.kind == "M"
        assert (df[date_col] == df[date_col].dt.normalize()).all()


def test_every_event_lies_in_the_period_and_after_the_customer_is_known(
    result: SimulationResult,
) -> None:
    start, end = CONFIG.period()
    assert (start, end) == (date(2025, 1, 1), date(2026, 1, 1))
    created = result.tables["customers"].set_index("customer_id")["created_at"]
    assert created.min() == pd.Timestamp(start)
    assert (created == pd.Timestamp(start)).mean() > 0.6  # most customers from the start
    for name, (_, _, date_col) in TABLES.items():
        df = result.tables[name]
        if df.empty and name in OPTIONAL_TABLES:
            continue
        assert df[date_col].min() >= pd.Timestamp(start), name
        assert df[date_col].max() < pd.Timestamp(end), name
        if name != "customers":
            assert (df[date_col] >= created.loc[df["customer_id"]].to_numpy()).all(), name


def test_referential_integrity(result: SimulationResult) -> None:
    t = result.tables
    customers = set(t["customers"]["customer_id"])
    owner = t["invoices"].set_index("invoice_id")["customer_id"]
    for name in (
        "invoices",
        "payments",
        "debit_attempts",
        "collection_steps",
        "arrangements",
        "income_receipts",
    ):
        assert set(t[name]["customer_id"]) <= customers, name
    for name in ("payments", "debit_attempts", "collection_steps"):
        df = t[name]
        assert df["invoice_id"].isin(owner.index).all(), name
        assert (owner.loc[df["invoice_id"]].to_numpy() == df["customer_id"].to_numpy()).all(), name


def test_payments_never_exceed_the_invoice_and_are_not_before_issue(
    result: SimulationResult,
) -> None:
    t = result.tables
    inv = t["invoices"].set_index("invoice_id")
    paid = t["payments"].groupby("invoice_id")["amount_cents"].sum()
    assert (paid <= inv.loc[paid.index, "amount_cents"]).all()
    pay = t["payments"]
    assert (pay["paid_at"].to_numpy() >= inv.loc[pay["invoice_id"], "issue_date"].to_numpy()).all()
    # a substantial share of invoices is paid in full
    assert len(paid) / len(inv) > 0.85


def test_same_seed_gives_identical_tables_and_another_seed_does_not(
    result: SimulationResult,
) -> None:
    again = simulate(CONFIG)
    for name in TABLES:
        pd.testing.assert_frame_equal(result.tables[name], again.tables[name], obj=name)
    pd.testing.assert_frame_equal(result.truth_customers, again.truth_customers)
    pd.testing.assert_frame_equal(result.truth_monthly, again.truth_monthly)
    other = simulate(
        SimulationConfig(n_customers=700, months=12, end_date=date(2026, 1, 1), seed=8)
    )
    assert not other.tables["payments"]["amount_cents"].equals(
        result.tables["payments"]["amount_cents"]
    )


def test_write_read_round_trip(result: SimulationResult, tmp_path) -> None:
    result.write(tmp_path / "sim")
    for name in TABLES:
        assert (tmp_path / "sim" / f"{name}.parquet").exists()
    for name in ["truth_customers", "truth_monthly"]:
        assert (tmp_path / "sim" / "truth" / f"{name}.parquet").exists()
    # the event folder holds nothing else, so it ingests without warnings
    from features.io import read_event_dir

    assert read_event_dir(tmp_path / "sim").warnings == []
    back = SimulationResult.read(tmp_path / "sim")
    assert back.config == result.config
    for name in TABLES:
        pd.testing.assert_frame_equal(back.tables[name], result.tables[name], obj=name)
    pd.testing.assert_frame_equal(back.truth_customers, result.truth_customers)
    pd.testing.assert_frame_equal(back.truth_monthly, result.truth_monthly)


# --- hidden truth --------------------------------------------------------------------


def test_truth_tables(result: SimulationResult) -> None:
    tc, tm = result.truth_customers, result.truth_monthly
    assert list(tc["customer_id"]) == list(result.tables["customers"]["customer_id"])
    for col in (
        "household_type",
        "income_source",
        "pay_pattern",
        "pay_day_of_month",
        "net_income_cents",
        "fixed_costs_cents",
        "buffer_cents",
        "behaviour",
        "has_open_banking",
        "creditor_debit_day",
        "collection_method",
    ):
        assert col in tc.columns, col
    assert set(tc["pay_pattern"]) <= {
        "monthly_day",
        "last_working_day",
        "four_weekly",
        "weekly",
        "irregular",
    }
    shares = tc["behaviour"].value_counts(normalize=True)
    assert shares["willing"] > 0.5 and shares["unwilling"] < 0.1
    assert tc["creditor_debit_day"].between(1, 28).all()
    assert 0.6 < tc["has_open_banking"].mean() < 0.8
    assert len(tm) == CONFIG.n_customers * CONFIG.months
    assert not tm.duplicated(["customer_id", "month_start"]).any()
    for col in (
        "balance_cents",
        "monthly_income_cents",
        "unemployed",
        "in_shock",
        "free_room_cents",
    ):
        assert col in tm.columns, col
    assert tm["month_start"].dt.day.eq(1).all()
    # salaried people lose jobs now and then; most people's free room is positive
    assert tm["unemployed"].any() and tm["in_shock"].mean() < 0.3
    assert (tc["free_room_cents"] > 0).mean() > 0.6
    ages = CONFIG.period()[0].year - result.tables["customers"]["birth_year"]
    assert ages.between(17, 86).all()


def test_truth_is_the_state_before_the_months_own_draws() -> None:
    """A month's truth row is what held up to the end of the day before it: a job loss
    drawn on the 1st (a snapshot's as_of) shows first in the next month's row. Read after
    the draws, the oracle saw the label horizon's future."""
    config = SimulationConfig(
        n_customers=200,
        months=3,
        end_date=date(2026, 1, 1),
        seed=3,
        job_loss_rate=1.0,  # every salaried customer loses the job at the first draw
        job_recovery_rate=0.0,
    )
    result = simulate(config)
    source = result.truth_customers.set_index("customer_id")["income_source"]
    tm = result.truth_monthly.assign(source=lambda t: t["customer_id"].map(source).to_numpy())
    first, second = sorted(tm["month_start"].unique())[:2]
    salaried = tm["source"] == "salary"
    assert salaried.any()
    assert not tm.loc[tm["month_start"] == first, "unemployed"].any()
    assert tm.loc[salaried & (tm["month_start"] == second), "unemployed"].all()
    # the income row follows the same clock: the first month's is the salary before the loss
    first_salaried = tm[salaried & (tm["month_start"] == first)].set_index("customer_id")
    second_salaried = tm[salaried & (tm["month_start"] == second)].set_index("customer_id")
    assert (
        second_salaried["monthly_income_cents"] < first_salaried["monthly_income_cents"]
    ).mean() > 0.9


def test_declared_income_is_partial_and_noisy(result: SimulationResult) -> None:
    c = result.tables["customers"].merge(
        result.truth_customers[["customer_id", "net_income_cents"]]
    )
    declared = c["declared_net_income_cents"]
    assert 0.3 < declared.notna().mean() < 0.5
    ratio = declared.dropna().astype(float) / c.loc[declared.notna(), "net_income_cents"]
    assert ratio.between(0.89, 1.11).all() and ratio.std() > 0.02


def test_income_arrives_on_dutch_pay_days(result: SimulationResult) -> None:
    r = result.tables["income_receipts"].merge(result.truth_customers, on="customer_id")
    ob = set(result.truth_customers.loc[result.truth_customers["has_open_banking"], "customer_id"])
    assert set(r["customer_id"]) <= ob
    monthly = r[(r["pay_pattern"] == "monthly_day") & (r["source"] == "salary")]
    dom = monthly["received_at"].dt.day
    assert (dom <= monthly["pay_day_of_month"]).all()  # moved to the previous business day
    assert (dom >= monthly["pay_day_of_month"] - 4).all()
    assert monthly["pay_day_of_month"].between(23, 28).all()
    allowance = r[r["source"] == "allowance"]["received_at"]
    assert allowance.dt.day.between(20, 24).all()  # the 20th, or the next business day
    assert (allowance.dt.dayofweek < 5).all()
    from_start = r["created_at"] == pd.Timestamp(CONFIG.period()[0])
    four = r[(r["pay_pattern"] == "four_weekly") & (r["source"] != "allowance") & from_start]
    assert (
        four.groupby("customer_id")["received_at"].count().between(12, 14).all()
    )  # 13 pays a year
    assert set(r["source"]) <= {"salary", "benefit", "pension", "allowance"}


# --- direct debits -------------------------------------------------------------------


def _target2_days(start: date, end: date) -> set[date]:
    return set(holidays.financial_holidays("ECB", years=range(start.year, end.year + 1)))


def test_debits_on_business_days_with_consistent_payments(result: SimulationResult) -> None:
    t = result.tables
    dd = t["debit_attempts"]
    closed = _target2_days(*CONFIG.period())
    days = dd["attempted_at"].dt.date
    assert (dd["attempted_at"].dt.dayofweek < 5).all()
    assert not days.isin(closed).any()
    assert set(dd["result"]) >= {"success", "failed"}
    failed = dd[dd["result"] == "failed"]
    assert set(failed["reason_code"]) == {"AM04", "MS03"}
    assert (failed["reason_code"] == "AM04").mean() > 0.6
    assert (dd.loc[dd["result"] == "reversed", "reason_code"] == "MD06").all()
    # a success is a direct-debit payment of the same amount on the same day; nothing else is
    ok = dd[dd["result"] == "success"][["invoice_id", "attempted_at", "amount_cents"]]
    pays = t["payments"][t["payments"]["method"] == "direct_debit"][
        ["invoice_id", "paid_at", "amount_cents"]
    ]
    pays = pays.rename(columns={"paid_at": "attempted_at"})
    key = ["invoice_id", "attempted_at", "amount_cents"]
    pd.testing.assert_frame_equal(
        ok.sort_values(key).reset_index(drop=True), pays.sort_values(key).reset_index(drop=True)
    )
    # at most one retry, about 5 business days after a failed first attempt
    per_invoice = dd.groupby("invoice_id")["attempted_at"].agg(["count", "min", "max"])
    assert per_invoice["count"].max() <= 2
    retried = per_invoice[per_invoice["count"] == 2]
    gaps = np.busday_count(
        retried["min"].to_numpy().astype("datetime64[D]"),
        retried["max"].to_numpy().astype("datetime64[D]"),
        holidays=np.array(sorted(closed), dtype="datetime64[D]"),
    )
    assert len(retried) > 0 and (gaps == 5).all()
    first = dd.sort_values("attempted_at").drop_duplicates("invoice_id")
    assert (first.set_index("invoice_id").loc[retried.index, "result"] == "failed").all()
    inv = t["invoices"].set_index("invoice_id")
    assert (inv.loc[dd["invoice_id"], "collection_method"] == "direct_debit").all()
    assert (
        first["attempted_at"].to_numpy() == inv.loc[first["invoice_id"], "due_date"].to_numpy()
    ).all()


def _monthly_dd_customers(population) -> np.ndarray:
    return np.flatnonzero(
        (population.pattern == 0) & (population.method == 0) & (population.source == 0)
    )


def test_debit_just_before_payday_fails_more_than_just_after(population) -> None:
    who = _monthly_dd_customers(population)
    pay = population.pay_day_of_month
    before = population.debit_day.copy()
    after = population.debit_day.copy()
    before[who] = np.clip(pay[who] - 4, 1, 28)
    after[who] = np.clip(pay[who] + 1, 1, 28)
    ids = list(population.customer_ids[np.sort(who)])
    rates = {}
    for name, days in (("before", before), ("after", after)):
        policy = CollectionPolicy().with_debit_days(days, name=name)
        r = simulate(CONFIG, population=population, policy=policy)
        dd = r.tables["debit_attempts"]
        first = (
            dd[dd["customer_id"].isin(ids)]
            .sort_values("attempted_at")
            .drop_duplicates("invoice_id")
        )
        rates[name] = (first["result"] == "failed").mean()
        assert (
            r.truth_customers.set_index("customer_id").loc[ids, "creditor_debit_day"].to_numpy()
            == days[np.sort(who)]
        ).all()
    assert rates["before"] > 1.5 * rates["after"], rates
    assert rates["before"] > 0.03


def test_changing_only_the_debit_day_keeps_incomes_and_shocks(population) -> None:
    base = simulate(CONFIG, population=population)
    days = np.where(population.debit_day == 25, 1, population.debit_day)
    moved = simulate(CONFIG, population=population, policy=CollectionPolicy().with_debit_days(days))
    cols = [
        "customer_id",
        "month_start",
        "monthly_income_cents",
        "unemployed",
        "income_cut",
        "in_shock",
    ]
    pd.testing.assert_frame_equal(base.truth_monthly[cols], moved.truth_monthly[cols])
    pd.testing.assert_frame_equal(base.tables["income_receipts"], moved.tables["income_receipts"])
    pd.testing.assert_frame_equal(base.tables["customers"], moved.tables["customers"])
    # customers whose day did not change get the very same regular invoices;
    # the others are collected on the new day (the 1st, or the next business day)
    changed = set(population.customer_ids[(population.debit_day == 25) & (population.method == 0)])

    def regular(r, moved_customers: bool):
        inv = r.tables["invoices"]
        inv = inv[
            (inv["product"] != "bnpl") & (inv["customer_id"].isin(changed) == moved_customers)
        ]
        return (
            inv.drop(columns="invoice_id")
            .sort_values(["customer_id", "issue_date"])
            .reset_index(drop=True)
        )

    pd.testing.assert_frame_equal(regular(base, False), regular(moved, False))
    dd = regular(moved, True)
    assert len(dd) > 0 and dd["due_date"].dt.day.between(1, 5).all()
    assert (
        regular(base, True)["due_date"].dt.day.between(25, 31).all()
    )  # Christmas moves it to the 29th
    # ...and the outcome differs: the balance path changes with the debit day
    assert not base.tables["debit_attempts"]["attempted_at"].equals(
        moved.tables["debit_attempts"]["attempted_at"]
    )
    # a policy change that takes effect later leaves the earlier months untouched
    later = simulate(
        CONFIG,
        population=population,
        policy=CollectionPolicy().with_debit_days(days, effective_from=date(2025, 7, 1)),
    )

    def early(r: SimulationResult) -> pd.DataFrame:
        dd = r.tables["debit_attempts"]
        return dd[dd["attempted_at"] < "2025-06-15"].drop(columns="attempt_id")

    pd.testing.assert_frame_equal(
        early(base).reset_index(drop=True), early(later).reset_index(drop=True)
    )


# --- dunning and arrangements --------------------------------------------------------


def test_dunning_walks_the_steps_in_order_and_stops_when_paid(result: SimulationResult) -> None:
    t = result.tables
    steps = t["collection_steps"].merge(
        t["invoices"][["invoice_id", "due_date", "amount_cents", "product"]], on="invoice_id"
    )
    assert set(steps["step"]) == set(STEP_ORDER)
    steps["rank"] = steps["step"].map({s: i for i, s in enumerate(STEP_ORDER)})
    steps = steps.sort_values(["invoice_id", "step_date", "rank"])
    # per invoice: ranks are 0, 1, 2, ... without gaps, strictly increasing in date
    expected = steps.groupby("invoice_id").cumcount()
    assert (steps["rank"].to_numpy() == expected.to_numpy()).all()
    assert (steps.groupby("invoice_id")["step_date"].diff().dropna() > pd.Timedelta(0)).all()
    lag = (steps["step_date"] - steps["due_date"]).dt.days
    # pay-later: an early free reminder, the agency only after 90 days (DOMAIN.md §4)
    bnpl = steps["product"] == "bnpl"
    for step, days, bnpl_days in [
        ("reminder", 7, 2),
        ("fourteen_day_letter", 21, 21),
        ("agency", 37, 90),
        ("bailiff", 120, 180),
    ]:
        at = steps["step"] == step
        assert (lag[at & ~bnpl] >= days).all(), step
        assert (lag[at & bnpl] >= bnpl_days).all(), step
    assert (lag[(steps["step"] == "reminder") & bnpl] < 7).any()
    # no step once the invoice is paid in full
    settled = settled_days(result)
    s = settled.reindex(steps["invoice_id"]).to_numpy()
    assert not (~np.isnat(s) & (steps["step_date"].to_numpy() > s)).any()
    # every invoice that stayed unpaid 8+ days after its due date got a reminder
    inv = t["invoices"].set_index("invoice_id")
    end = pd.Timestamp(CONFIG.period()[1])
    late = inv[(inv["due_date"] + pd.Timedelta(days=8) < end)]
    st = settled.reindex(late.index)
    unpaid_8 = st.isna() | (st > late["due_date"] + pd.Timedelta(days=7))
    reminded = set(steps.loc[steps["step"] == "reminder", "invoice_id"])
    in_plan_or_reminded = late.index[unpaid_8].isin(list(reminded))
    assert in_plan_or_reminded.mean() > 0.9  # the rest were covered by an arrangement first


def test_step_costs(result: SimulationResult) -> None:
    steps = result.tables["collection_steps"].merge(
        result.tables["invoices"][["invoice_id", "amount_cents"]]
    )
    free = steps[steps["step"].isin(["reminder", "fourteen_day_letter"])]
    assert (free["cost_cents"] == 0).all()
    agency = steps[steps["step"] == "agency"]
    assert len(agency) > 0
    expected = [
        wik_costs_cents(int(a), on=d.date())
        for a, d in zip(agency["amount_cents"], agency["step_date"], strict=True)
    ]
    assert agency["cost_cents"].tolist() == expected
    assert (agency["cost_cents"] >= 4000).all()
    assert (steps.loc[steps["step"] == "bailiff", "cost_cents"] == CONFIG.bailiff_cost_cents).all()


def test_arrangements(result: SimulationResult) -> None:
    t = result.tables
    arr = t["arrangements"]
    assert set(arr["outcome"]) == {"active", "kept", "broken"}
    assert arr.loc[arr["outcome"] == "active", "end_date"].isna().all()
    ended = arr[arr["outcome"] != "active"]
    assert (ended["end_date"] >= ended["start_date"]).all()
    # current practice: debt over 5 months
    assert (
        arr["monthly_amount_cents"]
        == np.minimum(np.maximum(np.ceil(arr["debt_cents"] / 500) * 100, 2500), arr["debt_cents"])
    ).all()
    assert (arr["term_months"] == np.ceil(arr["debt_cents"] / arr["monthly_amount_cents"])).all()
    # at most one running arrangement per customer at a time
    a = arr.sort_values(["customer_id", "start_date"])
    prev_end = a.groupby("customer_id")["end_date"].shift()
    has_prev = a.groupby("customer_id").cumcount() > 0
    assert (
        prev_end[has_prev].notna() & (prev_end[has_prev] <= a.loc[has_prev, "start_date"])
    ).all()
    # kept arrangements paid their whole debt by arrangement payments
    pay = t["payments"]
    assert (pay["method"] == "arrangement").any()
    by_customer = pay[pay["method"] == "arrangement"].groupby("customer_id")["amount_cents"].sum()
    kept_debt = arr[arr["outcome"] == "kept"].groupby("customer_id")["debt_cents"].sum()
    assert (by_customer.reindex(kept_debt.index) >= kept_debt).all()


def test_arrangements_fitting_the_free_room_are_kept_more(population) -> None:
    config = SimulationConfig(n_customers=1500, months=12, end_date=date(2026, 1, 1), seed=11)
    r = simulate(config)
    arr = r.tables["arrangements"]
    arr = arr[arr["outcome"] != "active"].assign(
        month_start=lambda d: d["start_date"].dt.to_period("M").dt.to_timestamp()
    )
    arr = arr.merge(
        r.truth_monthly[["customer_id", "month_start", "free_room_cents"]],
        on=["customer_id", "month_start"],
    )
    fits = arr["monthly_amount_cents"] <= arr["free_room_cents"]
    kept = arr["outcome"] == "kept"
    assert fits.sum() > 20 and (~fits).sum() > 20
    assert kept[fits].mean() > kept[~fits].mean() + 0.25, (kept[fits].mean(), kept[~fits].mean())


# --- behaviour and rates -------------------------------------------------------------


def test_label_rate_is_plausible_and_money_drives_difficulty(result: SimulationResult) -> None:
    rates = label_rates(result)
    assert len(rates) >= 6
    assert 0.03 < rates.mean() < 0.15, rates
    settled = settled_days(result)
    inv = result.tables["invoices"].set_index("invoice_id")
    end = pd.Timestamp(CONFIG.period()[1])
    mature = inv["due_date"] + pd.Timedelta(days=30) < end
    st = settled.reindex(inv.index)
    dpd30 = mature & (st.isna() | (st > inv["due_date"] + pd.Timedelta(days=30)))
    bad = set(inv.index[dpd30].map(inv["customer_id"]))
    tc = result.truth_customers.assign(bad=lambda d: d["customer_id"].isin(bad))
    assert 0.5 < 1 - tc["bad"].mean() < 0.95  # a substantial share never has trouble
    # little savings and little free room matter; so does behaviour, but most trouble is among the willing
    low_buffer = tc["buffer_cents"] < 150_00
    assert tc.loc[low_buffer, "bad"].mean() > 1.5 * tc.loc[~low_buffer, "bad"].mean()
    low_room = tc["free_room_cents"] <= tc["free_room_cents"].quantile(0.25)
    assert tc.loc[low_room, "bad"].mean() > tc.loc[~low_room, "bad"].mean()
    assert (
        tc.groupby("behaviour")["bad"].mean()["unwilling"]
        > tc.groupby("behaviour")["bad"].mean()["willing"]
    )
    assert tc.loc[tc["bad"], "behaviour"].value_counts().idxmax() == "willing"


def test_pay_later_orders_come_mostly_from_young_customers(result: SimulationResult) -> None:
    inv = result.tables["invoices"]
    bnpl = inv[inv["product"] == "bnpl"]
    assert len(bnpl) > 0
    assert bnpl["amount_cents"].between(2000, 40000).all()
    assert set((bnpl["due_date"] - bnpl["issue_date"]).dt.days) == {14, 30}
    assert (bnpl["collection_method"] == "transfer").all()
    age = result.truth_customers.set_index("customer_id")["age"]
    per_customer = bnpl.groupby("customer_id").size().reindex(age.index, fill_value=0)
    assert per_customer[age < 30].mean() > 2 * per_customer[age >= 50].mean()
    regular = inv[inv["product"] != "bnpl"]
    assert regular["amount_cents"].between(4000, 25000).all()
    assert 0.6 < (regular["collection_method"] == "direct_debit").mean() < 0.8


def test_pay_later_orders_reach_the_agency_about_as_rarely_as_afm_reports(
    result: SimulationResult,
) -> None:
    # AFM 2024 (DOMAIN.md §4): ~13% of pay-later transactions get a default notice, ~1.1%
    # reach a collection agency; the lenient track must not hand over like a regular bill
    inv, steps = result.tables["invoices"], result.tables["collection_steps"]
    end = pd.Timestamp(result.config.period()[1])
    mature = inv[inv["due_date"] + pd.Timedelta(days=120) < end]
    bnpl = mature["product"] == "bnpl"

    def reached(step: str) -> pd.Series:
        return mature["invoice_id"].isin(steps.loc[steps["step"] == step, "invoice_id"])

    assert bnpl.sum() > 500
    assert 0.05 < reached("reminder")[bnpl].mean() < 0.25
    assert reached("agency")[bnpl].mean() < 0.04
    assert reached("agency")[bnpl].mean() < reached("agency")[~bnpl].mean()


def test_a_declining_bnpl_policy_is_honoured(population) -> None:
    policy = CollectionPolicy(
        approve_bnpl=lambda req: np.zeros(len(req.customer_index), bool), name="no_bnpl"
    )
    r = simulate(CONFIG, population=population, policy=policy)
    assert (r.tables["invoices"]["product"] != "bnpl").all()
    assert r.policy_name == "no_bnpl"


def test_a_referral_makes_no_plan_and_pauses_escalation(population) -> None:
    """Answering 0 refers the customer to debt help: no arrangement, and the invoices it
    covered get no dunning step for ``referral_pause_days``; the path resumes after."""
    requests: list[pd.DataFrame] = []

    def refer_everyone(request) -> np.ndarray:
        requests.append(
            pd.DataFrame({"customer_id": request.customer_id, "day": pd.Timestamp(request.day)})
        )
        return np.zeros(len(request.customer_index), np.int64)

    r = simulate(
        CONFIG,
        population=population,
        policy=CollectionPolicy(arrangement_monthly=refer_everyone, name="refer"),
    )
    assert r.tables["arrangements"].empty
    asked = pd.concat(requests, ignore_index=True)
    assert len(asked) > 20
    inv = r.tables["invoices"][["invoice_id", "customer_id", "due_date"]]
    steps = r.tables["collection_steps"].merge(inv, on=["invoice_id", "customer_id"])
    # the invoices overdue at the referral: no step in the pause, later steps allowed
    joined = steps.merge(asked, on="customer_id")
    covered = joined[joined["due_date"] < joined["day"]]
    gap = (covered["step_date"] - covered["day"]).dt.days
    assert not ((gap > 0) & (gap < CONFIG.referral_pause_days)).any()
    assert (gap >= CONFIG.referral_pause_days).any()  # the dunning path resumes
    # voluntary payments go on during the pause
    pay = r.tables["payments"].merge(inv, on="invoice_id", suffixes=("", "_inv"))
    during = pay.merge(asked, on="customer_id")
    in_pause = (during["paid_at"] > during["day"]) & (
        during["paid_at"] < during["day"] + pd.Timedelta(days=CONFIG.referral_pause_days)
    )
    assert (in_pause & (during["due_date"] < during["day"])).any()

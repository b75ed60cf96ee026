"""bnpl-eval's closed loop: tijdig decides pay-later orders inside the simulator.

Small populations (a few hundred customers, months) and a stand-in for the model (a
probability computed from the features), so each test runs in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_INDEX
from features.events import PRODUCT_CODES, EventArrays, to_day
from models.bnpl import AgeCheck, BnplPolicy, decide
from training.bnpl_replay import policy_variants
from training.simulation import SimulationConfig, build_population
from training.simulation.policy import BnplRequest
from training.studies.bnpl_eval import policies
from training.studies.bnpl_eval import report as bnpl_report
from training.studies.bnpl_eval import run as bnpl_eval
from training.studies.bnpl_eval.policies import TijdigBnplPolicy, approve_under_1000
from training.studies.bnpl_eval.report import order_table
from training.studies.bnpl_eval.run import evaluate_policy, order_features, simulate_orders

CONFIG = SimulationConfig(n_customers=300, months=9, seed=7, end_date=date(2026, 7, 1))
POLICY = BnplPolicy.default()


def fake_probability(X: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for the model: riskier with days past due and arrears,
    spread over both sides of the cut-off so that decisions differ between orders."""
    dpd = np.nan_to_num(X[:, FEATURE_INDEX["current_days_past_due"]])
    tenure = np.nan_to_num(X[:, FEATURE_INDEX["tenure_days"]])
    return np.clip(0.03 + 0.004 * dpd + 0.1 * ((tenure % 7) == 0), 0.0, 0.99)


@pytest.fixture(scope="module")
def population():
    return build_population(CONFIG)


@pytest.fixture(scope="module")
def start() -> date:
    return date(2025, 12, 1)  # after a warm-up of 2 of the 9 months


@pytest.fixture(scope="module")
def closed_loop(population, start):
    """One closed-loop run from ``start`` that keeps every decision's inputs."""
    tijdig = TijdigBnplPolicy(fake_probability, POLICY, start=start, keep_inputs=True)
    result, orders = simulate_orders(CONFIG, tijdig, "tijdig", population)
    return tijdig, result, orders


def test_the_closed_loop_sees_nothing_of_the_order_day_s_orders_or_later(
    population, start, monkeypatch
):
    """What the policy builds its features from holds no order of the day (approved or
    not) and no event after the day; payments, debits, steps and balances of the day
    itself are not yet there either."""
    bnpl = PRODUCT_CODES["bnpl"]
    real = policies.observed_event_arrays
    today: list[int] = []
    checked: list[int] = []

    def spy(pop, raw, customers):
        events = real(pop, raw, customers)
        day = today[-1]
        inv = events.invoices
        assert (inv["issue_day"] <= day).all()
        assert not ((inv["product"] == bnpl) & (inv["issue_day"] >= day)).any()
        for table in (events.payments, events.debits, events.steps, events.balances):
            assert (table["day"] < day).all()
        assert (events.income["day"] <= day).all()
        assert (events.arrangements["start_day"] < day).all()
        assert list(events.customer_ids) == list(pop.customer_ids[customers])
        checked.append(day)
        return events

    monkeypatch.setattr(policies, "observed_event_arrays", spy)
    tijdig = TijdigBnplPolicy(fake_probability, POLICY, start=start)

    def policy(request: BnplRequest) -> np.ndarray:
        today.append(to_day(request.day))
        return tijdig(request)

    result, orders = simulate_orders(CONFIG, policy, "spy", population)
    assert len(checked) > 50 and orders["approved"].any()
    # and the day's approved orders did become invoices after the policy answered
    final = order_table(result.tables)
    approved = orders[orders["approved"] & (orders["issue_date"] >= pd.Timestamp(start))]
    assert len(approved) and approved["customer_id"].isin(final["customer_id"]).all()


def test_the_closed_loop_features_are_the_point_in_time_features_of_the_run(closed_loop, start):
    """Features the loop used for each order equal those the replay's code builds from the
    same run's final tables as of the order day: the loop's view is point in time."""
    tijdig, result, orders = closed_loop
    decided = orders[orders["tijdig"].astype(bool)].reset_index(drop=True)
    X_loop = np.vstack([part["X"] for part in tijdig.inputs])
    cases_loop = np.concatenate([part["open_case"] for part in tijdig.inputs])
    assert len(decided) == len(X_loop) > 100
    X_final, cases_final = order_features(EventArrays.from_frames(result.tables), decided)
    np.testing.assert_array_equal(np.isnan(X_loop), np.isnan(X_final))
    np.testing.assert_allclose(np.nan_to_num(X_loop), np.nan_to_num(X_final), rtol=1e-9)
    np.testing.assert_array_equal(cases_loop, cases_final)
    assert cases_loop.any() and not cases_loop.all()


def test_a_closed_loop_decision_is_decide_on_the_same_inputs(closed_loop):
    """One code path: each answer in the loop is models.bnpl.decide's on the inputs the loop
    saw, and the replay (evaluate_policy) gives the same answers on them."""
    tijdig, _, orders = closed_loop
    decided = orders[orders["tijdig"].astype(bool)].reset_index(drop=True)
    X = np.vstack([part["X"] for part in tijdig.inputs])
    p = np.concatenate([part["p"] for part in tijdig.inputs])
    cases = np.concatenate([part["open_case"] for part in tijdig.inputs])
    birth = np.concatenate([part["birth_year"] for part in tijdig.inputs])
    memory = [row for part in tijdig.inputs for row in part["memory"]]
    np.testing.assert_allclose(p, fake_probability(X))
    for i, row in decided.iterrows():
        d = decide(
            POLICY,
            order_eur=row["amount_cents"] / 100,
            currency="EUR",
            age=AgeCheck(verified=True, birth_date=date(int(birth[i]), 7, 1)),
            on=row["issue_date"].date(),
            features=X[i],
            probability=float(p[i]),
            open_case=bool(cases[i]),
            memory=memory[i],
        )
        assert d.offer == row["approved"]
        assert tuple(c.value for c in d.declined_by) == row["declined_by"]
    assert decided["approved"].any() and not decided["approved"].all()
    replayed = np.zeros(len(decided), dtype=bool)
    # the replay remembers its own answers as the loop did: the same answers again
    cust = decided["customer_id"].astype("category").cat.codes.to_numpy()
    evaluate_policy(
        POLICY, decided.assign(collection=False), X, p, cases, birth, offered=replayed, cust=cust
    )
    np.testing.assert_array_equal(replayed, decided["approved"].to_numpy())


def test_the_naive_policy_answers_before_the_start_and_tijdig_after(closed_loop, start):
    _, _, orders = closed_loop
    before = orders["issue_date"] < pd.Timestamp(start)
    assert before.any() and (~before).any()
    assert not orders.loc[before, "tijdig"].any() and orders.loc[before, "approved"].all()
    assert orders.loc[~before, "tijdig"].all()


def test_declining_everything_leaves_no_pay_later_invoice(population):
    tijdig = TijdigBnplPolicy(lambda X: np.full(len(X), 0.5), POLICY.with_cutoff(0.01))
    result, orders = simulate_orders(CONFIG, tijdig, "decline_all", population)
    assert len(orders) > 100 and not orders["approved"].any()
    assert (result.tables["invoices"]["product"] == "bnpl").sum() == 0
    assert all("B05_HIGH_RISK" in codes for codes in orders["declined_by"])
    figures = bnpl_report.run_figures(result.tables, orders, pd.Timestamp(CONFIG.period()[0]))
    assert figures["approval_rate"] == 0.0 and figures["approved_to_collection"] == 0
    assert figures["population"]["pay_later_invoices"] == 0


def test_customers_place_the_same_orders_whatever_the_answers(population, closed_loop):
    _, _, orders = closed_loop
    _, naive = simulate_orders(CONFIG, approve_under_1000, "naive", population)
    keys = ["customer_id", "issue_date", "amount_cents"]
    pd.testing.assert_frame_equal(orders[keys], naive[keys])
    assert naive["approved"].all() and not orders["approved"].all()


def test_customers_answered_alike_keep_their_history_and_costs(population, closed_loop, start):
    _, result, orders = closed_loop
    naive_result, naive = simulate_orders(CONFIG, approve_under_1000, "naive", population)
    alike = bnpl_report.treated_alike(naive_result, naive, result, orders, pd.Timestamp(start))
    declined = orders.loc[~orders["approved"] & naive["approved"], "customer_id"].nunique()
    assert declined > 0 and alike["customers"] == CONFIG.n_customers - declined
    assert alike["customers_with_another_history"] == 0
    assert alike["naive"] == alike["tijdig"]


@dataclass
class StubBundle:
    """What run_bnpl_eval needs of a bundle, with the stand-in probability."""

    version: str = "stub"
    bnpl_policy: BnplPolicy = POLICY
    components: dict = field(default_factory=dict)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return fake_probability(X)


def test_the_report_has_the_closed_loop_figures(monkeypatch, tmp_path):
    monkeypatch.setattr(bnpl_eval, "train_bundle", lambda *args: StubBundle())
    monkeypatch.setattr(bnpl_eval, "WARMUP_MONTHS", 4)
    monkeypatch.setattr(
        bnpl_eval,
        "SimulationConfig",
        lambda **kw: SimulationConfig(**kw, end_date=CONFIG.end_date),
    )
    monkeypatch.setattr(bnpl_eval, "plot_tradeoff", lambda *args, **kw: tmp_path / "plot.png")
    monkeypatch.setattr(StubBundle, "save", lambda self, path: path, raising=False)
    logged: list[str] = []
    # a 400-customer world of the default adjustment seed has no order at an agency:
    # seed 101 (the training population's) has some
    report = bnpl_eval.run_bnpl_eval(
        n_customers=400, months=12, out=tmp_path, log=logged.append, adjustment_seed=101
    )
    loop = report["closed_loop"]
    for run in ("naive_approve_under_1000", "tijdig_configured_policy"):
        for key in (
            "orders",
            "approval_rate",
            "collection_rate_approved",
            "approved_to_collection",
        ):
            assert key in loop[run]
        for key in ("customers_at_agency", "customers_at_agency_share", "wik_costs_eur"):
            assert key in loop[run]["population"]
    # the naive run of the loop is the replay's naive run: the same orders and outcomes
    naive = report["naive_approve_under_1000"]
    assert loop["naive_approve_under_1000"]["orders"] == naive["orders"] > 0
    assert (
        loop["naive_approve_under_1000"]["approved_to_collection"]
        == naive["approved_to_collection"]
    )
    assert loop["tijdig_configured_policy"]["orders"] == naive["orders"]
    assert loop["tijdig_configured_policy"]["approval_rate"] < 1.0
    assert loop["declines_configured"] and 0 <= loop["same_decision_as_replay_share"] <= 1
    assert set(loop["approved_only_in_loop"]) >= {"orders", "collection_rate"}
    assert loop["treated_alike"]["customers_with_another_history"] == 0
    assert sum(v["declined_alone_share"] for v in loop["declines_configured"].values()) <= 1
    assert "closed_loop" in bnpl_report.summary(report)
    written = json.loads((tmp_path / "bnpl_eval.json").read_text())
    assert written["closed_loop"]["tijdig_from"] == loop["tijdig_from"]
    assert any(line.startswith("closed loop") for line in logged)
    metrics = bnpl_report._numbers(loop, "closed_loop")
    assert metrics["closed_loop.tijdig_configured_policy.population.customers"] == 400
    assert all(np.isfinite(v) for v in metrics.values())

    # issue 21: the yardstick, the chosen operating point, the goal, money and thin files
    assert report["operating_point"]["cutoff"] == report["tijdig_configured_policy"]["cutoff"]
    assert {c["cutoff"] for c in report["curve"]} == set(POLICY.operating_point["cutoffs"])
    for run in (report["rules_only"], report["tijdig_configured_policy"], loop["rules_only"]):
        assert run["lent_eur"] >= run["lent_matured_eur"] >= run["lost_eur"] >= 0
    # the chosen point is within the rule's points of the rules alone (the shipped policy
    # leaves arrears to the model, so it may also approve more than the rules alone)
    below = (
        report["rules_only"]["approval_rate"] - report["tijdig_configured_policy"]["approval_rate"]
    )
    if report["operating_point"]["meets_rule"]:
        assert 100 * below <= POLICY.operating_point["max_points_below_rules_only"] + 1e-9
    assert set(loop["goal"]) == {
        "approval_points_below_rules_only",
        "collection_reduction_vs_rules_only",
    }
    assert loop["thin_file"]["customers"] > 0 and "after_3_months" in loop["thin_file"]
    assert "collection_rate_ratio" in loop["approved_only_in_loop"]
    variants = report["operating_point_variants"]
    assert set(variants) == set(policy_variants(POLICY))  # the shipped policy's: one
    assert report["operating_point"]["variant"] in variants
    no_rule = bnpl_eval.BnplPolicy.from_dict(POLICY.to_dict() | {"arrears_grace_days": None})
    assert no_rule.arrears_grace_days is None

    # issue 21's leak: every figure again with the pay-later adjustment, trained on a
    # closed loop of the training seed, beside those without; both leak yardsticks
    adjusted = report["pay_later_adjustment"]
    assert adjusted["training"]["world_seed"] == 101
    assert adjusted["training"]["approved_with_known_outcome"] > 0
    assert all(v >= 0 for k, v in adjusted["training"]["coefs"].items() if "decline" in k)
    assert {c["cutoff"] for c in adjusted["curve"]} == set(POLICY.operating_point["cutoffs"])
    assert adjusted["operating_point"]["cutoff"] == adjusted["tijdig_configured_policy"]["cutoff"]
    for figures in (report, adjusted):
        assert set(figures["goal"]) == set(loop["goal"])
        assert set(figures["closed_loop"]["goal"]) == set(loop["goal"])
        only = figures["closed_loop"]["approved_only_in_loop"]
        assert {"collection_rate_ratio", "probability_ratio"} <= set(only)
        assert "collection_rate_ratio_over_probability_ratio" in only
    assert adjusted["closed_loop"]["rules_only"] == loop["rules_only"]
    assert any(line.startswith("pay-later adjustment") for line in logged)
    assert "pay_later_adjustment" in written and "pay_later_adjustment" in bnpl_report.summary(
        report
    )

    skipped = bnpl_eval.run_bnpl_eval(
        n_customers=400, months=12, closed_loop=False, adjustment=False, log=print
    )
    assert "pay_later_adjustment" not in skipped
    assert "closed_loop" not in skipped and bnpl_report.summary(skipped)["closed_loop"] is None

    # a world without an order at an agency skips the adjustment with the reason, and
    # the rest of the evidence stands
    no_outcomes = bnpl_eval.run_bnpl_eval(
        n_customers=400, months=12, closed_loop=False, log=logged.append
    )
    assert "nothing to fit on" in no_outcomes["pay_later_adjustment"]["skipped"]
    assert "seed 7" in no_outcomes["pay_later_adjustment"]["skipped"]
    assert no_outcomes["goal"] == report["goal"]


def test_the_cli_runs_the_closed_loop_unless_told_not_to(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    calls: list[bool] = []

    def fake_run(*args, closed_loop=True, **kw):
        calls.append(closed_loop)
        return {}

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(bnpl_eval, "run_bnpl_eval", fake_run)
    runner = CliRunner()
    assert runner.invoke(app, ["bnpl-eval", "--customers", "500"]).exit_code == 0
    assert runner.invoke(app, ["bnpl-eval", "--no-closed-loop"]).exit_code == 0
    assert calls == [True, False]


def test_population_figures_count_what_they_name() -> None:
    """Hand-built tables with known totals: WIK is the agency step's cost and the
    bailiff's is its own, 'after the warm-up' filters on the step date, and pay-later at
    an agency counts only pay-later invoices."""
    from training.studies.bnpl_eval.report import population_figures

    day = pd.Timestamp
    invoices = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "I4"],
            "customer_id": ["A", "B", "B", "C"],
            "product": ["bnpl", "energy", "bnpl", "bnpl"],
            "issue_date": [
                day("2025-01-10"),
                day("2025-02-01"),
                day("2025-07-01"),
                day("2025-08-01"),
            ],
            "amount_cents": [10_000, 20_000, 5_000, 7_000],
        }
    )
    steps = pd.DataFrame(
        {
            "invoice_id": ["I1", "I1", "I1", "I2", "I2", "I3"],
            "customer_id": ["A", "A", "A", "B", "B", "B"],
            "step": ["reminder", "agency", "bailiff", "agency", "bailiff", "reminder"],
            "step_date": [
                day("2025-02-01"),
                day("2025-04-01"),  # before the start
                day("2025-07-01"),
                day("2025-06-01"),  # on the start day: after
                day("2025-09-01"),
                day("2025-08-01"),
            ],
            "cost_cents": [0, 4_000, 12_000, 4_270, 12_000, 0],
        }
    )
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D"]})
    got = population_figures(
        {"invoices": invoices, "collection_steps": steps, "customers": customers},
        pd.Timestamp("2025-06-01"),
    )
    assert got["customers_at_agency"] == 2 and got["customers_at_agency_share"] == 0.5
    assert got["customers_handed_to_agency_after_warmup"] == 2  # A's bailiff, B's agency
    assert got["customers_with_pay_later_at_agency"] == 1  # A (I1); B's is energy
    assert got["wik_costs_eur"] == 82.70
    assert got["wik_costs_after_warmup_eur"] == 42.70
    assert got["bailiff_costs_eur"] == 240.0
    assert got["bailiff_costs_after_warmup_eur"] == 240.0
    assert got["pay_later_invoices"] == 3
    assert got["pay_later_lent_after_warmup_eur"] == 120.0


def test_approved_only_in_loop_counts_against_the_replay() -> None:
    from training.studies.bnpl_eval.report import approved_only_in_loop

    day = pd.Timestamp
    both = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "B", "C"],
            "issue_date": [day(f"2025-06-0{d}") for d in (1, 5, 9, 2, 3, 4)],
            "tijdig": [True] * 6,
            "approved": [False, True, True, True, False, True],
            "replayed": [False, False, True, False, False, True],
            "collection": [False, True, False, False, False, False],
        }
    )
    got = approved_only_in_loop(both)
    # approved in the loop only: A on 06-05 (declined on 06-01 before), B on 06-02 (not)
    assert got["orders"] == 2
    assert got["declined_earlier_share"] == 0.5
    # the replay declines A 06-01 (no earlier), A 06-05 (earlier), B 06-02, B 06-03 (no)
    assert got["declined_earlier_share_of_replay_declines"] == 0.25
    assert got["collection_rate"] == 0.5
    assert got["collection_rate_other_approvals"] == 0.0  # A 06-09 and C

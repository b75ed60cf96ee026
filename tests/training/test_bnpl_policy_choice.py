"""Training chooses the bundle's pay-later policy by the policy file's rule (issue 21):
the cut-off and variant come from a replay of the validation period's orders, with the
code bnpl-eval runs; a store without pay-later orders keeps the file's, and says why."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import training.bnpl_policy as bnpl_policy
import training.train as train
from features.events import EventArrays
from models.bnpl import RULES_ONLY_ARREARS_GRACE_DAYS, BnplPolicy
from models.bnpl_operating_point import choose_operating_point
from models.bundle import Bundle
from training.bnpl_replay import evaluate_policy
from training.train import train_candidate

POLICY = BnplPolicy.default()
# bnpl-2026.12.1's hand-set rules (arrears a hard rule, a decline on risk sticks for 90
# days, half the cut-off for a year after a decline): the questions the rule put to the
# evidence, which the shipped policy (the evidence's answer) no longer asks
ISSUE_5_RULES = replace(
    POLICY,
    arrears_grace_days=RULES_ONLY_ARREARS_GRACE_DAYS,
    sticky_codes=("B05_HIGH_RISK",),
    sticky_days=90,
    after_decline_cutoff_factor=0.5,
)


@pytest.fixture
def quick_training(monkeypatch):
    """train_candidate without the baselines and components that do not bear on the
    pay-later choice (seconds instead of a minute on a busy machine)."""
    monkeypatch.setattr(train, "_logistic_regression_scores", lambda tr, va, seed: va.y * 0.0)
    monkeypatch.setattr(train, "component_trainers", lambda: [])
    # the small world has ~75 orders in the period; the real minimum is for real stores
    monkeypatch.setattr(bnpl_policy, "MIN_ORDERS", 20)
    monkeypatch.setattr(bnpl_policy, "MIN_AT_AGENCY", 1)


def test_the_bundle_carries_the_cut_off_the_rule_picks_on_the_curve(
    quick_training, population_events, snapshots, label_config, tmp_path
):
    candidate = train_candidate(
        population_events,
        snapshots,
        label_config,
        params={"num_threads": 1},
        choose_bnpl_policy=True,
    )
    bundle = candidate.bundle
    report = bundle.metadata["bnpl_operating_point"]
    assert report["source"] == "chosen" and report["orders"] >= 20
    assert report["period"]["from"] == candidate.split.dates["validation"][0]
    rule = POLICY.operating_point
    assert {c["cutoff"] for c in report["curve"]} == set(rule["cutoffs"])
    picked = choose_operating_point(report["curve"], report["rules_only"], rule)
    assert bundle.bnpl_policy.risk_cutoff == pytest.approx(min(picked["cutoff"], 0.999))
    assert report["chosen"]["cutoff"] == picked["cutoff"]
    # the variant the rule chose is the policy in force
    variant = report["chosen"]["variant"]
    assert (bundle.bnpl_policy.arrears_grace_days is None) == ("arrears_as_model_input" in variant)
    assert (not bundle.bnpl_policy.sticky_codes) == ("no_sticky_declines" in variant)
    # the rules alone approve at least as many orders as the curve's strictest point (the
    # shipped policy leaves arrears to the model, so at a high cut-off it may approve more
    # than the rules alone, which keep arrears as a hard rule)
    strictest = min(report["curve"], key=lambda c: c["cutoff"])
    assert strictest["approval_rate"] <= report["rules_only"]["approval_rate"]
    # and the served bundle is the chosen policy
    loaded = Bundle.load(bundle.save(tmp_path / "bundle"))
    assert loaded.bnpl_policy == bundle.bnpl_policy
    assert loaded.metadata["bnpl_operating_point"]["chosen"]["variant"] == variant
    assert "pay-later operating point" in candidate.timings
    assert bnpl_policy.summary_line(report).startswith(
        f"pay-later policy: cut-off {picked['cutoff']:g}"
    )


def test_a_store_without_pay_later_orders_keeps_the_policy_file_and_says_why(population):
    tables = dict(population.tables)
    card = tables["invoices"]["product"] != "bnpl"
    tables["invoices"] = tables["invoices"][card]
    events = EventArrays.from_frames(tables)

    def never(X: np.ndarray) -> np.ndarray:
        raise AssertionError("nothing to predict without orders")

    fit = bnpl_policy.choose_bundle_policy(
        events, never, POLICY, ["2026-02-01", "2026-03-01", "2026-04-01"]
    )
    assert fit.policy == POLICY and not fit.chosen
    assert fit.report["reason"].startswith("kept the policy file's defaults: 0 pay-later orders")
    assert "kept the policy file's defaults" in bnpl_policy.summary_line(fit.report)
    no_rule = BnplPolicy.from_dict({**POLICY.to_dict(), "operating_point": {}})
    assert (
        "no operating_point rule"
        in bnpl_policy.choose_bundle_policy(events, never, no_rule, ["2026-02-01"]).report["reason"]
    )


def test_the_warm_up_fills_the_decline_memory_but_is_not_counted():
    """A decline on risk before the period keeps declining (sticky) in it; the figures
    count the period's orders only."""
    from tests.model.test_bnpl_policy import customer

    orders = pd.DataFrame(
        {
            "amount_cents": [5_000, 5_000],
            "issue_date": pd.to_datetime(["2026-01-10", "2026-02-10"]),
            "collection": [True, False],
        }
    )
    X = np.vstack([customer(), customer()])
    p = np.array([0.9, 0.01])  # high risk at the first order, low at the second
    args = (X, p, np.zeros(2, bool), np.full(2, 1990.0))
    same_customer = np.zeros(2, dtype=np.int64)
    counted = np.array([False, True])
    sticky = ISSUE_5_RULES
    with_warmup = evaluate_policy(sticky, orders, *args, cust=same_customer, counted=counted)
    assert with_warmup["orders"] == 1 and with_warmup["approval_rate"] == 0.0
    alone = evaluate_policy(sticky.rules_only(), orders, *args, cust=same_customer, counted=counted)
    assert alone["approval_rate"] == 1.0


def test_the_variants_are_named_for_what_they_are():
    """A policy with both rules (bnpl-2026.12.1's) gives four variants; a policy chosen
    already (the shipped file since bnpl-2026.12.2, or a trained bundle's, e.g. given to
    bnpl-eval with --bundle) gives one, named for its rules."""
    from training.bnpl_replay import policy_variants

    assert list(policy_variants(POLICY)) == ["arrears_as_model_input+no_sticky_declines"]
    assert list(policy_variants(ISSUE_5_RULES)) == [
        "arrears_hard_rule",
        "arrears_as_model_input",
        "arrears_hard_rule+no_sticky_declines",
        "arrears_as_model_input+no_sticky_declines",
    ]
    chosen = policy_variants(ISSUE_5_RULES)["arrears_as_model_input+no_sticky_declines"]
    assert list(policy_variants(chosen.with_cutoff(0.25))) == [
        "arrears_as_model_input+no_sticky_declines"
    ]

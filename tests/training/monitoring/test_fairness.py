"""Fairness: the table on hand-built data, the bounds, and the promotion gate's rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.events import to_day
from training.monitoring.fairness import (
    UNKNOWN,
    FairnessTable,
    age_bands,
    customer_groups,
    fairness_table,
    fairness_violations,
)
from training.monitoring.policy import FairnessPolicy, fairness_policy
from training.registry import GateRules, promotion_gate

LOOSE = FairnessPolicy(
    version="test",
    min_group_rows=1,
    min_group_cases=1,
    max_group_ece=0.5,
    max_tpr_gap=0.6,
    max_flag_rate_disparity=10.0,
)


@pytest.mark.parametrize(
    ("birth_year", "band"),
    [
        (2001.0, "under 25"),  # 24.5 on 2026-01-01
        (2000.0, "25-39"),
        (1986.0, "25-39"),  # 39.5
        (1985.0, "40-64"),
        (1961.0, "40-64"),  # 64.5
        (1960.0, "65 and over"),
        (np.nan, UNKNOWN),
    ],
)
def test_age_band_at_as_of(birth_year, band):
    assert age_bands(np.array([birth_year]), np.array([to_day("2026-01-01")]))[0] == band


def _hand_built() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    # group A: one case caught, one missed, one false alarm; group B: all right
    y = np.array([1, 1, 0, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.1, 0.9, 0.1, 0.9, 0.1])
    groups = pd.DataFrame({"age_band": ["A", "A", "A", "A", "B", "B"]})
    return y, p, groups


def test_the_table_on_hand_built_data():
    y, p, groups = _hand_built()
    table = fairness_table(y, p, groups, flag_threshold=0.5, decline_threshold=0.95)
    a, b = table.groups["age_band"]["A"], table.groups["age_band"]["B"]
    assert a["rows"] == 4 and b["rows"] == 2
    assert (a["base_rate"], a["flag_rate"], a["tpr"], a["fpr"]) == (0.5, 0.5, 0.5, 0.5)
    assert (b["tpr"], b["fpr"], b["decline_rate"]) == (1.0, 0.0, 0.0)
    assert a["mean_predicted"] == pytest.approx(0.5)
    # ECE of A: bin 0.1 holds (1, 0) at 0.1 -> |0.5 - 0.1|; bin 0.9 likewise: 0.4
    assert a["ece"] == pytest.approx(0.4)
    assert b["ece"] == pytest.approx(0.1)
    assert table.overall["rows"] == 6 and table.overall["tpr"] == pytest.approx(2 / 3)
    assert FairnessTable.from_dict(table.to_dict()) == table
    text = table.render()
    assert "| A | 4 | 50.0% | 50.0% | 50.0% | 0.0% | 0.4000 | 50.0% | 50.0% |" in text


def test_a_group_without_negatives_has_no_false_positive_rate():
    table = fairness_table(
        np.array([1.0, 1.0, 0.0]),
        np.array([0.9, 0.2, 0.1]),
        pd.DataFrame({"g": ["x", "x", "y"]}),
        0.5,
        0.5,
    )
    assert np.isnan(table.groups["g"]["x"]["fpr"]) and np.isnan(table.groups["g"]["y"]["tpr"])


def test_each_bound_names_itself_and_the_excess():
    y, p, groups = _hand_built()
    table = fairness_table(y, p, groups, 0.5, 0.95)
    assert fairness_violations(table, LOOSE) == []
    strict = dataclasses.replace(LOOSE, max_group_ece=0.3, max_tpr_gap=0.4)
    found = {v.bound: v for v in fairness_violations(table, strict)}
    assert set(found) == {"max_group_ece", "max_tpr_gap"}
    assert found["max_group_ece"].value == pytest.approx(0.4)
    assert "exceeds the bound 0.3 by 0.1000" in found["max_group_ece"].reason()
    assert found["max_tpr_gap"].value == pytest.approx(0.5)
    # flags per case: A 0.5 / 0.5 = 1, B 0.5 / 0.5 = 1 -> no disparity
    assert "max_flag_rate_disparity" not in found


def test_flags_out_of_proportion_to_outcomes_break_the_disparity_bound():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=float)
    p = np.array([0.9, 0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1])  # A flagged 3x per case
    groups = pd.DataFrame({"household_type": ["A"] * 4 + ["B"] * 4})
    table = fairness_table(y, p, groups, 0.5, 0.5)
    found = fairness_violations(table, dataclasses.replace(LOOSE, max_flag_rate_disparity=2.0))
    assert [(v.bound, round(v.value, 6)) for v in found] == [("max_flag_rate_disparity", 3.0)]


def test_small_and_unknown_groups_are_not_gated():
    y, p, groups = _hand_built()
    groups["age_band"] = ["A", "A", "A", "A", UNKNOWN, UNKNOWN]
    table = fairness_table(y, p, groups, 0.5, 0.95)
    strict = dataclasses.replace(LOOSE, max_tpr_gap=0.01, min_group_rows=3)
    assert fairness_violations(table, strict) == []


def test_groups_of_the_population(population_events):
    customers = np.arange(population_events.n)
    groups = customer_groups(
        population_events, customers, np.full(customers.size, to_day("2026-01-01"))
    )
    assert set(groups["age_band"]) <= {"under 25", "25-39", "40-64", "65 and over", UNKNOWN}
    assert groups["household_type"].isin(["single", "couple", "pensioner_single"]).any()


def test_the_trained_bundle_carries_its_table_and_passes_the_bounds(trained, snapshots):
    table = FairnessTable.from_dict(trained.bundle.metadata["fairness"])
    assert set(table.groups) == {"age_band", "household_type"}
    assert table.overall["rows"] == trained.bundle.metadata["rows"]["validation"]
    va = snapshots.subset(trained.split.validation)
    decision = promotion_gate(trained.bundle, va.X, va.y, champion=None)
    assert decision.checks["fairness"], decision.reasons
    assert any("fairness within the bounds" in r for r in decision.reasons)


def test_the_gate_refuses_a_model_that_is_wrong_for_one_age_group(
    trained, snapshots, population_events
):
    """Labels flipped for 40-64-year-olds: to them the model is badly calibrated."""
    va = snapshots.subset(trained.split.validation)
    p = trained.bundle.predict_proba(va.X)
    groups = customer_groups(population_events, va.customer, va.as_of)
    flipped = np.where(groups["age_band"] == "40-64", 1 - va.y, va.y)
    table = fairness_table(flipped, p, groups, 0.15, 0.12)
    unfair = dataclasses.replace(
        trained.bundle, metadata={**trained.bundle.metadata, "fairness": table.to_dict()}
    )
    decision = promotion_gate(unfair, va.X, va.y, champion=None, rules=GateRules())
    assert not decision.promote
    assert not decision.checks["fairness"]
    ece = next(r for r in decision.reasons if "max_group_ece" in r)
    assert "by age_band" in ece and "'40-64'" in ece and "exceeds the bound 0.06 by" in ece


def test_a_bundle_without_a_table_is_not_refused_for_it(trained, snapshots):
    va = snapshots.subset(trained.split.validation)
    metadata = {k: v for k, v in trained.bundle.metadata.items() if k != "fairness"}
    old = dataclasses.replace(trained.bundle, metadata=metadata)
    decision = promotion_gate(old, va.X, va.y, champion=None)
    assert decision.promote and "fairness" not in decision.checks
    assert any("no fairness table" in r for r in decision.reasons)


def test_the_versioned_bounds():
    policy = fairness_policy()
    assert policy.version.startswith("fairness-")
    assert 0 < policy.max_group_ece < 1 and policy.max_flag_rate_disparity >= 1

"""Drift: PSI on hand-built distributions, the report, and the bundle's reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.monitoring.drift import (
    SCORE_KEY,
    actual_shares,
    drift_report,
    psi,
    reference_bins,
    scored_frame_from_decisions,
)
from training.monitoring.policy import DriftPolicy, drift_policy

POLICY = DriftPolicy(version="test", psi_watch=0.10, psi_act=0.25, epsilon=1e-4, top_movers=2)


def test_identical_distributions_have_psi_zero():
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_a_known_shift_gives_the_hand_computed_psi():
    # (0.6 - 0.5) ln(0.6 / 0.5) + (0.4 - 0.5) ln(0.4 / 0.5)
    expected = 0.1 * math.log(1.2) - 0.1 * math.log(0.8)
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(expected)
    assert expected == pytest.approx(0.040547, abs=1e-6)


def test_an_empty_bin_counts_as_epsilon():
    # the third bin was empty in the reference: its share becomes 1e-4
    value = psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2], epsilon=1e-4)
    hand = 2 * (-0.1 * math.log(0.8)) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert value == pytest.approx(hand)
    assert math.isfinite(value)


def test_psi_needs_the_same_bins():
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])


def test_reference_bins_hold_shares_that_sum_to_one_with_the_missing_share():
    values = np.array([*range(90), *[np.nan] * 10], dtype=float)
    ref = reference_bins(values)
    assert ref["missing_share"] == pytest.approx(0.1)
    assert sum(ref["shares"]) + ref["missing_share"] == pytest.approx(1.0)
    assert len(ref["shares"]) == len(ref["edges"]) + 1
    assert actual_shares(values, np.asarray(ref["edges"]))[:-1].tolist() == ref["shares"]


def test_a_binary_feature_keeps_its_point_masses():
    ref = reference_bins(np.array([0.0] * 70 + [1.0] * 30))
    assert ref["edges"] == [0.0, 1.0]
    assert ref["shares"] == pytest.approx([0.7, 0.3, 0.0])


def _reference(rng: np.random.Generator) -> dict:
    return {
        "stable": reference_bins(rng.normal(size=5000)),
        "moving": reference_bins(rng.normal(size=5000)),
        "unused": reference_bins(rng.normal(size=5000)),
        SCORE_KEY: reference_bins(rng.uniform(size=5000)),
    }


def test_the_report_ranks_movers_and_applies_the_thresholds():
    rng = np.random.default_rng(1)
    reference = _reference(rng)
    scored = pd.DataFrame(
        {
            "stable": rng.normal(size=5000),
            "moving": rng.normal(loc=1.0, size=5000),  # a shift of one standard deviation
            "probability": rng.uniform(size=5000),
        }
    )
    report = drift_report(reference, scored, POLICY)
    by_name = {c.name: c for c in report.features}
    assert by_name["stable"].status == "stable" and by_name["stable"].psi < 0.02
    assert by_name["moving"].status == "act" and by_name["moving"].psi > 0.25
    assert report.top_movers()[0].name == "moving"
    assert report.score is not None and report.score.status == "stable"
    assert report.not_in_reference == ["unused"]
    assert report.alerts() == [f"ACT: moving PSI {by_name['moving'].psi:.3f}"]
    text = report.render()
    assert "| moving |" in text and "Score PSI" in text and "Not in the reference: unused" in text


def test_missing_values_that_appear_are_drift():
    rng = np.random.default_rng(2)
    reference = {"income": reference_bins(rng.normal(size=2000))}
    values = rng.normal(size=2000)
    values[:600] = np.nan
    report = drift_report(reference, pd.DataFrame({"income": values}), POLICY)
    assert report.features[0].missing_share == pytest.approx(0.3)
    assert report.features[0].status == "act"


def test_a_reference_of_deciles_alone_is_read_approximately():
    rng = np.random.default_rng(3)
    full = reference_bins(rng.normal(size=5000))
    legacy = {"x": {"missing_share": 0.0, "deciles": full["deciles"]}}  # an older bundle
    report = drift_report(legacy, pd.DataFrame({"x": rng.normal(size=5000)}), POLICY)
    assert report.approximate
    assert report.features[0].psi < 0.02
    assert "read off the reference deciles" in report.render()


def test_an_empty_population_is_refused():
    with pytest.raises(ValueError, match="empty"):
        drift_report({"x": reference_bins(np.arange(10.0))}, pd.DataFrame({"x": []}), POLICY)


def test_decision_log_records_become_a_scored_frame():
    decisions = [
        {
            "customer_id": "c1",
            "as_of": "2026-05-01",
            "model_version": "tijdig-risk/3",
            "features": {"a": 1.5, "b": None},
            "outputs": {"probability": 0.2},
        }
    ]
    frame = scored_frame_from_decisions(decisions)
    assert frame.loc[0, "probability"] == 0.2 and frame.loc[0, "a"] == 1.5
    assert np.isnan(frame.loc[0, "b"])


def test_the_trained_bundle_holds_a_score_reference_and_its_validation_rows_do_not_drift(
    trained, snapshots
):
    reference = trained.bundle.reference
    assert SCORE_KEY in reference and len(reference[SCORE_KEY]["shares"]) == 10
    va = snapshots.subset(trained.split.validation)
    scored = pd.DataFrame(va.X.astype(np.float64), columns=list(va.feature_names))
    scored["probability"] = trained.bundle.predict_proba(va.X.astype(np.float64))
    report = drift_report(reference, scored)
    assert report.score is not None and report.score.psi < 1e-9  # its own reference
    assert len(report.features) == len(va.feature_names)


def test_the_versioned_thresholds():
    policy = drift_policy()
    assert (policy.psi_watch, policy.psi_act) == (0.10, 0.25)
    assert [policy.status(x) for x in (0.05, 0.10, 0.3)] == ["stable", "watch", "act"]

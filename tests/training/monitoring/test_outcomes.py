"""Outcomes: metrics per matured cohort on hand-built data, and point-in-time labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.events import from_day
from training.monitoring.outcomes import (
    LABEL,
    last_event_day,
    matured_labels,
    outcome_report,
)
from training.monitoring.policy import OutcomePolicy, outcome_policy

POLICY = OutcomePolicy(version="test", max_ece=0.03, max_roc_auc_drop=0.03, min_cohort_rows=1)
VALIDATION = {"roc_auc": 0.80, "pr_auc": 0.5, "ece": 0.01}


def _labelled() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": ["2026-01-01"] * 4 + ["2026-02-01"] * 2,
            "probability": [0.1, 0.4, 0.35, 0.8, 0.0, 1.0],
            LABEL: [0, 0, 1, 1, 0, 1],
        }
    )


def test_metrics_per_cohort_and_their_alerts():
    report = outcome_report(_labelled(), VALIDATION, POLICY, model_version="tijdig-risk/2")
    january, february = report.cohorts
    assert (january.cohort, january.rows, january.base_rate) == ("2026-01", 4, 0.5)
    # pairs (case, non-case) ranked right: 0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4; wrong: 0.35 < 0.4
    assert january.roc_auc == pytest.approx(0.75)
    # four single-row bins: (|0 - 0.1| + |0 - 0.4| + |1 - 0.35| + |1 - 0.8|) / 4
    assert january.ece == pytest.approx(0.3375)
    assert january.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    assert len(january.alerts) == 2
    assert "ECE 0.3375 above 0.03" in january.alerts[0]
    assert "ROC AUC 0.7500 is 0.0500 below validation 0.8000" in january.alerts[1]
    assert (february.roc_auc, february.ece, february.alerts) == (1.0, 0.0, ())
    text = report.render()
    assert "| 2026-01 | 4 | 50.00% |" in text and "- ALERT 2026-01: ECE" in text


def test_small_cohorts_are_shown_without_alerts():
    report = outcome_report(_labelled(), VALIDATION, dataclasses.replace(POLICY, min_cohort_rows=5))
    assert report.alerts() == []
    assert "shown without alerts: 2026-01, 2026-02" in report.render()


def test_a_cohort_of_one_class_has_no_auc():
    frame = pd.DataFrame({"as_of": ["2026-03-01"] * 2, "probability": [0.1, 0.2], LABEL: [0, 0]})
    (cohort,) = outcome_report(frame, VALIDATION, POLICY).cohorts
    assert np.isnan(cohort.roc_auc) and cohort.ece == pytest.approx(0.15)
    assert not any("ROC" in a for a in cohort.alerts)


def test_labels_mature_point_in_time_with_the_projects_definition(
    population_events, snapshots, label_config
):
    day = int(np.unique(snapshots.as_of)[-1])
    rows = snapshots.subset(snapshots.as_of == day)
    scored = pd.DataFrame(
        {
            "customer_id": population_events.customer_ids[rows.customer],
            "as_of": [from_day(day)] * len(rows),
            "probability": 0.1,
        }
    )
    too_recent = {
        "customer_id": scored.loc[0, "customer_id"],
        "as_of": last_event_day(population_events),
        "probability": 0.1,
    }
    unknown = {"customer_id": "nobody", "as_of": from_day(day), "probability": 0.1}
    scored = pd.concat([scored, pd.DataFrame([too_recent, unknown])], ignore_index=True)
    labelled = matured_labels(scored, population_events, label_config)
    assert len(labelled) == len(rows)  # the recent and the unknown rows are dropped
    assert labelled[LABEL].tolist() == rows.y.tolist()


def test_scored_rows_need_their_columns(population_events):
    with pytest.raises(ValueError, match="'probability'"):
        matured_labels(pd.DataFrame({"customer_id": [], "as_of": []}), population_events)


def test_the_versioned_alert_thresholds():
    policy = outcome_policy()
    assert (policy.max_ece, policy.max_roc_auc_drop) == (0.03, 0.03)

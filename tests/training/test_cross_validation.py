"""`tijdig evaluate --cv`: stratified folds, grouped by customer when a customer is labelled
more than once, the same figure for the same rows, refusals that say why."""

from __future__ import annotations

import numpy as np
import pytest

from training import cross_validation as cv
from training.rejected import TrainingDataRejected


def _data(n: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.8).astype(np.float64)
    return X, y


def test_the_same_rows_give_the_same_figure_and_the_model_beats_chance() -> None:
    X, y = _data()
    names = ("a", "b", "c", "d")
    first = cv.cross_validate(X, y, names, k=3, seed=0)
    again = cv.cross_validate(X, y, names, k=3, seed=0)
    assert first == again
    per_fold, summary, shares = first
    assert len(per_fold["model"]) == 3 and len(per_fold["logistic_regression"]) == 3
    assert summary["model"]["roc_auc"] > 0.8 and summary["logistic_regression"]["roc_auc"] > 0.8
    assert next(iter(shares)) == "a"  # the feature that carries the signal
    mean = np.mean([f["roc_auc"] for f in per_fold["model"]])
    assert summary["model"]["roc_auc"] == pytest.approx(mean, abs=1e-4)


def test_a_customer_labelled_at_several_dates_stays_in_one_fold() -> None:
    _, y = _data()
    groups = np.repeat(np.arange(200), 3)
    for _, test in cv._folds(y, groups, 5, seed=0):
        inside = np.isin(groups, groups[test])
        assert set(np.flatnonzero(inside)) == set(test)
    fit, stop = cv._stop_split(np.arange(600), y, groups, seed=0)
    assert not set(groups[fit]) & set(groups[stop])


@pytest.mark.parametrize(
    ("y", "k", "message"),
    [
        (np.r_[np.zeros(50), np.ones(3)], 5, "at least 5 rows of each label"),
        (np.r_[np.zeros(50), np.ones(30)], 1, "at least 2 folds"),
    ],
)
def test_too_few_rows_or_folds_are_refused(y, k, message) -> None:
    with pytest.raises(TrainingDataRejected, match=message):
        cv.cross_validate(np.zeros((len(y), 2)), y, ("a", "b"), k=k)


def test_the_markdown_report_states_the_figure_and_the_protocol() -> None:
    report = {
        "k": 5,
        "rows": 30000,
        "customers": 30000,
        "label_dates": ["2005-10-01"],
        "base_rate": 0.2212,
        "feature_set_version": "x",
        "summary": {
            "model": {
                "roc_auc": 0.78,
                "roc_auc_sd": 0.01,
                "pr_auc": 0.55,
                "brier": 0.13,
                "ece": 0.01,
            }
        },
        "top_features_gain_share": {"open_overdue_eur": 0.3},
        "protocol": cv.protocol(5, 0, grouped=False),
    }
    text = cv.markdown(report)
    assert "| model | 0.7800 ± 0.0100 | 0.5500 | 0.1300 | 0.0100 |" in text
    assert (
        "30,000 labelled rows" in text
        and "StratifiedKFold(5, shuffle=True, random_state=0)" in text
    )

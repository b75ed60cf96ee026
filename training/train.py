"""Fit the early-warning model and its baselines, out of time, in one run.

The candidate is LightGBM with monotone constraints where the domain is sure of the
direction, early-stopped and isotonic-calibrated on the calibration segment. In the
same run and on the same validation rows: logistic regression on the same features,
the traditional "second reminder open" rule and, when the simulator's hidden truth is
available, an oracle that also sees it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.build import FEATURE_SET_VERSION, monotone_constraints
from features.events import EventArrays
from features.labels import LabelConfig
from models.bundle import Bundle
from models.calibration import apply_platt
from models.policy import RiskPolicy
from training.bnpl_policy import choose_bundle_policy
from training.components import (
    FittedComponent,
    Precomputed,
    TrainingContext,
    component_trainers,
)
from training.dataset import (
    Snapshots,
    TimeSplit,
    mask_unobservable,
    oracle_features,
    out_of_time_split,
    second_reminder_rule,
)
from training.evaluate import binary_metrics
from training.label_definition import LabelDefinition, events_definition
from training.monitoring.drift import SCORE_KEY, reference_bins
from training.monitoring.fairness import customer_groups, fairness_table

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "monotone_constraints_method": "intermediate",
    "verbose": -1,
    "seed": 7,
    "deterministic": True,
    "num_threads": 2,
}
MAX_ROUNDS = 600

#: ``(X_train, y_train, X_stop, y_stop, feature names, params) -> Booster``
BoosterFit = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], dict[str, Any]],
    lgb.Booster,
]
EARLY_STOPPING_ROUNDS = 50
#: training rows for the logistic-regression baseline (a seeded sample above this)
LR_MAX_ROWS = 1_000_000


@dataclass
class CandidateModel:
    """A fitted, calibrated candidate with its out-of-time evaluation."""

    bundle: Bundle
    split: TimeSplit
    # "model", "logistic_regression", "rule_second_reminder", "oracle", "oracle_observable"
    metrics: dict[str, dict[str, float]]
    validation_scores: dict[str, np.ndarray]
    validation_y: np.ndarray
    params: dict[str, Any]
    importance: dict[str, float] = field(default_factory=dict)
    components: dict[str, FittedComponent] = field(default_factory=dict)
    # wall seconds per stage, in the order run: where a training's time goes, and which
    # parts a size comparison must leave out (the oracles need the simulator's truth)
    timings: dict[str, float] = field(default_factory=dict)
    #: baselines that could not be computed on these data -> why (left out of the metrics)
    left_out: dict[str, str] = field(default_factory=dict)


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall seconds of the ``with`` block to ``timings[stage]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


def _fit_booster(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_stop: np.ndarray,
    y_stop: np.ndarray,
    names: tuple[str, ...],
    params: dict[str, Any],
    constrained: bool = True,
) -> lgb.Booster:
    p = dict(params)
    if constrained:
        p["monotone_constraints"] = monotone_constraints(names)
    train = lgb.Dataset(X_train, y_train, feature_name=list(names), free_raw_data=False)
    stop = lgb.Dataset(X_stop, y_stop, reference=train)
    return lgb.train(
        p,
        train,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[stop],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )


def fit_platt(raw: np.ndarray | list[float], y: np.ndarray) -> dict[str, float]:
    """Platt scaling on log-odds. Chosen over isotonic: isotonic's flat steps tie scores
    and cost 0.015 PR AUC on the default simulation, at no better ECE."""
    raw = np.clip(np.asarray(raw, dtype=np.float64), 1e-12, 1 - 1e-12)
    z = np.log(raw / (1 - raw))[:, None]
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
    return {"slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}


def train_candidate(
    events: EventArrays,
    snaps: Snapshots,
    label_config: LabelConfig,
    *,
    policy: RiskPolicy | None = None,
    params: dict[str, Any] | None = None,
    truth_customers: pd.DataFrame | None = None,
    truth_monthly: pd.DataFrame | None = None,
    validation_dates: int = 3,
    calibration_dates: int = 2,
    label_definition: LabelDefinition | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    plan_events: EventArrays | None = None,
    precomputed: Precomputed | None = None,
    fit_booster: BoosterFit | None = None,
    choose_bnpl_policy: bool = False,
) -> CandidateModel:
    """Fit the candidate and all baselines on one out-of-time split.

    ``label_definition`` (default: labels from the events with ``label_config``) is
    recorded in the bundle's ``metadata["label"]``; ``progress(stage, done, total)``
    hears of every model, baseline and component as it is fitted. ``plan_events``: the
    events the ``plan_kept`` component learns from instead (:mod:`training.plan_world`).

    ``precomputed``: the event-derived rows built partition by partition
    (:mod:`training.partitioned`); ``events`` then holds the customers only, and the
    observable oracle (which needs every customer's orders) is left out. ``fit_booster``
    fits the model instead of an in-process LightGBM fit (a Dask cluster's,
    :mod:`training.dask_training`), called as ``_fit_booster`` is.
    ``choose_bnpl_policy``: the bundle's pay-later cut-off and variant are chosen by the
    policy's rule on the validation period's orders (:mod:`training.bnpl_policy`); else
    the policy file's stay.
    """
    params = {**DEFAULT_PARAMS, **(params or {})}
    label_definition = label_definition or events_definition(label_config)

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        if progress:
            progress(name, 0, 1)
        with timed(timings, name):
            yield
        if progress:
            progress(name, 1, 1)

    split = out_of_time_split(
        snaps,
        label_config.horizon_days,
        validation_dates=validation_dates,
        calibration_dates=calibration_dates,
    )
    tr, ca, va = (snaps.subset(m) for m in (split.train, split.calibration, split.validation))
    for name, part in (("train", tr), ("calibration", ca), ("validation", va)):
        if len(np.unique(part.y)) < 2:
            raise ValueError(
                f"the {name} segment has only one class; more data or another horizon needed"
            )

    timings: dict[str, float] = {}
    with stage("model"):
        booster = (fit_booster or _fit_booster)(tr.X, tr.y, ca.X, ca.y, snaps.feature_names, params)
        calibrator = fit_platt(np.asarray(booster.predict(ca.X)), ca.y)
    bundle = Bundle(
        booster=booster,
        calibrator=calibrator,
        feature_names=snaps.feature_names,
        policy=policy or RiskPolicy.default(),
        metadata={
            "feature_set_version": FEATURE_SET_VERSION,
            "label": {
                "horizon_days": label_config.horizon_days,
                "dpd_threshold": label_config.dpd_threshold,
                "min_tenure_days": label_config.min_tenure_days,
                **label_definition.as_metadata(),
            },
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "split_dates": split.dates,
            "data_fingerprint": snaps.fingerprint(),
            "rows": {"train": len(tr), "calibration": len(ca), "validation": len(va)},
            "best_iteration": booster.best_iteration,
            "drift_reference_rows": "validation",
        },
        # the reference is the out-of-time population, the latest one the model was
        # checked on: early training rows carry truncated year windows (a history's first
        # year) and would read as drift against any later period; in-sample scores are
        # sharper than served ones
        reference=reference_distributions(va.X, snaps.feature_names),
    )
    scores = {"model": bundle.predict_proba(va.X)}
    bundle.reference[SCORE_KEY] = reference_bins(scores["model"])
    if choose_bnpl_policy and precomputed is not None:
        # partitioned training holds no order history in one place to replay
        bundle.metadata["bnpl_operating_point"] = {
            "source": "policy file",
            "reason": "kept the policy file's defaults: partitioned training holds no "
            "order history in one process; a full training run or bnpl-eval chooses it",
            "policy_file_cutoff": bundle.bnpl_policy.risk_cutoff,
        }
    elif choose_bnpl_policy:
        # before the fairness table, which reads the cut-off in force
        with stage("pay-later operating point"):
            fit = choose_bundle_policy(
                events, bundle.predict_proba, bundle.bnpl_policy, split.dates["validation"]
            )
        bundle.bnpl_policy = fit.policy
        bundle.metadata["bnpl_operating_point"] = fit.report
    bundle.metadata["fairness"] = fairness_table(
        va.y,
        scores["model"],
        customer_groups(events, va.customer, va.as_of),
        bundle.policy.early_warning_threshold,
        bundle.bnpl_policy.risk_cutoff,
    ).to_dict()

    with stage("logistic_regression"):
        scores["logistic_regression"] = _logistic_regression_scores(tr, va, seed=params["seed"])
    left_out = {}
    with stage("rule_second_reminder"):
        if precomputed is not None:
            rule = precomputed.rule_second_reminder
        else:
            rule = second_reminder_rule(events, va)
    why_not = constant_score_reason(rule, "had a 14-day letter open")
    if why_not is None:
        scores["rule_second_reminder"] = rule
    else:
        left_out["rule_second_reminder"] = why_not

    if truth_customers is not None and truth_monthly is not None:
        for name, observable_only in (("oracle", False), ("oracle_observable", True)):
            if observable_only and precomputed is not None:
                left_out[name] = "needs every customer's events at once (partitioned training)"
                continue
            with stage(name):
                scores[name] = _oracle_scores(
                    events, tr, ca, va, truth_customers, truth_monthly, params, observable_only
                )

    context = TrainingContext(
        events,
        snaps,
        split,
        label_config,
        truth_customers,
        truth_monthly,
        params,
        plan_events,
        precomputed,
    )
    fitted = {}
    for trainer in component_trainers():
        with stage(f"component {trainer.name}"):
            component = trainer.fit(context)
        bundle.components[component.name] = component.component
        fitted[component.name] = component

    metrics = {name: binary_metrics(va.y, p) for name, p in scores.items()}
    metrics.update({name: f.metrics for name, f in fitted.items()})
    bundle.metadata["metrics"] = metrics["model"]
    # the baselines on the same rows, for the model card
    bundle.metadata["out_of_time_metrics"] = {name: metrics[name] for name in scores}
    if left_out:
        bundle.metadata["baselines_left_out"] = left_out
    gain = booster.feature_importance("gain")
    importance = {n: float(g) for n, g in zip(snaps.feature_names, gain, strict=True)}
    return CandidateModel(
        bundle, split, metrics, scores, va.y, params, importance, fitted, timings, left_out
    )


def constant_score_reason(flags: np.ndarray, flagged: str) -> str | None:
    """Why a rule's 0/1 ``flags`` over the validation rows are no baseline (None when they
    are): a constant flag ranks nothing, and its ROC AUC of 0.5 would say nothing true.
    ``flagged`` says what a flag of 1 means, for the reason."""
    if np.unique(flags).size > 1:
        return None
    who = "every" if flags.size and flags[0] else "no"
    return f"{who} validation customer {flagged}, so the rule ranks nothing"


def _logistic_regression_scores(train: Snapshots, valid: Snapshots, seed: int) -> np.ndarray:
    """Validation scores of the logistic-regression baseline on the same features.

    Fitted on at most :data:`LR_MAX_ROWS` training rows (a seeded sample) and scored in
    chunks: its imputer and scaler copy what they are given, three copies of the whole
    training matrix at a million customers, and a linear model has learnt all it can
    long before that many rows.
    """
    X, y = train.X, train.y
    if len(y) > LR_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), LR_MAX_ROWS, replace=False))
        X, y = X[rows], y[rows]
    lr = fit_logistic_regression(X, y)
    step = LR_MAX_ROWS // 4
    return np.concatenate(
        [lr.predict_proba(valid.X[i : i + step])[:, 1] for i in range(0, len(valid), step)]
    )


def fit_logistic_regression(X: np.ndarray, y: np.ndarray) -> Any:
    """The logistic-regression baseline: median imputation with missing-value indicators,
    standardised features, L2 (C = 1). A fitted scikit-learn pipeline."""
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, C=1.0),
    ).fit(X, y)


def _oracle_scores(
    events: EventArrays,
    train: Snapshots,
    calib: Snapshots,
    valid: Snapshots,
    truth_customers: pd.DataFrame,
    truth_monthly: pd.DataFrame,
    params: dict[str, Any],
    observable_only: bool = False,
) -> np.ndarray:
    """Calibrated validation scores of the oracle (a booster that also sees the hidden state).

    With ``observable_only``, the hidden state no creditor could observe is unknown to it
    (:func:`~training.dataset.mask_unobservable`): the ceiling for a model on the
    creditor's own data. Its own copies of the segments' features live only in here, so
    they are freed before the components are trained.
    """
    segments = []
    for seg in (train, calib, valid):
        X, names = oracle_features(events, seg, truth_customers, truth_monthly)
        if observable_only:
            mask_unobservable(X, names, events, seg, truth_customers)
        segments.append(X)
    X_tr, X_ca, X_va = segments
    oracle = _fit_booster(X_tr, train.y, X_ca, calib.y, names, params, constrained=False)
    platt = fit_platt(np.asarray(oracle.predict(X_ca)), calib.y)
    return apply_platt(np.asarray(oracle.predict(X_va)), platt)


def reference_distributions(
    X: np.ndarray, names: tuple[str, ...], scores: np.ndarray | None = None
) -> dict[str, Any]:
    """Per-feature deciles, decile bins with their shares, and missing share of ``X``
    (the out-of-time rows at training); with ``scores``, the score's under :data:`SCORE_KEY` (for drift checks,
    :mod:`training.monitoring.drift`)."""
    out: dict[str, Any] = {name: reference_bins(X[:, i]) for i, name in enumerate(names)}
    if scores is not None:
        out[SCORE_KEY] = reference_bins(scores)
    return out

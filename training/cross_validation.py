"""``tijdig evaluate --cv K``: stratified K-fold cross-validation on external labels.

A creditor's own data often has one label date (the bureau's "bad within 12 months after
the observation date"), which allows no out-of-time split. Cross-validation then says how
well the model ranks: per fold the same model and calibration as ``tijdig train``
(:data:`training.train.DEFAULT_PARAMS`, monotone constraints, early stopping and Platt
scaling on a held-out stratified 20 % of the training folds), and beside it the
logistic-regression baseline of training on the same rows. Metrics per fold, their mean
and standard deviation (ddof 1), and the gain share of the top features.

Rows are the labels (``customer_id, as_of, label``), features computed point in time at
each ``as_of`` by the one feature definition. A customer labelled at several dates is kept
in one fold (stratified group folds), and the report says the figure is then not out of
time. ``benchmarks/taiwan.py`` calls :func:`cross_validate` with the UCI Taiwan protocol
(``StratifiedKFold(5, shuffle=True, random_state=0)``), so its figure is reproduced by
``tijdig evaluate --cv 5``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from features.build import FEATURE_NAMES, FEATURE_SET_VERSION
from training.dataset import Snapshots
from training.evaluate import binary_metrics
from training.rejected import TrainingDataRejected
from training.train import DEFAULT_PARAMS, _fit_booster, fit_logistic_regression, fit_platt

MODEL, LOGISTIC = "model", "logistic_regression"
#: metrics reported as mean ± sd over the folds
SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ks", "ece")
STOP_SHARE = 0.2  # of each training fold: early stopping and Platt scaling


@dataclass
class CrossValidation:
    """Per model: metrics per fold, and their mean and sd; the top features' gain share."""

    k: int
    seed: int
    per_fold: dict[str, list[dict[str, float]]]
    summary: dict[str, dict[str, float]]
    top_features_gain_share: dict[str, float]
    rows: int
    customers: int
    label_dates: list[str]
    base_rate: float
    grouped: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "seed": self.seed,
            "protocol": protocol(self.k, self.seed, self.grouped),
            "rows": self.rows,
            "customers": self.customers,
            "label_dates": self.label_dates,
            "base_rate": round(self.base_rate, 4),
            "feature_set_version": FEATURE_SET_VERSION,
            "summary": self.summary,
            "per_fold": self.per_fold,
            "top_features_gain_share": self.top_features_gain_share,
            **self.extra,
        }


def protocol(k: int, seed: int, grouped: bool) -> str:
    """The protocol in one sentence, for reports."""
    folds = (
        f"StratifiedGroupKFold({k}, shuffle=True, random_state={seed}) by customer (labels at "
        "several dates: a customer stays in one fold; folds mix dates, so this is not an "
        "out-of-time figure)"
        if grouped
        else f"StratifiedKFold({k}, shuffle=True, random_state={seed})"
    )
    return (
        f"{folds}; LightGBM DEFAULT_PARAMS + monotone constraints, early stopping and Platt "
        f"scaling on a stratified {STOP_SHARE:.0%} of each training fold; logistic regression "
        "(median imputation with missing indicators, standardised) on the same rows"
    )


def _folds(
    y: np.ndarray, groups: np.ndarray | None, k: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    dummy = np.zeros(len(y))
    if groups is None:
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(dummy, y))
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(dummy, y, groups))


def _stop_split(
    idx: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, stop) rows of a training fold: a stratified 20 %, whole customers when grouped."""
    if groups is None:
        fit, stop = train_test_split(idx, test_size=STOP_SHARE, stratify=y[idx], random_state=seed)
        return np.asarray(fit), np.asarray(stop)
    inner = StratifiedGroupKFold(round(1 / STOP_SHARE), shuffle=True, random_state=seed)
    fit, stop = next(inner.split(np.zeros(idx.size), y[idx], groups[idx]))
    return idx[fit], idx[stop]


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    names: tuple[str, ...] = FEATURE_NAMES,
    *,
    k: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    constrained: bool = True,
    baselines: tuple[str, ...] = (LOGISTIC,),
    progress: Callable[[str, int, int], None] | None = None,
    out_of_fold: np.ndarray | None = None,
) -> tuple[dict[str, list[dict[str, float]]], dict[str, dict[str, float]], dict[str, float]]:
    """(metrics per fold per model, mean and sd per model, top-15 gain shares).

    ``out_of_fold`` (length of ``y``), when given, receives each row's calibrated
    probability from the fold that held it out (for diagnostics by a group).

    Rows keep their order: the folds of ``StratifiedKFold`` depend on it, so the same rows
    in the same order give the same figure.
    """
    if k < 2:
        raise TrainingDataRejected(f"--cv must be at least 2 folds; got {k}")
    counts = np.bincount(y.astype(np.int64), minlength=2)
    n_groups = len(np.unique(groups)) if groups is not None else len(y)
    if counts.min() < k or n_groups < k:
        raise TrainingDataRejected(
            f"{k}-fold cross-validation needs at least {k} rows of each label and {k} "
            f"customers; got {counts[0]} zeros, {counts[1]} ones, {n_groups} customers"
        )
    per_fold: dict[str, list[dict[str, float]]] = {MODEL: [], **{b: [] for b in baselines}}
    importance = np.zeros(len(names))
    params = {**DEFAULT_PARAMS}
    folds = _folds(y, groups, k, seed)
    for i, (train_idx, test_idx) in enumerate(folds):
        if progress:
            progress("cross-validation folds", i, k)
        fit, stop = _stop_split(train_idx, y, groups, seed)
        booster = _fit_booster(X[fit], y[fit], X[stop], y[stop], names, params, constrained)
        platt = fit_platt(np.asarray(booster.predict(X[stop])), y[stop])
        raw = np.clip(np.asarray(booster.predict(X[test_idx])), 1e-12, 1 - 1e-12)
        p = 1 / (1 + np.exp(-(platt["slope"] * np.log(raw / (1 - raw)) + platt["intercept"])))
        if out_of_fold is not None:
            out_of_fold[test_idx] = p
        metrics = binary_metrics(y[test_idx], p)
        metrics["best_iteration"] = float(booster.best_iteration)
        per_fold[MODEL].append(metrics)
        importance += booster.feature_importance("gain")
        if LOGISTIC in baselines:
            lr = fit_logistic_regression(X[train_idx], y[train_idx])
            per_fold[LOGISTIC].append(
                binary_metrics(y[test_idx], lr.predict_proba(X[test_idx])[:, 1])
            )
    if progress:
        progress("cross-validation folds", k, k)
    summary = {name: summarise(folds_) for name, folds_ in per_fold.items()}
    total = importance.sum() or 1.0
    top = np.argsort(-importance)[:15]
    shares = {names[i]: round(float(importance[i] / total), 4) for i in top}
    rounded = {
        m: [{k_: round(v, 4) for k_, v in f.items()} for f in fs] for m, fs in per_fold.items()
    }
    return rounded, summary, shares


def summarise(folds: list[dict[str, float]]) -> dict[str, float]:
    """Mean and sample sd (ddof 1) of each summary metric, rounded to 4 decimals."""
    out = {}
    for key in SUMMARY_METRICS:
        values = np.array([f[key] for f in folds])
        out[key] = round(float(values.mean()), 4)
        out[f"{key}_sd"] = round(float(values.std(ddof=1)), 4)
    return out


def evaluate_snapshots(
    snaps: Snapshots,
    *,
    k: int = 5,
    seed: int = 0,
    customer_ids: np.ndarray,
    progress: Callable[[str, int, int], None] | None = None,
) -> CrossValidation:
    """Cross-validate on labelled snapshots (``snaps.customer`` positions into
    ``customer_ids``); folds by customer when a customer is labelled more than once."""
    grouped = len(np.unique(snaps.customer)) < len(snaps)
    per_fold, summary, shares = cross_validate(
        snaps.X,
        snaps.y,
        snaps.feature_names,
        k=k,
        seed=seed,
        groups=snaps.customer if grouped else None,
        progress=progress,
    )
    from features.events import from_day

    return CrossValidation(
        k=k,
        seed=seed,
        per_fold=per_fold,
        summary=summary,
        top_features_gain_share=shares,
        rows=len(snaps),
        customers=len(np.unique(snaps.customer)),
        label_dates=[from_day(int(d)).isoformat() for d in np.unique(snaps.as_of)],
        base_rate=float(snaps.y.mean()),
        grouped=grouped,
    )


def markdown(report: dict[str, Any]) -> str:
    """The short report: one table of mean ± sd, the data and the protocol."""
    lines = [
        f"# Cross-validation, {report['k']} folds",
        "",
        f"{report['rows']:,} labelled rows, {report['customers']:,} customers, label dates "
        f"{_dates(report['label_dates'])}, base rate {report['base_rate']:.4f}; feature set "
        f"{report['feature_set_version']}.",
        "",
        "| model | ROC AUC (mean ± sd) | PR AUC | Brier | ECE |",
        "|---|---|---|---|---|",
    ]
    for name, s in report["summary"].items():
        lines.append(
            f"| {name} | {s['roc_auc']:.4f} ± {s['roc_auc_sd']:.4f} | {s['pr_auc']:.4f} | "
            f"{s['brier']:.4f} | {s['ece']:.4f} |"
        )
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(report["top_features_gain_share"].items())[:8])
    lines += ["", f"Protocol: {report['protocol']}.", "", f"Top features (gain share): {top}."]
    if report.get("labels"):
        lines += ["", f"Labels: {report['labels']}."]
    if report.get("mlflow_run_id"):
        lines += ["", f"MLflow run: {report['mlflow_run_id']}."]
    return "\n".join(lines) + "\n"


def _dates(dates: list[str]) -> str:
    if len(dates) <= 3:
        return ", ".join(dates)
    return f"{dates[0]} … {dates[-1]} ({len(dates)} dates)"


def write_report(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """``cv_report.json`` and ``cv_report.md`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    report = {**report, "written_at": datetime.now(UTC).isoformat(timespec="seconds")}
    json_path, md_path = directory / "cv_report.json", directory / "cv_report.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


#: The MLflow experiment of cross-validation runs (no model is registered by them).
EXPERIMENT = "tijdig-cross-validation"


def run_cross_validation(
    settings: Any,
    labels: Any,
    *,
    k: int = 5,
    seed: int = 0,
    out: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Read the event store, cross-validate on ``labels`` (a
    :class:`~training.label_definition.LabelFile`), write ``cv_report.json`` / ``.md`` to
    ``out`` and log an MLflow run (experiment :data:`EXPERIMENT`); returns the report."""
    from features.db import public_url
    from training.dataset import snapshots_from_external_labels
    from training.pipeline import read_store_events
    from training.registry import Registry

    def report(step: str, done: int, total: int) -> None:
        if progress:
            progress(step, done, total)

    events = read_store_events(settings.store_url, report)
    snaps = snapshots_from_external_labels(
        events, labels.frame, progress=lambda d, t: report("build features", d, t)
    )
    result = evaluate_snapshots(
        snaps, k=k, seed=seed, customer_ids=events.customer_ids, progress=progress
    )
    doc = result.as_dict()
    horizon = (
        "horizon not stated"  # cross-validation purges nothing, so the default is no matter
        if labels.warning
        else f"horizon {labels.definition.horizon_days} days"
    )
    doc["labels"] = f"{labels.definition.definition} ({labels.definition.source}, {horizon})"
    json_path, md_path = write_report(doc, out)
    registry = Registry(
        settings.mlflow_tracking_uri, EXPERIMENT, artifact_location=str(settings.artifact_dir)
    )
    report("log to MLflow", 0, 1)
    doc["mlflow_run_id"] = registry.log_run(
        {
            "cv.k": k,
            "cv.seed": seed,
            "cv.grouped": result.grouped,
            "rows": result.rows,
            "customers": result.customers,
            "label.definition": labels.definition.definition,
            "label.horizon_days": labels.definition.horizon_days,
            "feature_set_version": FEATURE_SET_VERSION,
        },
        result.summary,
        [json_path, md_path],
        {"kind": "cross-validation", "store_url": public_url(settings.store_url)},
    )
    report("log to MLflow", 1, 1)
    write_report(doc, out)  # again, with the run id
    return doc

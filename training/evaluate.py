"""Metrics and plots for probability models of payment difficulty.

All metrics take true labels ``y`` (0/1) and scores ``p`` (probabilities, or 0/1 for a
rule). ECE uses ten equal-width probability bins weighted by their share of rows
(Guo et al., 2017), the usual definition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate − mean predicted| over equal-width bins, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(total)


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov: the largest gap between the score distributions of 1s and 0s."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier, log loss, KS, ECE and the base rate."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ks": ks_statistic(y, p),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def save_plots(
    directory: Path,
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    importance: dict[str, float],
) -> list[Path]:
    """ROC curves, a calibration curve and feature importance as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, out of time")
    ax.legend(loc="lower right", fontsize=8)
    paths.append(directory / "roc.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        if len(np.unique(p)) <= 2:
            continue  # a rule has no calibration curve
        edges = np.quantile(p, np.linspace(0, 1, 16))
        which = np.clip(np.digitize(p, edges[1:-1]), 0, 14)
        mean_p = [p[which == b].mean() for b in range(15) if (which == b).any()]
        rate = [y[which == b].mean() for b in range(15) if (which == b).any()]
        ax.plot(mean_p, rate, "o-", ms=3, label=name)
    top = float(max(np.max(p) for p in scores.values()))
    ax.plot([0, top], [0, top], "k:", lw=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration, out of time")
    ax.legend(fontsize=8)
    paths.append(directory / "calibration.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    top_features = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:20]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh([k for k, _ in reversed(top_features)], [v for _, v in reversed(top_features)])
    ax.set(xlabel="gain", title="Feature importance (top 20)")
    paths.append(directory / "feature_importance.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths

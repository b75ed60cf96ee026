"""Drift: the population stability index (PSI) per feature and for the score.

The bundle's ``reference.json`` holds, per feature, the out-of-time validation rows'
deciles, the bin edges made from them and each bin's share (plus the share missing);
under :data:`SCORE_KEY` the same for the calibrated score on those rows. Those rows are
the latest population the model was checked on: early training rows have truncated
year windows and would read as drift against any later period, and scores on training
rows are in-sample and sharper than any new population's. A scored population is binned on the same edges and compared:

    PSI = Σ_bins (actual − expected) · ln(actual / expected)

with an empty bin's share replaced by the policy's ``epsilon`` (1e-4), so a bin that
empties or fills adds a large but finite term. Bins are right-closed on the interior
edges (``x <= edge``), with one bin above the last edge and one for missing values.
Bundles trained before the shares were stored have deciles only: their expected shares
are read off the deciles (each decile interval holds a tenth) and the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.monitoring.policy import DriftPolicy, drift_policy

#: The key of the score's distribution in ``reference.json`` (feature names never start
#: with an underscore).
SCORE_KEY = "__score__"
#: The probability column of a scored population.
PROBABILITY = "probability"
_DECILES = np.linspace(0.0, 1.0, 11)


def reference_bins(values: np.ndarray) -> dict[str, Any]:
    """Deciles, bin edges and bin shares of one column (NaN = missing), for ``reference.json``.

    ``shares`` has one entry per bin (``len(edges) + 1``) and, with ``missing_share``,
    sums to 1.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {
            "missing_share": 1.0 if values.size else 0.0,
            "deciles": [],
            "edges": [],
            "shares": [0.0],
        }
    # observed values as edges (no interpolation), so a point mass stays in one bin
    deciles = np.quantile(finite, _DECILES, method="inverted_cdf")
    edges = np.unique(deciles[1:-1])
    counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=edges.size + 1)
    return {
        "missing_share": float(1 - finite.size / values.size),
        "deciles": deciles.tolist(),
        "edges": edges.tolist(),
        "shares": (counts / values.size).tolist(),
    }


def _expected(entry: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Interior edges and expected shares (last = missing) of a reference entry, and
    whether they were approximated from deciles alone."""
    missing = float(entry.get("missing_share", 0.0))
    if "edges" in entry and "shares" in entry:
        edges = np.asarray(entry["edges"], dtype=np.float64)
        return edges, np.append(np.asarray(entry["shares"], dtype=np.float64), missing), False
    deciles = np.asarray(entry.get("deciles", []), dtype=np.float64)
    if not deciles.size:
        return np.zeros(0), np.array([0.0, missing]), True
    edges = np.unique(deciles[1:-1])
    # P(x <= edge) read as the highest decile level at or below the edge
    levels = np.array([_DECILES[deciles <= e].max() for e in edges])
    cdf = np.concatenate([[0.0], levels, [1.0]])
    return edges, np.append(np.diff(cdf) * (1 - missing), missing), True


def actual_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in the bins of ``edges`` (right-closed), the last entry missing."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    counts = np.bincount(
        np.searchsorted(edges, values[finite], side="left"), minlength=edges.size + 1
    )
    return np.append(counts, (~finite).sum()) / max(values.size, 1)


def psi(
    expected: Sequence[float] | np.ndarray,
    actual: Sequence[float] | np.ndarray,
    epsilon: float = 1e-4,
) -> float:
    """Population stability index of two share vectors over the same bins.

    Shares of zero become ``epsilon`` (both sides), so an emptied or newly filled bin
    contributes a large finite term instead of infinity. Identical vectors give 0.
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"expected and actual need the same bins; got {e.shape} and {a.shape}")
    e, a = np.maximum(e, epsilon), np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class ColumnDrift:
    """PSI of one column (a feature or the score) with its status under the policy."""

    name: str
    psi: float
    status: str  # "stable", "watch" or "act"
    missing_share: float
    reference_missing_share: float


@dataclass
class DriftReport:
    """PSI per feature and for the score of one scored population against a bundle."""

    rows: int
    policy: DriftPolicy
    features: list[ColumnDrift]
    score: ColumnDrift | None
    approximate: bool = False  # expected shares read off deciles (an older bundle)
    not_in_reference: list[str] = field(default_factory=list)

    def top_movers(self, k: int | None = None) -> list[ColumnDrift]:
        """The ``k`` features with the largest PSI (policy's ``top_movers`` by default)."""
        k = self.policy.top_movers if k is None else k
        return sorted(self.features, key=lambda c: c.psi, reverse=True)[:k]

    def alerts(self) -> list[str]:
        """One line per column at ``watch`` or ``act``, the score first."""
        columns = ([self.score] if self.score else []) + self.top_movers(len(self.features))
        return [
            f"{c.status.upper()}: {c.name} PSI {c.psi:.3f}" for c in columns if c.status != "stable"
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "policy_version": self.policy.version,
            "approximate": self.approximate,
            "score": None if self.score is None else vars(self.score),
            "features": [vars(c) for c in self.features],
        }

    def render(self) -> str:
        """A Markdown summary: score PSI, alerts, and the top movers."""
        p = self.policy
        lines = [
            f"## Drift against the training reference ({self.rows} rows)",
            "",
            f"Thresholds ({p.version}): watch at PSI {p.psi_watch}, act at {p.psi_act}; "
            f"empty bins count as a share of {p.epsilon}.",
        ]
        if self.approximate:
            lines.append("Expected shares read off the reference deciles (an older bundle).")
        if self.score is not None:
            lines.append(f"Score PSI: {self.score.psi:.4f} ({self.score.status}).")
        lines += ["", *(f"- {a}" for a in self.alerts() or ["no feature beyond the watch level"])]
        lines += [
            "",
            "| feature | PSI | status | missing now | missing in training |",
            "|---|---:|---|---:|---:|",
        ]
        lines += [
            f"| {c.name} | {c.psi:.4f} | {c.status} | {c.missing_share:.1%} | "
            f"{c.reference_missing_share:.1%} |"
            for c in self.top_movers()
        ]
        if self.not_in_reference:
            lines += ["", f"Not in the reference: {', '.join(self.not_in_reference)}."]
        return "\n".join(lines) + "\n"


def _column_drift(
    name: str, entry: Mapping[str, Any], values: np.ndarray, policy: DriftPolicy
) -> tuple[ColumnDrift, bool]:
    edges, expected, approximate = _expected(entry)
    actual = actual_shares(values, edges)
    value = psi(expected, actual, policy.epsilon)
    drift = ColumnDrift(name, value, policy.status(value), float(actual[-1]), float(expected[-1]))
    return drift, approximate


def drift_report(
    reference: Mapping[str, Any],
    scored: pd.DataFrame,
    policy: DriftPolicy | None = None,
    probability_column: str = PROBABILITY,
) -> DriftReport:
    """PSI of every reference feature found in ``scored`` and of its probabilities.

    Parameters
    ----------
    reference
        The bundle's ``reference.json`` (``Bundle.reference``).
    scored
        One row per scored customer: feature columns by name (NaN = missing) and, when
        present, ``probability_column``. Reference features absent from ``scored`` are
        listed in the report, not guessed.
    policy
        Thresholds; default the versioned ``monitoring_policy.json``.
    """
    policy = policy or drift_policy()
    if scored.empty:
        raise ValueError("the scored population is empty; nothing to compare")
    approximate = False
    features, absent = [], []
    for name, entry in reference.items():
        if name == SCORE_KEY:
            continue
        if name not in scored.columns:
            absent.append(name)
            continue
        drift, approx = _column_drift(name, entry, scored[name].to_numpy(np.float64), policy)
        features.append(drift)
        approximate = approximate or approx
    score = None
    if SCORE_KEY in reference and probability_column in scored.columns:
        values = scored[probability_column].to_numpy(np.float64)
        score, _ = _column_drift("score", reference[SCORE_KEY], values, policy)
    return DriftReport(len(scored), policy, features, score, approximate, absent)


def scored_frame_from_decisions(decisions: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A scored population from decision-log records (``GET /v1/decisions/{id}`` shape).

    Each record's ``features`` (name -> value, None = missing) become columns, with
    ``customer_id``, ``as_of``, ``model_version`` and ``probability`` from its outputs.
    """
    rows = []
    for d in decisions:
        outputs = d.get("outputs") or {}
        rows.append(
            {
                "customer_id": d.get("customer_id"),
                "as_of": d.get("as_of"),
                "model_version": d.get("model_version"),
                PROBABILITY: outputs.get(PROBABILITY, np.nan),
                **{k: (np.nan if v is None else v) for k, v in (d.get("features") or {}).items()},
            }
        )
    return pd.DataFrame(rows)

"""Champion against shadow challenger on the same live rows (issue 23, item 6).

The service logs, for a share of risk decisions, the champion's answer and what the
challenger would have answered (``shadow_scores`` in the decision log). Here those
rows become the figures a data scientist decides a promotion on:

* **agreement**, at once: Spearman rank correlation of the two probabilities, the share
  of rows where both flag (or both do not) at their own policy cut-off, the mean
  absolute difference of the probabilities, and each model's flag rate;
* **outcomes**, once the label horizon has passed (rows labelled by
  :func:`training.monitoring.outcomes.matured_labels`, as ``monitor outcomes`` does):
  both models' ROC AUC, PR AUC and ECE on exactly the same rows.

Rows are grouped by (champion version, challenger version): a period that spans a
promotion compares each pair on its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

from training.evaluate import expected_calibration_error
from training.monitoring.outcomes import LABEL

CHAMPION_P = "champion_probability"
CHALLENGER_P = "challenger_probability"
SHADOW_FRAME_COLUMNS = (
    "customer_id",
    "as_of",
    "champion_version",
    "challenger_version",
    CHAMPION_P,
    CHALLENGER_P,
    "champion_flag",
    "challenger_flag",
)


@dataclass(frozen=True)
class Agreement:
    """How two models' answers on the same rows agree; NaN where undefined."""

    rows: int
    rank_correlation: float  # Spearman's rho of the probabilities
    flag_agreement: float  # share of rows both flag or both do not
    mean_abs_difference: float  # of the probabilities
    champion_flag_rate: float
    challenger_flag_rate: float


@dataclass(frozen=True)
class MaturedComparison:
    """Both models on the same rows whose labels have matured."""

    rows: int
    base_rate: float
    champion: dict[str, float]  # roc_auc, pr_auc, ece
    challenger: dict[str, float]


@dataclass
class PairComparison:
    champion_version: str
    challenger_version: str
    agreement: Agreement
    matured: MaturedComparison | None = None


@dataclass
class CompareReport:
    pairs: list[PairComparison]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": [
                {
                    "champion_version": p.champion_version,
                    "challenger_version": p.challenger_version,
                    "agreement": vars(p.agreement),
                    "matured": None if p.matured is None else vars(p.matured),
                }
                for p in self.pairs
            ],
            "notes": self.notes,
        }

    def render(self) -> str:
        """Markdown: an agreement table, then a matured-outcomes table where there is one."""
        lines = [
            "## Champion and shadow challenger on the same requests",
            "",
            "| champion | challenger | rows | rank correlation | flag agreement | "
            "mean abs. difference | flag rate champion | flag rate challenger |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for p in self.pairs:
            a = p.agreement
            lines.append(
                f"| {p.champion_version} | {p.challenger_version} | {a.rows:,} | "
                f"{a.rank_correlation:.4f} | {a.flag_agreement:.2%} | "
                f"{a.mean_abs_difference:.4f} | {a.champion_flag_rate:.2%} | "
                f"{a.challenger_flag_rate:.2%} |"
            )
        matured = [p for p in self.pairs if p.matured is not None]
        if matured:
            lines += [
                "",
                "### Matured outcomes, same rows",
                "",
                "| champion | challenger | rows | observed rate | ROC AUC champion | "
                "ROC AUC challenger | PR AUC champion | PR AUC challenger | ECE champion | "
                "ECE challenger |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for p in matured:
                m = p.matured
                assert m is not None
                c, h = m.champion, m.challenger
                lines.append(
                    f"| {p.champion_version} | {p.challenger_version} | {m.rows:,} | "
                    f"{m.base_rate:.2%} | {c['roc_auc']:.4f} | {h['roc_auc']:.4f} | "
                    f"{c['pr_auc']:.4f} | {h['pr_auc']:.4f} | {c['ece']:.4f} | {h['ece']:.4f} |"
                )
        lines += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(lines).rstrip() + "\n"


def agreement(frame: pd.DataFrame) -> Agreement:
    """:class:`Agreement` of the shadow rows in ``frame`` (:data:`SHADOW_FRAME_COLUMNS`)."""
    champion = frame[CHAMPION_P].to_numpy(np.float64)
    challenger = frame[CHALLENGER_P].to_numpy(np.float64)
    n = len(frame)
    if n == 0:
        nan = float("nan")
        return Agreement(0, nan, nan, nan, nan, nan)
    flags_a = frame["champion_flag"].to_numpy(bool)
    flags_b = frame["challenger_flag"].to_numpy(bool)
    constant = np.ptp(champion) == 0 or np.ptp(challenger) == 0
    rho = float("nan") if n < 2 or constant else float(spearmanr(champion, challenger).statistic)
    return Agreement(
        rows=n,
        rank_correlation=rho,
        flag_agreement=float(np.mean(flags_a == flags_b)),
        mean_abs_difference=float(np.mean(np.abs(champion - challenger))),
        champion_flag_rate=float(flags_a.mean()),
        challenger_flag_rate=float(flags_b.mean()),
    )


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    two_classes = len(np.unique(y)) == 2
    nan = float("nan")
    return {
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else nan,
        "pr_auc": float(average_precision_score(y, p)) if two_classes else nan,
        "ece": expected_calibration_error(y, p),
    }


def matured_comparison(labelled: pd.DataFrame) -> MaturedComparison | None:
    """Both models' ROC AUC, PR AUC and ECE on the rows of ``labelled`` (shadow rows with
    a ``label`` column); None when there is none."""
    if labelled.empty:
        return None
    y = labelled[LABEL].to_numpy(np.float64)
    return MaturedComparison(
        rows=len(labelled),
        base_rate=float(y.mean()),
        champion=_metrics(y, labelled[CHAMPION_P].to_numpy(np.float64)),
        challenger=_metrics(y, labelled[CHALLENGER_P].to_numpy(np.float64)),
    )


def compare_report(shadow: pd.DataFrame, labelled: pd.DataFrame | None = None) -> CompareReport:
    """The comparison of every (champion, challenger) pair in ``shadow``.

    Parameters
    ----------
    shadow
        Shadow rows (:data:`SHADOW_FRAME_COLUMNS`), e.g. from the decision log.
    labelled
        The matured subset of ``shadow`` with a ``label`` column; None (or empty) when
        no outcome is known yet.
    """
    missing = [c for c in SHADOW_FRAME_COLUMNS if c not in shadow.columns]
    if missing:
        raise ValueError(f"shadow rows need the columns {missing}; got {list(shadow.columns)}")
    notes: list[str] = []
    pairs = []
    keys = ["champion_version", "challenger_version"]
    for (champion, challenger), rows in shadow.groupby(keys, sort=True):
        matured = None
        if labelled is not None and not labelled.empty:
            same = (labelled["champion_version"] == champion) & (
                labelled["challenger_version"] == challenger
            )
            matured = matured_comparison(labelled.loc[same])
        pairs.append(PairComparison(str(champion), str(challenger), agreement(rows), matured))
    if not any(p.matured for p in pairs):
        notes.append(
            "no shadowed row has a matured outcome yet (the label horizon has not passed, "
            "or no event store): agreement only"
        )
    return CompareReport(pairs, notes)

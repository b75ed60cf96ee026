"""The monitoring and fairness thresholds, read from versioned JSON in ``models/config/``.

Thresholds are configuration with a version and an effective date (STYLE.md, habit 7):
``monitoring_policy.json`` (drift and outcome alerts) and ``fairness_policy.json``
(the promotion gate's fairness bounds).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any


def _config(name: str) -> dict[str, Any]:
    text = resources.files("models").joinpath(f"config/{name}").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1); got {value}")


@dataclass(frozen=True)
class DriftPolicy:
    """PSI thresholds: ``psi_watch`` (0.10) marks a feature to watch, ``psi_act`` (0.25)
    one to act on; ``epsilon`` replaces an empty bin's share so PSI stays finite."""

    version: str
    psi_watch: float = 0.10
    psi_act: float = 0.25
    epsilon: float = 1e-4
    top_movers: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.psi_watch < self.psi_act:
            raise ValueError(
                f"need 0 < psi_watch < psi_act; got {self.psi_watch} and {self.psi_act}"
            )
        _check_fraction("epsilon", self.epsilon)

    def status(self, psi: float) -> str:
        """``"act"``, ``"watch"`` or ``"stable"`` for a PSI value."""
        if psi >= self.psi_act:
            return "act"
        return "watch" if psi >= self.psi_watch else "stable"


@dataclass(frozen=True)
class OutcomePolicy:
    """When matured outcomes (a label horizon after ``as_of``) raise an alert: a cohort's ECE above ``max_ece`` or its ROC AUC
    more than ``max_roc_auc_drop`` below the validation figure. Cohorts under
    ``min_cohort_rows`` are reported without alerts (too few rows to tell)."""

    version: str
    max_ece: float = 0.03
    max_roc_auc_drop: float = 0.03
    min_cohort_rows: int = 200

    def __post_init__(self) -> None:
        _check_fraction("max_ece", self.max_ece)
        _check_fraction("max_roc_auc_drop", self.max_roc_auc_drop)


@dataclass(frozen=True)
class FairnessPolicy:
    """Bounds on the validation rows' fairness table, checked by the promotion gate.

    ``max_flag_rate_disparity``: the largest over the smallest group's flags per observed
    case of difficulty (flag rate / base rate) — a group flagged more often than its own
    outcomes justify. ``max_group_ece``: calibration within every group. ``max_tpr_gap``:
    the largest difference in true-positive rate at the early-warning cut-off (a group
    whose difficulties are missed). Groups below ``min_group_rows`` are not gated; the
    two per-case bounds (TPR, flags per case) also need ``min_group_cases`` observed
    cases in a group (a TPR of six cases moves by a sixth with each).
    """

    version: str
    min_group_rows: int = 200
    min_group_cases: int = 30
    max_group_ece: float = 0.06
    max_tpr_gap: float = 0.30
    max_flag_rate_disparity: float = 2.0

    def __post_init__(self) -> None:
        _check_fraction("max_group_ece", self.max_group_ece)
        _check_fraction("max_tpr_gap", self.max_tpr_gap)
        if self.max_flag_rate_disparity < 1.0:
            raise ValueError(
                f"max_flag_rate_disparity must be >= 1; got {self.max_flag_rate_disparity}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fields(doc: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    return {"version": str(doc["version"]), **section}


def drift_policy() -> DriftPolicy:
    """The drift thresholds in force (``models/config/monitoring_policy.json``)."""
    doc = _config("monitoring_policy.json")
    return DriftPolicy(**_fields(doc, doc["drift"]))


def outcome_policy() -> OutcomePolicy:
    """The outcome alert thresholds in force (``models/config/monitoring_policy.json``)."""
    doc = _config("monitoring_policy.json")
    return OutcomePolicy(**_fields(doc, doc["outcomes"]))


def fairness_policy() -> FairnessPolicy:
    """The promotion gate's fairness bounds (``models/config/fairness_policy.json``)."""
    doc = _config("fairness_policy.json")
    keys = {
        "min_group_rows",
        "min_group_cases",
        "max_group_ece",
        "max_tpr_gap",
        "max_flag_rate_disparity",
    }
    return FairnessPolicy(version=str(doc["version"]), **{k: doc[k] for k in keys if k in doc})

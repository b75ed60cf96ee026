"""Outcomes: the champion's discrimination and calibration on matured labels, by cohort.

A scored row (customer, ``as_of``, probability) matures once its label horizon has
passed in the event store: its label is then computed point in time with the project's
own definition (:func:`features.labels.make_labels`), and only rows of the label's
population count (customers already in difficulty at ``as_of`` are not early-warning
cases). Monthly cohorts of ``as_of`` are compared with the bundle's validation figures;
an alert is raised when a cohort's ECE exceeds the policy's ``max_ece`` or its ROC AUC
falls more than ``max_roc_auc_drop`` below validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.events import NEVER, EventArrays, from_day, to_day
from features.labels import LabelConfig, make_labels
from training.evaluate import expected_calibration_error
from training.monitoring.drift import PROBABILITY
from training.monitoring.policy import OutcomePolicy, outcome_policy

LABEL = "label"


def last_event_day(events: EventArrays) -> date:
    """The latest day any event in ``events`` is dated (what the store knows up to)."""
    days = [events.invoices["issue_day"], events.payments["day"], events.income["day"]]
    known = np.concatenate([d[d < NEVER] for d in days])
    if not known.size:
        raise ValueError("no events: no outcome can have matured")
    return from_day(int(known.max()))


def matured_labels(
    scored: pd.DataFrame,
    events: EventArrays,
    config: LabelConfig = LabelConfig(),
    data_end: date | None = None,
) -> pd.DataFrame:
    """The rows of ``scored`` whose labels have matured, with ``label`` (0/1) added.

    Parameters
    ----------
    scored
        Columns ``customer_id``, ``as_of`` (dates) and ``probability``.
    events
        The event store's events (after the horizon), e.g. ``training.pipeline.read_events``.
    config
        The label definition the bundle was trained on (its ``metadata["label"]``).
    data_end
        The last day the store is complete for; default the latest event day. A row
        matures when ``as_of + horizon_days <= data_end``.

    Rows of unknown customers, not yet matured, or outside the label's population
    (already in difficulty at ``as_of``, or too new) are dropped.
    """
    for column in ("customer_id", "as_of", PROBABILITY):
        if column not in scored.columns:
            raise ValueError(f"scored rows need a {column!r} column; got {list(scored.columns)}")
    end = to_day(data_end or last_event_day(events))
    position = {str(c): i for i, c in enumerate(events.customer_ids)}
    pos = scored["customer_id"].astype(str).map(position)
    as_of = np.array([to_day(d) for d in pd.to_datetime(scored["as_of"]).dt.date])
    keep = pos.notna().to_numpy() & (as_of + config.horizon_days <= end)
    pos_int = pos.fillna(-1).to_numpy(np.int64)
    label = np.full(len(scored), np.nan)
    eligible = np.zeros(len(scored), dtype=bool)
    for day in np.unique(as_of[keep]):
        rows = keep & (as_of == day)
        labels = make_labels(events, from_day(int(day)), config)
        label[rows] = labels.y[pos_int[rows]]
        eligible[rows] = labels.eligible[pos_int[rows]]
    out = scored.loc[keep & eligible].copy()
    out[LABEL] = label[keep & eligible]
    return out


@dataclass(frozen=True)
class CohortOutcome:
    """One monthly cohort's figures; AUCs are NaN when the cohort has one class only."""

    cohort: str  # "YYYY-MM" of as_of
    rows: int
    base_rate: float
    mean_predicted: float
    roc_auc: float
    pr_auc: float
    ece: float
    alerts: tuple[str, ...] = ()


@dataclass
class OutcomeReport:
    cohorts: list[CohortOutcome]
    validation: dict[str, float]
    policy: OutcomePolicy
    model_version: str = ""
    notes: list[str] = field(default_factory=list)

    def alerts(self) -> list[str]:
        return [f"{c.cohort}: {a}" for c in self.cohorts for a in c.alerts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "policy_version": self.policy.version,
            "validation": self.validation,
            "cohorts": [vars(c) for c in self.cohorts],
            "alerts": self.alerts(),
        }

    def render(self) -> str:
        """A Markdown table per cohort against validation, then the alert lines."""
        p, v = self.policy, self.validation
        lines = [
            f"## Matured outcomes{f' of {self.model_version}' if self.model_version else ''}",
            "",
            f"Alerts ({p.version}): ECE above {p.max_ece}, or ROC AUC more than "
            f"{p.max_roc_auc_drop} below validation ({v.get('roc_auc', float('nan')):.4f}; "
            f"validation ECE {v.get('ece', float('nan')):.4f}, PR AUC "
            f"{v.get('pr_auc', float('nan')):.4f}).",
            "",
            "| cohort | rows | observed rate | mean predicted | ROC AUC | PR AUC | ECE |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {c.cohort} | {c.rows} | {c.base_rate:.2%} | {c.mean_predicted:.2%} | "
            f"{c.roc_auc:.4f} | {c.pr_auc:.4f} | {c.ece:.4f} |"
            for c in self.cohorts
        ]
        lines += ["", *(f"- ALERT {a}" for a in self.alerts() or [])]
        if not self.alerts():
            lines.append("- no alert")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _cohort(
    name: str, y: np.ndarray, p: np.ndarray, validation: Mapping[str, float], policy: OutcomePolicy
) -> CohortOutcome:
    two_classes = len(np.unique(y)) == 2
    roc = float(roc_auc_score(y, p)) if two_classes else float("nan")
    pr = float(average_precision_score(y, p)) if two_classes else float("nan")
    ece = expected_calibration_error(y, p)
    alerts = []
    if len(y) >= policy.min_cohort_rows:
        if ece > policy.max_ece:
            alerts.append(f"ECE {ece:.4f} above {policy.max_ece}")
        reference = validation.get("roc_auc")
        if reference is not None and two_classes and roc < reference - policy.max_roc_auc_drop:
            alerts.append(
                f"ROC AUC {roc:.4f} is {reference - roc:.4f} below validation {reference:.4f} "
                f"(allowed {policy.max_roc_auc_drop})"
            )
    return CohortOutcome(
        name, len(y), float(y.mean()), float(p.mean()), roc, pr, ece, tuple(alerts)
    )


def outcome_report(
    labelled: pd.DataFrame,
    validation: Mapping[str, float],
    policy: OutcomePolicy | None = None,
    model_version: str = "",
) -> OutcomeReport:
    """ROC AUC, PR AUC and ECE per monthly cohort of ``as_of``, against ``validation``.

    ``labelled`` is :func:`matured_labels`' output (``as_of``, ``probability``, ``label``);
    ``validation`` the bundle's ``metadata["metrics"]`` (``roc_auc``, ``pr_auc``, ``ece``).
    Cohorts under the policy's ``min_cohort_rows`` are shown without alerts.
    """
    policy = policy or outcome_policy()
    notes = []
    if labelled.empty:
        notes.append("no scored row has matured yet")
    months = pd.to_datetime(labelled["as_of"]).dt.strftime("%Y-%m")
    cohorts = [
        _cohort(
            str(month),
            labelled.loc[index, LABEL].to_numpy(np.float64),
            labelled.loc[index, PROBABILITY].to_numpy(np.float64),
            validation,
            policy,
        )
        for month, index in labelled.groupby(months).groups.items()
    ]
    small = [c.cohort for c in cohorts if c.rows < policy.min_cohort_rows]
    if small:
        notes.append(
            f"cohorts under {policy.min_cohort_rows} rows, shown without alerts: {', '.join(small)}"
        )
    return OutcomeReport(cohorts, dict(validation), policy, model_version, notes)

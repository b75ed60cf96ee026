"""Fairness: rates, calibration and error rates of one model version per group.

Groups are age bands (under 25, 25–39, 40–64, 65 and over, from the customer's birth
year at ``as_of``) and household types (where the customer record gives one). Per group:
rows, observed rate, mean predicted, the early-warning flag rate and the pay-later
decline rate at the bundle's cut-offs (the risk cut-off only: the pay-later policy's
other rules need the order), ECE, and the true- and false-positive rates at the
early-warning cut-off. Grouping is fairlearn's :class:`~fairlearn.metrics.MetricFrame`.

:func:`fairness_violations` checks a table against the versioned bounds
(:class:`~training.monitoring.policy.FairnessPolicy`); the promotion gate refuses a
version that breaks one and says which bound and by how much.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from features.events import EventArrays
from features.schemas import HouseholdType
from training.evaluate import expected_calibration_error
from training.monitoring.policy import FairnessPolicy

AGE_BANDS = ("under 25", "25-39", "40-64", "65 and over")
UNKNOWN = "unknown"
ATTRIBUTES = ("age_band", "household_type")
_HOUSEHOLDS = np.array([h.value for h in HouseholdType] + [UNKNOWN], dtype=object)
_DAYS_PER_YEAR = 365.2425


def age_bands(birth_year: np.ndarray, as_of_day: np.ndarray) -> np.ndarray:
    """The age band at ``as_of_day`` (days since 1970-01-01) of each birth year (NaN: unknown).

    Age as the features compute it: years since mid-year of birth.
    """
    age = (np.asarray(as_of_day) / _DAYS_PER_YEAR + 1970) - np.asarray(birth_year) - 0.5
    band = np.select([age < 25, age < 40, age < 65, age >= 65], AGE_BANDS, default=UNKNOWN)
    return band.astype(object)


def customer_groups(
    events: EventArrays, customer: np.ndarray, as_of_day: np.ndarray
) -> pd.DataFrame:
    """Age band and household type of each (customer position, ``as_of`` day) row."""
    cu = events.customers
    return pd.DataFrame(
        {
            "age_band": age_bands(cu["birth_year"][customer], as_of_day),
            # -1 (no household type on record) indexes the trailing "unknown"
            "household_type": _HOUSEHOLDS[cu["household"][customer]],
        }
    )


def _metrics(flag_at: float, decline_at: float) -> dict[str, Callable[..., float]]:
    def at(cutoff: float, metric: Callable[..., float]) -> Callable[..., float]:
        return lambda y, p: float(metric(y, np.asarray(p) >= cutoff)) if len(y) else np.nan

    def rate_among(label: int) -> Callable[..., float]:
        metric = true_positive_rate if label == 1 else false_positive_rate

        def rate(y: Any, p: Any) -> float:
            # undefined (NaN) in a group without a row of that class
            return at(flag_at, metric)(y, p) if (np.asarray(y) == label).any() else np.nan

        return rate

    return {
        "rows": count,
        "base_rate": lambda y, p: float(np.mean(y)),
        "mean_predicted": lambda y, p: float(np.mean(p)),
        "flag_rate": at(flag_at, selection_rate),
        "decline_rate": at(decline_at, selection_rate),
        "ece": lambda y, p: expected_calibration_error(np.asarray(y), np.asarray(p)),
        "tpr": rate_among(1),
        "fpr": rate_among(0),
    }


@dataclass
class FairnessTable:
    """Per attribute, per group: the metrics of :func:`fairness_table`; plus the overall row."""

    groups: dict[str, dict[str, dict[str, float]]]  # attribute -> group -> metric -> value
    overall: dict[str, float]
    flag_threshold: float
    decline_threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "overall": self.overall,
            "flag_threshold": self.flag_threshold,
            "decline_threshold": self.decline_threshold,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FairnessTable:
        return cls(
            {a: {g: dict(m) for g, m in gs.items()} for a, gs in doc["groups"].items()},
            dict(doc["overall"]),
            float(doc["flag_threshold"]),
            float(doc["decline_threshold"]),
        )

    def render(self) -> str:
        """Markdown: one table per attribute, the overall row first."""
        head = (
            "| group | rows | observed | mean predicted | flagged | declined | ECE | TPR | FPR |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        lines = [
            f"Flag at p ≥ {self.flag_threshold} (early warning); decline at p ≥ "
            f"{self.decline_threshold} (pay-later risk cut-off). TPR and FPR at the flag cut-off."
        ]
        for attribute, groups in self.groups.items():
            lines += ["", f"**{attribute.replace('_', ' ')}**", "", head]
            rows = [("all", self.overall), *groups.items()]
            lines += [_row(name, m) for name, m in rows]
        return "\n".join(lines) + "\n"


def _row(name: str, m: Mapping[str, float]) -> str:
    def pct(key: str) -> str:
        value = m.get(key, np.nan)
        return "–" if value != value else f"{value:.1%}"

    ece = m.get("ece", np.nan)
    return (
        f"| {name} | {int(m['rows'])} | {pct('base_rate')} | {pct('mean_predicted')} | "
        f"{pct('flag_rate')} | {pct('decline_rate')} | {ece:.4f} | {pct('tpr')} | {pct('fpr')} |"
    )


def _clean(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}


def fairness_table(
    y: np.ndarray,
    p: np.ndarray,
    groups: pd.DataFrame,
    flag_threshold: float,
    decline_threshold: float,
) -> FairnessTable:
    """The fairness table of calibrated probabilities ``p`` against labels ``y``.

    ``groups`` has one column per attribute (e.g. :func:`customer_groups`), aligned with
    ``y``; ``flag_threshold`` is the risk policy's early-warning threshold,
    ``decline_threshold`` the pay-later policy's risk cut-off.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if not len(y) == len(p) == len(groups):
        raise ValueError(f"y, p and groups differ in length: {len(y)}, {len(p)}, {len(groups)}")
    metrics = _metrics(flag_threshold, decline_threshold)
    table: dict[str, dict[str, dict[str, float]]] = {}
    overall: dict[str, float] = {}
    for attribute in groups.columns:
        frame = MetricFrame(
            metrics=metrics,
            y_true=y,
            y_pred=p,
            sensitive_features=groups[attribute].astype(str).to_numpy(),
        )
        by_group = frame.by_group
        table[str(attribute)] = {str(g): _clean(by_group.loc[g].to_dict()) for g in by_group.index}
        overall = _clean(frame.overall.to_dict())
    return FairnessTable(table, overall, float(flag_threshold), float(decline_threshold))


@dataclass(frozen=True)
class FairnessViolation:
    """A broken bound: which, where, the value found and the limit."""

    bound: str
    attribute: str
    value: float
    limit: float
    detail: str

    def reason(self) -> str:
        return (
            f"fairness: {self.bound} {self.value:.4f} by {self.attribute} exceeds the bound "
            f"{self.limit} by {self.value - self.limit:.4f} ({self.detail})"
        )


def fairness_violations(table: FairnessTable, policy: FairnessPolicy) -> list[FairnessViolation]:
    """The bounds ``table`` breaks, among groups of at least ``min_group_rows`` rows (and
    ``min_group_cases`` observed cases for the TPR gap and the flag-rate disparity).

    The unknown group (no birth year or household type on record) is reported in the
    table but never gated: it is no group of people.
    """
    out = []
    for attribute, groups in table.groups.items():
        gated = {
            g: m for g, m in groups.items() if g != UNKNOWN and m["rows"] >= policy.min_group_rows
        }
        if not gated:
            continue
        worst = max(gated, key=lambda g: gated[g]["ece"])
        if gated[worst]["ece"] > policy.max_group_ece:
            out.append(
                FairnessViolation(
                    "max_group_ece",
                    attribute,
                    gated[worst]["ece"],
                    policy.max_group_ece,
                    f"group {worst!r}",
                )
            )
        cases = {
            g: m for g, m in gated.items() if m["base_rate"] * m["rows"] >= policy.min_group_cases
        }
        tpr = {g: m["tpr"] for g, m in cases.items()}
        if len(tpr) >= 2:
            hi, lo = max(tpr, key=tpr.__getitem__), min(tpr, key=tpr.__getitem__)
            if tpr[hi] - tpr[lo] > policy.max_tpr_gap:
                out.append(
                    FairnessViolation(
                        "max_tpr_gap",
                        attribute,
                        tpr[hi] - tpr[lo],
                        policy.max_tpr_gap,
                        f"TPR {tpr[hi]:.3f} for {hi!r} against {tpr[lo]:.3f} for {lo!r}",
                    )
                )
        per_case = {g: m["flag_rate"] / m["base_rate"] for g, m in cases.items()}
        if len(per_case) >= 2:
            hi, lo = (
                max(per_case, key=per_case.__getitem__),
                min(per_case, key=per_case.__getitem__),
            )
            disparity = per_case[hi] / per_case[lo] if per_case[lo] > 0 else float("inf")
            if disparity > policy.max_flag_rate_disparity:
                out.append(
                    FairnessViolation(
                        "max_flag_rate_disparity",
                        attribute,
                        disparity,
                        policy.max_flag_rate_disparity,
                        f"flags per observed case {per_case[hi]:.2f} for {hi!r} against "
                        f"{per_case[lo]:.2f} for {lo!r}",
                    )
                )
    return out

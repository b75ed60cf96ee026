"""The training target: payment difficulty within a horizon after ``as_of``.

Default rule (issue 2): a customer has *payment difficulty* when one of their invoices
reaches ``dpd_threshold`` (30) days past due within ``horizon_days`` (90) after
``as_of``. The population is the customers who, at ``as_of``, are already known to the
creditor for ``min_tenure_days`` and are not yet in difficulty (no unpaid invoice at or
past the threshold) — early warning is about those who are not flagged yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from features.build import as_of_days
from features.events import NEVER, EventArrays


@dataclass(frozen=True)
class LabelConfig:
    """How payment difficulty is defined. All values in days."""

    horizon_days: int = 90
    dpd_threshold: int = 30
    min_tenure_days: int = 90

    def __post_init__(self) -> None:
        for name in ("horizon_days", "dpd_threshold"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be positive; got {value}")
        if self.min_tenure_days < 0:
            raise ValueError(f"min_tenure_days must be >= 0; got {self.min_tenure_days}")


@dataclass(frozen=True)
class Labels:
    y: np.ndarray  # 1.0 = payment difficulty within the horizon
    eligible: np.ndarray  # bool: the customer belongs to the population at as_of


def make_labels(
    events: EventArrays, as_of: date | int | np.ndarray, config: LabelConfig = LabelConfig()
) -> Labels:
    """Labels for each customer of ``events`` at ``as_of`` (uses events after ``as_of``)."""
    A = as_of_days(events, as_of)
    inv = events.invoices
    c = inv["cust"]
    a = A[c]
    # The day an invoice crosses the threshold unpaid; NEVER when it was paid in time.
    crossing = inv["due_day"] + config.dpd_threshold
    crosses = inv["settled_day"] > crossing
    crossing = np.where(crosses, crossing, NEVER)

    in_window = (crossing >= a) & (crossing < a + config.horizon_days)
    y = np.bincount(c[in_window], minlength=events.n) > 0
    already = (crossing < a) & (inv["settled_day"] >= a)
    in_difficulty = np.bincount(c[already], minlength=events.n) > 0

    created = events.customers["created_day"]
    tenured = (created < NEVER) & (A - created >= config.min_tenure_days)
    return Labels(y=y.astype(np.float64), eligible=tenured & ~in_difficulty)

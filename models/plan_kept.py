"""P(kept): the probability that a payment plan of a given monthly amount is kept.

A bundle component (see :mod:`models.components`, folder ``plan_kept``). Input rows are
the customer's point-in-time features (:data:`features.build.FEATURE_NAMES`) plus the
plan terms (:data:`PLAN_FEATURES`). LightGBM with a **monotone −1 constraint** on every
monthly-amount feature (amount, amount / income, amount / free-room estimate), then Platt
scaling (strictly increasing), so asking more per month never raises P(kept). The debt
amount is a feature, the term is not: for a fixed debt the term follows from the monthly
amount, and an unconstrained term feature could undo the monotonicity.

When too few past arrangements exist to learn from, the trainer stores a conservative
``prior`` model: the observed kept rate, decreasing in the monthly amount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np

from features.build import FEATURE_NAMES
from models.budget import budget_arrays
from models.calibration import apply_platt

PLAN_FEATURES: Final[tuple[tuple[str, int, str], ...]] = (
    ("plan_monthly_eur", -1, "monthly amount of the plan, euros"),
    ("plan_amount_to_income", -1, "monthly amount / estimated monthly income"),
    (
        "plan_amount_to_free_room",
        -1,
        "monthly amount / estimated free room (free room floored at EUR 10)",
    ),
    ("plan_debt_eur", 0, "debt the plan covers, euros"),
    ("plan_income_eur", 0, "estimated monthly income, euros"),
    ("plan_free_room_eur", 0, "estimated free room per month, euros"),
)
PLAN_FEATURE_NAMES: Final = tuple(name for name, _, _ in PLAN_FEATURES)
ALL_FEATURE_NAMES: Final = (*FEATURE_NAMES, *PLAN_FEATURE_NAMES)
MONOTONE: Final = [0] * len(FEATURE_NAMES) + [m for _, m, _ in PLAN_FEATURES]
PRIOR_SCALE_EUR: Final = 250.0  # prior model: P halves roughly every EUR 175 asked per month
COMPONENT_FORMAT: Final = 1


def plan_matrix(
    X_base: np.ndarray,
    as_of_days: np.ndarray | int,
    monthly_eur: np.ndarray,
    debt_eur: np.ndarray,
    *,
    income_eur: np.ndarray | None = None,
    free_room_eur: np.ndarray | None = None,
) -> np.ndarray:
    """Rows for :meth:`PlanKeptModel.predict` (one per plan).

    ``income_eur`` / ``free_room_eur`` override the estimates from the history (e.g.
    with a budget the caller declared); NaN entries fall back to the estimate.
    """
    n = X_base.shape[0]
    days = np.broadcast_to(np.asarray(as_of_days, dtype=np.int64), (n,))
    est_income, est_room = budget_arrays(X_base, days)
    if income_eur is not None:
        income_eur = np.asarray(income_eur, dtype=np.float64)
        est_income = np.where(np.isfinite(income_eur), income_eur, est_income)
    if free_room_eur is not None:
        free_room_eur = np.asarray(free_room_eur, dtype=np.float64)
        est_room = np.where(np.isfinite(free_room_eur), free_room_eur, est_room)
    monthly = np.broadcast_to(np.asarray(monthly_eur, dtype=np.float64), (n,))
    debt = np.broadcast_to(np.asarray(debt_eur, dtype=np.float64), (n,))
    with np.errstate(divide="ignore", invalid="ignore"):
        to_income = np.where(est_income > 0, monthly / est_income, np.nan)
        to_room = monthly / np.maximum(est_room, 10.0)
    extra = np.column_stack([monthly, to_income, to_room, debt, est_income, est_room])
    return np.hstack([X_base, extra])


@dataclass
class PlanKeptModel:
    """Calibrated, monotone P(plan kept)."""

    booster: lgb.Booster | None
    calibrator: dict[str, float]  # Platt on log-odds: p = sigmoid(slope * logit(raw) + intercept)
    mode: str = "lightgbm"  # or "prior" (too little data: conservative fallback)
    prior_kept_rate: float = 0.5
    feature_names: tuple[str, ...] = ALL_FEATURE_NAMES
    policy: dict[str, Any] = field(default_factory=dict)  # plan policy trained with
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ predict
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(kept) for rows built by :func:`plan_matrix`, shape (n,)."""
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"plan rows must be (n, {len(self.feature_names)}); got {X.shape}")
        if self.mode == "prior" or self.booster is None:
            monthly = np.nan_to_num(X[:, self.feature_names.index("plan_monthly_eur")])
            return self.prior_kept_rate * np.exp(-np.maximum(monthly, 0.0) / PRIOR_SCALE_EUR)
        threads = 1 if X.shape[0] < 2048 else 0
        raw = np.asarray(self.booster.predict(X, num_threads=threads))
        return self.calibrate(raw)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return apply_platt(raw, self.calibrator, eps=1e-9)

    def predict_plans(
        self,
        X_base: np.ndarray,
        as_of_days: np.ndarray | int,
        monthly_eur: np.ndarray,
        debt_eur: np.ndarray,
        **overrides: Any,
    ) -> np.ndarray:
        return self.predict(plan_matrix(X_base, as_of_days, monthly_eur, debt_eur, **overrides))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", self.metadata.get("trained_at", "unversioned")))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.booster is not None:
            self.booster.save_model(str(directory / "booster.txt"))
        doc = {
            "format": COMPONENT_FORMAT,
            "mode": self.mode,
            "calibrator": {"method": "platt_logit", **self.calibrator},
            "prior_kept_rate": self.prior_kept_rate,
            "feature_names": list(self.feature_names),
            "monotone": MONOTONE,
            "policy": self.policy,
            "metadata": self.metadata,
        }
        (directory / "plan_kept.json").write_text(
            json.dumps(doc, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> PlanKeptModel:
        directory = Path(directory)
        doc = json.loads((directory / "plan_kept.json").read_text(encoding="utf-8"))
        booster = None
        if doc["mode"] == "lightgbm":
            booster = lgb.Booster(model_file=str(directory / "booster.txt"))
        cal = doc["calibrator"]
        return cls(
            booster=booster,
            calibrator={"slope": float(cal["slope"]), "intercept": float(cal["intercept"])},
            mode=doc["mode"],
            prior_kept_rate=float(doc["prior_kept_rate"]),
            feature_names=tuple(doc["feature_names"]),
            policy=dict(doc.get("policy", {})),
            metadata=dict(doc.get("metadata", {})),
        )

    def self_check(self) -> None:
        """Valid probabilities, and P(kept) never rises with the monthly amount."""
        if tuple(self.feature_names) != ALL_FEATURE_NAMES:
            raise ValueError("plan_kept feature names differ from this code's feature set")
        if self.mode not in ("lightgbm", "prior"):
            raise ValueError(f"unknown plan_kept mode {self.mode!r}")
        if self.mode == "lightgbm":
            if self.booster is None or self.booster.num_feature() != len(self.feature_names):
                raise ValueError("plan_kept booster missing or of the wrong width")
            if not self.calibrator.get("slope", 0) > 0:
                raise ValueError(
                    f"plan_kept calibrator slope must be positive; got {self.calibrator}"
                )
        base = np.full((1, len(FEATURE_NAMES)), np.nan)
        amounts = np.array([10.0, 50.0, 100.0, 250.0, 1000.0])
        X = plan_matrix(np.repeat(base, len(amounts), 0), 20_000, amounts, np.full(5, 500.0))
        p = self.predict(X)
        if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            raise ValueError(f"plan_kept returns invalid probabilities {p}")
        if np.any(np.diff(p) > 1e-9):
            raise ValueError(f"plan_kept is not monotone in the monthly amount: {p}")

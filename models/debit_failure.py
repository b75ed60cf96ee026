"""The debit-failure model: P(a SEPA direct debit fails for lack of funds).

A bundle component (``debit_failure/`` in the bundle, see :mod:`models.components`).
Rows are :func:`features.income_timing.debit_rows`: days since / until the customer's
expected pay, the amount relative to income, the collection day of month and the
customer's debit history. A LightGBM booster (monotone: more days since pay, a larger
amount relative to income or a worse history never lower the risk) with Platt scaling
on its log-odds.

When training data are too thin the trainer stores a **prior** model instead: it
answers the base rate for every day, so no day looks better than another and the
debit-date suggestion keeps the current day (``informative`` is False).

Files: ``debit_failure.json`` (kind, calibrator, prior, feature names, metadata) and,
for ``kind == "lightgbm"``, ``booster.txt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np

from features.income_timing import FEATURE_NAMES
from models.calibration import apply_platt

FORMAT: Final = 1
KINDS: Final = ("lightgbm", "prior")


@dataclass
class DebitFailureModel:
    """Calibrated P(debit fails) for feature rows in ``feature_names`` order."""

    kind: str
    prior: float  # base failure rate of the training rows
    calibrator: dict[str, float] = field(default_factory=lambda: {"slope": 1.0, "intercept": 0.0})
    booster: lgb.Booster | None = None
    feature_names: tuple[str, ...] = FEATURE_NAMES
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def informative(self) -> bool:
        """False for the prior model: it cannot tell one day from another."""
        return self.kind == "lightgbm" and self.booster is not None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"feature matrix must be (n, {len(self.feature_names)}); got {X.shape}"
            )
        if not self.informative:
            return np.full(X.shape[0], self.prior)
        assert self.booster is not None
        threads = 1 if X.shape[0] < 4096 else 2
        raw = np.asarray(self.booster.predict(X, num_threads=threads))
        return apply_platt(raw, self.calibrator, eps=1e-9)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.booster is not None:
            self.booster.save_model(str(directory / "booster.txt"))
        doc = {
            "format": FORMAT,
            "kind": self.kind,
            "prior": self.prior,
            "calibrator": {"method": "platt_logit", **self.calibrator},
            "feature_names": list(self.feature_names),
            "metadata": self.metadata,
        }
        (directory / "debit_failure.json").write_text(
            json.dumps(doc, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> DebitFailureModel:
        directory = Path(directory)
        doc = json.loads((directory / "debit_failure.json").read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown debit_failure format {doc.get('format')!r}")
        booster = None
        if doc["kind"] == "lightgbm":
            booster = lgb.Booster(model_file=str(directory / "booster.txt"))
        cal = doc["calibrator"]
        return cls(
            kind=doc["kind"],
            prior=float(doc["prior"]),
            calibrator={"slope": float(cal["slope"]), "intercept": float(cal["intercept"])},
            booster=booster,
            feature_names=tuple(doc["feature_names"]),
            metadata=doc.get("metadata", {}),
        )

    def self_check(self) -> None:
        """Raise when the model would answer wrongly: unknown kind, bad features, bad output."""
        if self.kind not in KINDS:
            raise ValueError(f"debit_failure kind must be one of {KINDS}; got {self.kind!r}")
        if tuple(self.feature_names) != tuple(FEATURE_NAMES):
            raise ValueError(
                f"debit_failure features {list(self.feature_names)} differ from this code's {list(FEATURE_NAMES)}"
            )
        if not 0.0 <= self.prior <= 1.0:
            raise ValueError(f"prior must be in [0, 1]; got {self.prior}")
        if self.informative and not self.calibrator.get("slope", 0) > 0:
            raise ValueError(f"calibrator slope must be positive; got {self.calibrator}")
        if self.booster is not None and self.booster.num_feature() != len(self.feature_names):
            raise ValueError("booster feature count differs from feature_names")
        p = self.predict_proba(np.full((2, len(self.feature_names)), np.nan))
        if not np.all(np.isfinite(p)) or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"debit_failure returns an invalid probability {p}")

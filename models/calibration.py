"""Platt scaling on log-odds: the one calibration map used by every model in a bundle.

Fitting lives in training (``training.train.fit_platt``); applying it lives here, so the
bundle, its components and the evaluation all map raw scores the same way. The map is
strictly monotone (slope > 0), so ranking metrics are those of the raw model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def apply_platt(raw: np.ndarray, calibrator: Mapping[str, float], eps: float = 1e-12) -> np.ndarray:
    """``sigmoid(slope * logit(raw) + intercept)``; ``raw`` is clipped to ``[eps, 1 - eps]``."""
    p = np.clip(np.asarray(raw, dtype=np.float64), eps, 1 - eps)
    z = calibrator["slope"] * np.log(p / (1 - p)) + calibrator["intercept"]
    return 1.0 / (1.0 + np.exp(-z))

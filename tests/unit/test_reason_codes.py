"""Batch reason codes (vectorised) rank exactly as the per-customer reasons do."""

from __future__ import annotations

import numpy as np

from features.build import FEATURE_NAMES
from models.reasons import top_reason_codes, top_reasons


def test_vectorised_codes_equal_the_per_row_ranking():
    rng = np.random.default_rng(0)
    contributions = rng.normal(0, 0.3, (500, len(FEATURE_NAMES)))
    contributions[::7] = -np.abs(contributions[::7])  # nothing raises the risk: no codes
    got = top_reason_codes(contributions, FEATURE_NAMES, 3)
    zeros = [0.0] * len(FEATURE_NAMES)
    for i, row in enumerate(contributions):
        expected = [r.code.value for r in top_reasons(row.tolist(), zeros, FEATURE_NAMES, 3)]
        assert got[i].tolist() == expected + [""] * (3 - len(expected))
    assert (got[::7] == "").all()

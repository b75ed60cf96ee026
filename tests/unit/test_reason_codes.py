"""Reason codes: the batch (vectorised) codes rank exactly as the per-customer reasons do,
and no code is shown whose text the customer's own values contradict."""

from __future__ import annotations

import numpy as np

from features.build import FEATURE_INDEX, FEATURE_NAMES
from models.reasons import REASON_EVIDENCE, ReasonCode, top_reason_codes, top_reasons


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Feature values that pass some evidence tests and fail others, NaN among them."""
    values = rng.choice([0.0, 0.05, 0.5, 3.0, 50.0, 400.0, np.nan], size=(n, len(FEATURE_NAMES)))
    return values


def test_vectorised_codes_equal_the_per_row_ranking():
    rng = np.random.default_rng(0)
    contributions = rng.normal(0, 0.3, (500, len(FEATURE_NAMES)))
    contributions[::7] = -np.abs(contributions[::7])  # nothing raises the risk: no codes
    values = _values(rng, 500)
    got = top_reason_codes(contributions, values, FEATURE_NAMES, 3)
    for i, row in enumerate(contributions):
        expected = [
            r.code.value for r in top_reasons(row.tolist(), values[i].tolist(), FEATURE_NAMES, 3)
        ]
        assert got[i].tolist() == expected + [""] * (3 - len(expected))
    assert (got[::7] == "").all()


def _one(feature: str, value: float, contribution: float = 2.0) -> tuple[list, list]:
    contributions = [0.0] * len(FEATURE_NAMES)
    values = [float("nan")] * len(FEATURE_NAMES)
    contributions[FEATURE_INDEX[feature]] = contribution
    values[FEATURE_INDEX[feature]] = value
    return contributions, values


def test_failed_debits_are_named_only_when_a_debit_failed():
    # the model gives risk to "no direct debits at all" (rate unknown): not a failed debit
    contributions, values = _one("debit_failure_rate_365d", float("nan"))
    values[FEATURE_INDEX["failed_debits_365d"]] = 0.0
    values[FEATURE_INDEX["reversed_debits_365d"]] = 0.0
    assert top_reasons(contributions, values, FEATURE_NAMES, 3) == []
    values[FEATURE_INDEX["failed_debits_365d"]] = 2.0
    (reason,) = top_reasons(contributions, values, FEATURE_NAMES, 3)
    assert reason.code is ReasonCode.FAILED_DEBITS


def test_a_low_balance_is_named_only_with_balance_data_that_shows_it():
    contributions, values = _one("has_balance_data", 0.0)  # no open-banking data shared
    assert top_reasons(contributions, values, FEATURE_NAMES, 3) == []
    values[FEATURE_INDEX["balance_min_90d_eur"]] = 1_485.0  # a healthy balance
    values[FEATURE_INDEX["overdrawn_share_90d"]] = 0.0
    assert top_reasons(contributions, values, FEATURE_NAMES, 3) == []
    values[FEATURE_INDEX["overdrawn_share_90d"]] = 0.2  # overdrawn on some days
    (reason,) = top_reasons(contributions, values, FEATURE_NAMES, 3)
    assert reason.code is ReasonCode.LOW_BALANCE


def test_an_unevidenced_code_gives_way_to_the_next():
    contributions, values = _one("debit_failure_rate_365d", float("nan"), contribution=3.0)
    contributions[FEATURE_INDEX["late_invoices_365d"]] = 1.0
    values[FEATURE_INDEX["late_invoices_365d"]] = 4.0
    (reason,) = top_reasons(contributions, values, FEATURE_NAMES, 1)
    assert reason.code is ReasonCode.LATE_PAYMENTS


def test_every_evidence_test_names_a_feature_of_its_own_code():
    from models.reasons import FEATURE_REASONS

    for code, tests in REASON_EVIDENCE.items():
        for feature, op, _ in tests:
            assert feature in FEATURE_NAMES, feature
            assert op in (">", "<")
            assert FEATURE_REASONS[feature] is code, feature

"""The purged out-of-time split: which label dates are enough, and a clear refusal when
they are not (closely spaced dates used to crash with an IndexError)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.events import to_day
from training.dataset import Snapshots, minimum_monthly_dates, out_of_time_split


def _snaps(dates: pd.DatetimeIndex, source: str = "events") -> Snapshots:
    n = len(dates)
    return Snapshots(
        X=np.zeros((n, 1)),
        y=np.zeros(n),
        customer=np.zeros(n, np.int64),
        as_of=np.array([to_day(d.date()) for d in dates], np.int64),
        feature_names=("f",),
        source=source,
    )


def test_ten_monthly_dates_are_the_minimum_at_a_90_day_horizon() -> None:
    assert minimum_monthly_dates(90) == 10
    split = out_of_time_split(_snaps(pd.date_range("2025-01-01", periods=10, freq="MS")), 90)
    assert split.dates == {
        "train": ["2025-01-01"],
        "calibration": ["2025-04-01", "2025-05-01"],
        "validation": ["2025-08-01", "2025-09-01", "2025-10-01"],
    }
    for n in (6, 9):
        with pytest.raises(ValueError, match="at least 10 are needed") as refused:
            out_of_time_split(_snaps(pd.date_range("2025-01-01", periods=n, freq="MS")), 90)
        assert f"{n} date(s): 2025-01-01, 2025-02-01" in str(refused.value)


def test_closely_spaced_external_label_dates_are_refused_with_the_rule() -> None:
    weekly = pd.date_range("2026-03-02", periods=12, freq="7D")
    with pytest.raises(ValueError) as refused:
        out_of_time_split(_snaps(weekly, source="external labels"), 90)
    message = str(refused.value)
    assert "90-day horizon: 12 date(s): 2026-03-02" in message
    assert "training dates ≤ first calibration date − 90 days ≤ first validation date − 180" in (
        message
    )
    assert "Validation 2026-05-04, 2026-05-11, 2026-05-18" in message
    assert "on or before 2026-02-03 (first validation date − 90 days), found none" in message
    assert "--labels" in message and "monthly label dates need at least 10" in message
    assert "simulate" not in message  # advice for the source at hand


def test_too_few_simulated_dates_advise_a_longer_history() -> None:
    with pytest.raises(ValueError, match="ingest \\(or simulate\\) a longer history"):
        out_of_time_split(_snaps(pd.date_range("2025-01-01", periods=3, freq="MS")), 90)

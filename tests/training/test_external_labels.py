"""External labels (``tijdig train --labels``) are checked row by row, never reshaped:
a label whose date is missing, not a calendar day or given twice is refused with its
rows, not dropped, shifted or kept twice."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.events import from_day
from training.dataset import ExternalLabelsRejected, snapshots_from_external_labels


@pytest.fixture
def ids(population_events) -> list[str]:
    return population_events.customer_ids[:5].tolist()


def _labels(ids: list[str], as_of: object, label: object = (0, 1, 0, 1, 0)) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "as_of": as_of, "label": list(label)})


def _days(snaps) -> set[str]:
    return {from_day(int(d)).isoformat() for d in snaps.as_of}


def test_a_missing_as_of_is_refused_with_its_rows_not_dropped(population_events, ids) -> None:
    labels = _labels(ids, ["2025-06-01", None, "", "2025-06-01", np.nan])
    with pytest.raises(ExternalLabelsRejected) as rejected:
        snapshots_from_external_labels(population_events, labels)
    message = str(rejected.value)
    assert "as_of is missing in rows 1, 4" in message
    assert "not a date written YYYY-MM-DD" in message and "row 2 (value '')" in message
    assert isinstance(rejected.value, ValueError)  # what `tijdig train` reports


def test_a_customer_labelled_twice_at_one_date_is_refused(population_events, ids) -> None:
    labels = _labels([*ids, ids[0]], ["2025-06-01"] * 6, (0, 1, 0, 0, 1, 1))
    with pytest.raises(ExternalLabelsRejected, match="given more than once") as rejected:
        snapshots_from_external_labels(population_events, labels)
    assert f"{ids[0]!r} at 2025-06-01: rows [0, 5], labels [0, 1] (conflicting labels)" in str(
        rejected.value
    )
    # the same date written differently is the same pair
    same = _labels([ids[0], ids[0]], ["2025-06-01", "2025-06-01T00:00Z"], (1, 1))
    with pytest.raises(ExternalLabelsRejected, match="rows \\[0, 1\\], labels \\[1, 1\\]"):
        snapshots_from_external_labels(population_events, same)


def test_a_time_zone_aware_as_of_is_refused_not_moved_to_the_day_before(
    population_events, ids
) -> None:
    """Amsterdam midnight is 22:00 UTC the day before: refused, never read as that day."""
    local = pd.Series(pd.to_datetime(["2025-06-01"] * 5).tz_localize("Europe/Amsterdam"))
    for as_of in (local, local.dt.tz_convert("UTC"), ["2025-06-01T00:00+02:00"] * 5):
        with pytest.raises(ExternalLabelsRejected, match=r"calendar day.*rows 0, 1, 2, 3, 4"):
            snapshots_from_external_labels(population_events, _labels(ids, as_of))
    # midnight UTC is a calendar day, however it is written
    utc = pd.Series(pd.to_datetime(["2025-06-01"] * 5).tz_localize("UTC"))
    for as_of in (utc, ["2025-06-01T00:00Z"] * 5, [date(2025, 6, 1)] * 5, ["2025-06-01"] * 5):
        snaps = snapshots_from_external_labels(population_events, _labels(ids, as_of))
        assert _days(snaps) == {"2025-06-01"} and len(snaps) == 5
        assert snaps.source == "external labels"


def test_text_dates_are_read_as_ingest_reads_them(population_events, ids) -> None:
    as_of = ["2025-06-01T10:00", "01/06/2025", "20250601", "2025-02-30", "2025-06-01"]
    with pytest.raises(ExternalLabelsRejected) as rejected:
        snapshots_from_external_labels(population_events, _labels(ids, as_of))
    message = str(rejected.value)
    assert "rows 1, 2, 3 (values '01/06/2025', '20250601', '2025-02-30')" in message
    assert "time of day" in message and "row 0 (value '2025-06-01T10:00')" in message
    with pytest.raises(ExternalLabelsRejected, match=r"not a date.*rows 0, 1, 2, 3, 4"):
        snapshots_from_external_labels(population_events, _labels(ids, [20250601] * 5))


def test_labels_other_than_0_or_1_are_refused_with_their_values(population_events, ids) -> None:
    labels = _labels(ids, ["2025-06-01"] * 5, (0, 2, np.nan, "yes", 1))
    with pytest.raises(ExternalLabelsRejected, match="label must be 0 or 1 in rows 1, 2, 3"):
        snapshots_from_external_labels(population_events, labels)

"""TARGET2 business days (DOMAIN.md §7): weekends and ECB closing days, month ends."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from features.events import day_in_month, day_of_month, from_day, month_of, to_day
from models.calendar import BusinessCalendar, collection_day, target2


def _d(value: str) -> int:
    return to_day(value)


@pytest.mark.parametrize(
    ("day", "business"),
    [
        ("2026-01-01", False),  # New Year
        ("2026-04-03", False),  # Good Friday
        ("2026-04-06", False),  # Easter Monday
        ("2026-05-01", False),  # Labour Day
        ("2026-12-25", False),
        ("2026-12-26", False),  # also a Saturday
        ("2026-04-27", True),  # King's Day: a national holiday, not a TARGET2 closing day
        ("2026-05-14", True),  # Ascension
        ("2026-05-25", True),  # Whit Monday
        ("2026-03-07", False),  # Saturday
        ("2026-03-08", False),  # Sunday
        ("2026-03-09", True),
    ],
)
def test_target2_closing_days_and_weekends(day, business):
    assert bool(target2().is_business_day(_d(day))) is business


@pytest.mark.parametrize(
    ("day", "following", "preceding"),
    [
        ("2026-03-07", "2026-03-09", "2026-03-06"),  # Saturday
        ("2026-04-03", "2026-04-07", "2026-04-02"),  # Easter: Fri..Mon closed
        ("2026-12-25", "2026-12-28", "2026-12-24"),
        ("2026-03-10", "2026-03-10", "2026-03-10"),  # a business day stays
    ],
)
def test_following_and_preceding_business_day(day, following, preceding):
    cal = target2()
    assert from_day(int(cal.next_business_day(_d(day)))) == date.fromisoformat(following)
    assert from_day(int(cal.previous_business_day(_d(day)))) == date.fromisoformat(preceding)


def test_add_business_days_skips_closing_days():
    cal = target2()
    # Thursday 2 April 2026 + 2 business days: Good Friday and Easter Monday are skipped
    assert from_day(int(cal.add_business_days(_d("2026-04-02"), 2))) == date(2026, 4, 8)
    assert from_day(int(cal.add_business_days(_d("2026-04-04"), 0))) == date(2026, 4, 7)
    with pytest.raises(ValueError, match="k must be >= 0"):
        cal.add_business_days(_d("2026-04-02"), -1)


def test_vectorised_over_arrays():
    cal = target2()
    days = np.array([_d("2026-03-07"), _d("2026-03-08"), _d("2026-03-09")])
    np.testing.assert_array_equal(cal.next_business_day(days), [_d("2026-03-09")] * 3)


@pytest.mark.parametrize(
    ("year", "month", "dom", "expected"),
    [
        (2026, 2, 31, "2026-02-28"),  # the 31st in February is its last day
        (2028, 2, 31, "2028-02-29"),  # leap year
        (2026, 4, 31, "2026-04-30"),
        (2026, 1, 15, "2026-01-15"),
    ],
)
def test_day_in_month_clips_to_month_end(year, month, dom, expected):
    m = (year - 1970) * 12 + month - 1
    assert from_day(int(day_in_month(m, dom))) == date.fromisoformat(expected)


def test_collection_day_moves_a_weekend_month_end_to_the_next_business_day():
    feb_2026 = int(month_of(_d("2026-02-10")))
    # 31st -> 28 February 2026 (a Saturday) -> Monday 2 March
    assert from_day(int(collection_day(feb_2026, 31))) == date(2026, 3, 2)
    assert int(day_of_month(_d("2026-03-02"))) == 2


def test_outside_the_table_is_an_error():
    small = BusinessCalendar(2025, 2026)
    with pytest.raises(ValueError, match="outside the business calendar"):
        small.next_business_day(_d("2030-01-01"))
    with pytest.raises(ValueError, match="last_year"):
        BusinessCalendar(2026, 2025)

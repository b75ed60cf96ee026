"""SEPA business days: TARGET2 closing days and weekends (DOMAIN.md §7).

A SEPA direct debit settles only on a TARGET2 business day. The closing days come from
the maintained ``holidays`` package (``holidays.financial_holidays("ECB")``: 1 Jan, Good
Friday, Easter Monday, 1 May, 25 and 26 Dec), never from a hand-kept list; Saturdays and
Sundays are closed too. Dutch national holidays (Ascension, Whit Monday, King's Day) are
*not* closing days.

Days are integer **days since 1970-01-01**, like :mod:`features.events`, so every
function here works on whole numpy arrays at once. The table covers
:data:`FIRST_YEAR`..:data:`LAST_YEAR` and is built once, on first use (no work at
import time).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np

from features.events import day_in_month

FIRST_YEAR: Final = 1990
LAST_YEAR: Final = 2080

_EPOCH = np.datetime64("1970-01-01", "D")


class BusinessCalendar:
    """TARGET2 business days over a fixed span of years, as vectorised look-ups."""

    def __init__(self, first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR) -> None:
        import holidays  # maintained TARGET2 calendar (ECB)

        if last_year < first_year:
            raise ValueError(f"last_year must be >= first_year; got {first_year}..{last_year}")
        self.lo = int((np.datetime64(f"{first_year}-01-01", "D") - _EPOCH).astype(np.int64))
        self.hi = int((np.datetime64(f"{last_year + 1}-01-01", "D") - _EPOCH).astype(np.int64))
        days = np.arange(self.lo, self.hi, dtype=np.int64)
        closing = np.array(
            sorted(holidays.financial_holidays("ECB", years=range(first_year, last_year + 1))),
            dtype="datetime64[D]",
        )
        self.closing_days = (closing - _EPOCH).astype(np.int64)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        self.business = (weekday < 5) & ~np.isin(days, self.closing_days)
        idx = np.arange(len(days))
        nxt = np.where(self.business, idx, len(days) - 1)
        self._next = np.minimum.accumulate(nxt[::-1])[::-1] + self.lo
        prv = np.where(self.business, idx, 0)
        self._prev = np.maximum.accumulate(prv) + self.lo
        self._count = np.cumsum(self.business)  # business days up to and including the day
        self._index = np.flatnonzero(self.business) + self.lo

    def _pos(self, days: np.ndarray | int) -> np.ndarray:
        d = np.asarray(days, dtype=np.int64)
        if d.size and (d.min() < self.lo or d.max() >= self.hi):
            raise ValueError(
                f"day outside the business calendar {FIRST_YEAR}..{LAST_YEAR}; got {d.min()}..{d.max()}"
            )
        return d - self.lo

    def is_business_day(self, days: np.ndarray | int) -> np.ndarray:
        return self.business[self._pos(days)]

    def next_business_day(self, days: np.ndarray | int) -> np.ndarray:
        """The first business day on or after each day (SEPA's "following" convention)."""
        return self._next[self._pos(days)]

    def previous_business_day(self, days: np.ndarray | int) -> np.ndarray:
        """The last business day on or before each day (employers pay early, not late)."""
        return self._prev[self._pos(days)]

    def add_business_days(self, days: np.ndarray | int, k: int) -> np.ndarray:
        """The k-th business day after each day (k >= 0; k = 0 is the next business day)."""
        if k < 0:
            raise ValueError(f"k must be >= 0; got {k}")
        pos = self._pos(days)
        before = self._count[pos] - self.business[pos]  # business days strictly before
        return self._index[np.minimum(before + k, len(self._index) - 1)]


@lru_cache(maxsize=1)
def target2() -> BusinessCalendar:
    """The shared TARGET2 calendar (built once per process, ~0.2 s)."""
    return BusinessCalendar()


# ----------------------------------------------------------------------------- month helpers
# (month_of, day_of_month and day_in_month: features.events, with the other day arithmetic)


def collection_day(months: np.ndarray | int, dom: np.ndarray | int) -> np.ndarray:
    """When a debit on day-of-month ``dom`` is collected in each month: that day, clipped
    to the month's end, moved to the next TARGET2 business day."""
    return target2().next_business_day(day_in_month(months, dom))

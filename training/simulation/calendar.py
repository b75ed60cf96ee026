"""Day indices, TARGET2 business days and monthly date tables for the simulator.

Days are integers counted from the simulation start (day 0 = ``start``). The calendar
covers a margin before and after the period so that "the previous business day" of a
date in the first month and "five business days later" near the end are defined.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import numpy as np

MARGIN = 70  # days of calendar before the start and after the end


class Calendar:
    def __init__(self, start: date, end: date) -> None:
        self.start = start
        self.end = end
        self.n_days = (end - start).days
        self.lo = -MARGIN
        self.hi = self.n_days + MARGIN
        first = start - timedelta(days=MARGIN)
        span = self.hi - self.lo
        self.dates = np.datetime64(first, "D") + np.arange(span)
        years = range(first.year, (end + timedelta(days=MARGIN)).year + 1)
        # TARGET2 closing days come from the holidays package (ECB calendar), plus weekends.
        closing = {np.datetime64(d, "D") for d in holidays.financial_holidays("ECB", years=years)}
        weekday = (self.dates.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday -> 0 = Monday
        self.weekday = weekday
        self.business = (weekday < 5) & ~np.isin(
            self.dates, np.array(sorted(closing), dtype="datetime64[D]")
        )
        # next_bd[i]: first business day >= i; prev_bd[i]: last business day <= i (as day index)
        idx = np.arange(span)
        nxt = np.where(self.business, idx, span)
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]
        prv = np.where(self.business, idx, -1)
        prv = np.maximum.accumulate(prv)
        self._next = nxt + self.lo
        self._prev = prv + self.lo
        self._bd_count = np.cumsum(self.business)  # business days up to and including i
        self._bd_index = np.flatnonzero(self.business)

        ymd = self.dates.astype("datetime64[M]")
        self.month_of = (ymd - np.datetime64(start, "M")).astype(
            np.int64
        )  # month index per calendar day
        self.dom = (self.dates - ymd.astype("datetime64[D]")).astype(np.int64) + 1
        self.month_number = ymd.astype(np.int64) % 12 + 1
        # months covered: from the month of `first` to the month of the last calendar day
        self.month_lo = int(self.month_of[0])
        self.month_hi = int(self.month_of[-1])

    # --- conversions ------------------------------------------------------------------
    def day_of(self, d: date) -> int:
        return (d - self.start).days

    def date_of(self, day: int) -> date:
        return self.start + timedelta(days=int(day))

    def to_datetime64(self, days: np.ndarray) -> np.ndarray:
        return (np.datetime64(self.start, "D") + np.asarray(days, dtype=np.int64)).astype(
            "datetime64[ns]"
        )

    def _clip(self, days: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(days, dtype=np.int64), self.lo, self.hi - 1) - self.lo

    # --- business days ----------------------------------------------------------------
    def next_business(self, days: np.ndarray) -> np.ndarray:
        return self._next[self._clip(days)]

    def prev_business(self, days: np.ndarray) -> np.ndarray:
        return self._prev[self._clip(days)]

    def add_business_days(self, days: np.ndarray, k: int) -> np.ndarray:
        """The k-th business day after ``days`` (k >= 1)."""
        count = self._bd_count[self._clip(days)]  # business days up to and including the day
        pos = np.minimum(count - 1 + k, len(self._bd_index) - 1)
        return self._bd_index[pos] + self.lo

    def is_business(self, day: int) -> bool:
        return bool(self.business[day - self.lo])

    # --- monthly dates ----------------------------------------------------------------
    def months(self) -> np.ndarray:
        """Month indices (relative to the start month) covered by the calendar."""
        return np.arange(self.month_lo, self.month_hi + 1)

    def day_in_month(self, month: int | np.ndarray, dom: np.ndarray) -> np.ndarray:
        """Day index of day-of-month ``dom`` (clipped to the month's length) in ``month``."""
        month_start = (np.datetime64(self.start, "M") + np.asarray(month)).astype("datetime64[D]")
        next_start = (np.datetime64(self.start, "M") + np.asarray(month) + 1).astype(
            "datetime64[D]"
        )
        length = (next_start - month_start).astype(np.int64)
        dom = np.minimum(np.asarray(dom, dtype=np.int64), length)
        return (month_start - np.datetime64(self.start, "D")).astype(np.int64) + dom - 1

    def last_day_of_month(self, month: int | np.ndarray) -> np.ndarray:
        return self.day_in_month(month, np.asarray(31))

    def add_months(self, days: np.ndarray, k: np.ndarray | int) -> np.ndarray:
        """Same day of month (capped at 28) ``k`` months after ``days``."""
        days = np.asarray(days, dtype=np.int64)
        dom = np.minimum(self.dom[self._clip(days)], 28)
        month = self.month_of[self._clip(days)] + np.asarray(k)
        return self.day_in_month(month, dom)

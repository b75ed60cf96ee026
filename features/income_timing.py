"""Income timing: when each customer's income arrives, detected point in time.

:func:`detect_income_timing` looks at a batch of customers' income receipts dated
**before** ``as_of`` (an event dated ``d`` is known from ``d + 1``) and fits five
patterns (the Dutch income calendar, DOMAIN.md §7):

====================  ======================================================================
``monthly_day``       a fixed day of the month (salary on the 25th, benefits on the 21st);
                      moved to the previous business day when it falls on a closing day
                      (or, for allowances and some benefits, to the next one)
``last_working_day``  the last business day of the month
``four_weekly``       every 28 days (13 pay periods a year): drifts through the month
``weekly``            every 7 days
``irregular``         receipts that fit none of the above (flex work, several sources)
====================  ======================================================================

Each candidate is scored by the share of receipts it explains exactly, over the number
of pay dates it predicts between the first and the last receipt, so a weekly pattern
does not "explain" four-weekly pay. The confidence is that share shrunk for few receipts.

Customers **without** income receipts get a monthly pay day inferred from their direct
debits (:func:`infer_from_debits`): insufficient-funds failures (AM04/MS03) say "not long
after pay", successes say "not long before the next". Without both kinds there is nothing
to infer and the pattern is ``unknown``.

:func:`debit_rows` turns (customer, collection day, amount) into the debit-failure
model's feature rows: days since / until the expected pay, amount relative to income
and the customer's debit history — all as of ``as_of``.

Days are integer days since 1970 (:mod:`features.events`). The business-day calendar is
passed in (``models.calendar.target2()`` in production) so that this package imports
nothing of ours; without one, weekends are the only closing days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from features.events import (
    RESULT_CODES,
    SOURCE_CODES,
    EventArrays,
    day_in_month,
    day_of_month,
    month_of,
)

PATTERNS: Final = (
    "monthly_day",
    "last_working_day",
    "four_weekly",
    "weekly",
    "irregular",
    "unknown",
)
MONTHLY_DAY, LAST_WORKING_DAY, FOUR_WEEKLY, WEEKLY, IRREGULAR, UNKNOWN = range(6)
#: where the timing came from
SOURCES: Final = ("none", "income_receipts", "debit_history")
SRC_NONE, SRC_RECEIPTS, SRC_DEBITS = range(3)

LOOKBACK_DAYS: Final = 400
MIN_PATTERN_SCORE: Final = 0.6  # share of predicted pay dates seen; below: irregular
MAX_SHIFT_DAYS: Final = 4  # a closing-day move of a pay date (Easter: Fri + weekend + Mon)
DEBIT_SUCCESS_HORIZON_DAYS: Final = 14  # debit inference: money is there this long after pay

FEATURE_NAMES: Final = (
    "days_since_pay",
    "days_to_next_pay",
    "pay_cycle_position",
    "amount_to_income",
    "collection_day_of_month",
    "debit_attempts_365d",
    "debit_failure_rate_365d",
    "debit_failures_90d",
    "timing_confidence",
    "timing_pattern",
    "timing_source",
)
#: +1: more of it never lowers P(debit fails)
MONOTONE: Final = {
    "days_since_pay": 1,
    "days_to_next_pay": -1,
    "pay_cycle_position": 1,
    "amount_to_income": 1,
    "debit_failure_rate_365d": 1,
}


class DayCalendar(Protocol):
    def previous_business_day(self, days: Any) -> np.ndarray: ...

    def next_business_day(self, days: Any) -> np.ndarray: ...


class WeekendCalendar:
    """Fallback: Saturdays and Sundays closed, no holidays."""

    @staticmethod
    def previous_business_day(days: Any) -> np.ndarray:
        d = np.asarray(days, dtype=np.int64)
        wd = (d + 3) % 7
        return d - np.where(wd == 5, 1, np.where(wd == 6, 2, 0))

    @staticmethod
    def next_business_day(days: Any) -> np.ndarray:
        d = np.asarray(days, dtype=np.int64)
        wd = (d + 3) % 7
        return d + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


@dataclass(frozen=True)
class IncomeTiming:
    """Detected income timing per customer of a batch (arrays of length ``n``).

    ``pay_day_of_month``: the nominal day for ``monthly_day`` (1..31, before any move),
    31 for ``last_working_day``, NaN otherwise. ``period_days``/``phase``: for
    ``four_weekly``/``weekly``, nominal pay days are the days ``d`` with
    ``d % period_days == phase``. ``shift``: -1 when a pay date on a closing day moves
    to the previous business day, +1 to the next.
    """

    as_of: int
    pattern: np.ndarray
    pay_day_of_month: np.ndarray
    period_days: np.ndarray
    phase: np.ndarray
    shift: np.ndarray
    n_receipts: np.ndarray
    confidence: np.ndarray
    source: np.ndarray
    monthly_income_cents: np.ndarray

    @property
    def n(self) -> int:
        return len(self.pattern)

    def pattern_names(self) -> np.ndarray:
        return np.asarray(PATTERNS, dtype=object)[self.pattern]

    def take(self, idx: np.ndarray) -> IncomeTiming:
        return IncomeTiming(
            self.as_of,
            *(
                np.asarray(getattr(self, f))[idx]
                for f in (
                    "pattern",
                    "pay_day_of_month",
                    "period_days",
                    "phase",
                    "shift",
                    "n_receipts",
                    "confidence",
                    "source",
                    "monthly_income_cents",
                )
            ),
        )


# ----------------------------------------------------------------------------- detection


def detect_income_timing(
    events: EventArrays,
    as_of: int,
    calendar: DayCalendar | None = None,
    *,
    lookback_days: int = LOOKBACK_DAYS,
    infer_from_debit_history: bool = True,
) -> IncomeTiming:
    """Each customer's income pattern from receipts dated in ``[as_of - lookback, as_of)``."""
    cal = calendar or WeekendCalendar()
    n = events.n
    inc = events.income
    window = (inc["day"] < as_of) & (inc["day"] >= as_of - lookback_days) & (inc["cust"] >= 0)
    allowance = inc["source"] == SOURCE_CODES["allowance"]
    # the main income sets the pattern; allowances (toeslagen, the 20th) only when alone
    main_count = np.bincount(inc["cust"][window & ~allowance], minlength=n)
    use = window & (~allowance | (main_count[np.maximum(inc["cust"], 0)] == 0))
    cust = inc["cust"][use]
    day = inc["day"][use]
    amount = inc["amount_cents"][use].astype(np.float64)
    order = np.lexsort((day, cust))
    cust, day, amount = cust[order], day[order], amount[order]
    # one receipt per customer and day (two transfers on one day are one pay)
    keep = (
        np.r_[True, (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])]
        if len(cust)
        else np.zeros(0, bool)
    )
    cust, day = cust[keep], day[keep]

    pattern = np.full(n, UNKNOWN, np.int64)
    pay_dom = np.full(n, np.nan)
    period = np.zeros(n, np.int64)
    phase = np.zeros(n, np.int64)
    shift = np.full(n, -1, np.int64)
    count = np.bincount(cust, minlength=n)
    confidence = np.zeros(n)
    source = np.full(n, SRC_NONE, np.int64)

    all_window = window & (inc["cust"] >= 0)
    income_sum = np.bincount(
        inc["cust"][all_window],
        weights=inc["amount_cents"][all_window].astype(np.float64),
        minlength=n,
    )
    first_all = np.full(n, as_of, np.int64)
    np.minimum.at(first_all, inc["cust"][all_window], inc["day"][all_window])
    span_months = np.clip((as_of - first_all) / 30.44, 1.0, lookback_days / 30.44)
    monthly_income = np.where(income_sum > 0, income_sum / span_months, np.nan)
    del amount

    if len(cust):
        first = np.full(n, np.iinfo(np.int64).max)
        last = np.full(n, np.iinfo(np.int64).min)
        np.minimum.at(first, cust, day)
        np.maximum.at(last, cust, day)
        span = np.where(count > 0, last - first, 0)
        months_spanned = np.where(
            count > 0,
            month_of(np.where(count > 0, last, 0)) - month_of(np.where(count > 0, first, 0)) + 1,
            0,
        )
        denom_month = np.maximum(months_spanned, count).astype(np.float64)

        # monthly day D = 1..31, moved back (shift -1) or forward (+1) on closing days
        months = month_of(day)
        doms = np.arange(1, 32)
        nominal = day_in_month(months[:, None], doms[None, :])  # receipts x 31
        # a pay day early in a month can move back into the month before, and vice versa
        nominal_next = day_in_month(months[:, None] + 1, doms[None, :])
        nominal_prev = day_in_month(months[:, None] - 1, doms[None, :])
        back = (cal.previous_business_day(nominal) == day[:, None]) | (
            cal.previous_business_day(nominal_next) == day[:, None]
        )
        fwd = (cal.next_business_day(nominal) == day[:, None]) | (
            cal.next_business_day(nominal_prev) == day[:, None]
        )
        exact = nominal == day[:, None]
        s_back = _group_sum(cust, back, n) + 0.01 * _group_sum(cust, exact, n)
        s_fwd = _group_sum(cust, fwd, n) + 0.01 * _group_sum(cust, exact, n)
        best_back = np.argmax(s_back, axis=1)
        best_fwd = np.argmax(s_fwd, axis=1)
        sb = s_back[np.arange(n), best_back]
        sf = s_fwd[np.arange(n), best_fwd]
        use_fwd = sf > sb + 1e-9
        monthly_best = np.where(use_fwd, best_fwd, best_back) + 1
        monthly_score = np.floor(np.maximum(sb, sf)) / np.maximum(denom_month, 1)

        # last working day
        last_bd = cal.previous_business_day(day_in_month(months, np.full(len(day), 31)))
        lwd_score = _group_sum(cust, (last_bd == day)[:, None], n)[:, 0] / np.maximum(
            denom_month, 1
        )

        # periodic: nominal days d with d % P == phase, moved back on closing days
        periodic = {}
        for code, p in ((FOUR_WEEKLY, 28), (WEEKLY, 7)):
            phases = np.arange(p)
            delta = (phases[None, :] - day[:, None]) % p
            nom = day[:, None] + delta
            match = (delta <= MAX_SHIFT_DAYS) & (cal.previous_business_day(nom) == day[:, None])
            s = _group_sum(cust, match, n) + 0.01 * _group_sum(cust, delta == 0, n)
            best = np.argmax(s, axis=1)
            expected = np.maximum(span / p + 1, count).astype(np.float64)
            periodic[code] = (best, np.floor(s[np.arange(n), best]) / np.maximum(expected, 1))

        scores = np.stack(
            [monthly_score, lwd_score, periodic[FOUR_WEEKLY][1], periodic[WEEKLY][1]], axis=1
        )
        # last working day wins ties with a late monthly day (the 31st is the same rule)
        scores[:, LAST_WORKING_DAY] += 1e-6
        best_pattern = np.argmax(scores, axis=1)
        best_score = scores[np.arange(n), best_pattern]
        has = count >= 2
        ok = has & (best_score >= MIN_PATTERN_SCORE)
        pattern = np.where(ok, best_pattern, np.where(has, IRREGULAR, pattern))
        one = count == 1  # one receipt: a monthly day, with little confidence
        pattern = np.where(one, MONTHLY_DAY, pattern)
        is_m = pattern == MONTHLY_DAY
        pay_dom = np.where(
            is_m, monthly_best, np.where(pattern == LAST_WORKING_DAY, 31, np.nan)
        ).astype(np.float64)
        shift = np.where(is_m & use_fwd, 1, -1)
        for code, p in ((FOUR_WEEKLY, 28), (WEEKLY, 7)):
            sel = pattern == code
            period[sel] = p
            phase[sel] = periodic[code][0][sel]
        # shrink for few receipts: 3 receipts -> x0.75, 6 -> x0.86, 12 -> x0.92
        shrink = count / (count + 1.0)
        confidence = (
            np.where(pattern == IRREGULAR, 1 - best_score, np.minimum(best_score, 1.0)) * shrink
        )
        confidence = np.where(one, 0.25, confidence)
        source = np.where(count > 0, SRC_RECEIPTS, SRC_NONE)

    timing = IncomeTiming(
        as_of=int(as_of),
        pattern=pattern.astype(np.int64),
        pay_day_of_month=pay_dom,
        period_days=period,
        phase=phase,
        shift=shift.astype(np.int64),
        n_receipts=count.astype(np.int64),
        confidence=np.clip(confidence, 0, 1),
        source=source.astype(np.int64),
        monthly_income_cents=monthly_income,
    )
    if infer_from_debit_history:
        timing = infer_from_debits(events, timing, cal, lookback_days=lookback_days)
    return timing


def _group_sum(cust: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-customer column sums of a (rows x k) 0/1 matrix -> (n x k)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((n, values.shape[1]))
    np.add.at(out, cust, values)
    return out


def infer_from_debits(
    events: EventArrays,
    timing: IncomeTiming,
    calendar: DayCalendar | None = None,
    *,
    lookback_days: int = LOOKBACK_DAYS,
) -> IncomeTiming:
    """A monthly pay day for customers without receipts, from their debits' outcomes.

    For every candidate pay day ``p``, a debit ``o`` days after the last ``p`` is expected
    to succeed when ``o <= 14`` and fail otherwise; ``p`` is the candidate agreeing with
    most outcomes (ties: the one closest after the failures). Needs at least one
    insufficient-funds failure and one success; confidence is capped at 0.6.
    """
    deb = events.debits
    n = timing.n
    need = timing.source == SRC_NONE
    w = (
        (deb["day"] < timing.as_of)
        & (deb["day"] >= timing.as_of - lookback_days)
        & (deb["cust"] >= 0)
    )
    w &= need[np.maximum(deb["cust"], 0)]
    w &= deb["result"] != RESULT_CODES["reversed"]
    if not w.any():
        return timing
    cust, day = deb["cust"][w], deb["day"][w]
    fail = (deb["result"][w] == RESULT_CODES["failed"]) & deb["insufficient_funds"][w]
    ok = deb["result"][w] == RESULT_CODES["success"]
    n_fail = np.bincount(cust, weights=fail, minlength=n)
    n_ok = np.bincount(cust, weights=ok, minlength=n)
    eligible = need & (n_fail >= 1) & (n_ok >= 1)
    if not eligible.any():
        return timing
    doms = np.arange(1, 32)
    months = month_of(day)
    this = day_in_month(months[:, None], doms[None, :])
    prev = day_in_month(months[:, None] - 1, doms[None, :])
    last_pay = np.where(this <= day[:, None], this, prev)
    offset = day[:, None] - last_pay  # 0..30
    expect_ok = offset <= DEBIT_SUCCESS_HORIZON_DAYS
    agree = (expect_ok & ok[:, None]) | (~expect_ok & fail[:, None])
    s = _group_sum(cust, agree, n)
    fail_offset = (
        _group_sum(cust, np.where(fail[:, None], offset, 0), n) / np.maximum(n_fail, 1)[:, None]
    )
    s = s + 0.001 * fail_offset / 31
    best = np.argmax(s, axis=1)
    agreement = np.floor(s[np.arange(n), best]) / np.maximum(n_fail + n_ok, 1)
    evidence = np.minimum(n_fail, 3) / 3
    conf = np.minimum(0.6, agreement * evidence)
    e = eligible
    return IncomeTiming(
        as_of=timing.as_of,
        pattern=np.where(e, MONTHLY_DAY, timing.pattern),
        pay_day_of_month=np.where(e, best + 1.0, timing.pay_day_of_month),
        period_days=timing.period_days,
        phase=timing.phase,
        shift=np.where(e, -1, timing.shift),
        n_receipts=timing.n_receipts,
        confidence=np.where(e, conf, timing.confidence),
        source=np.where(e, SRC_DEBITS, timing.source),
        monthly_income_cents=timing.monthly_income_cents,
    )


# ----------------------------------------------------------------------------- pay dates


def expected_pay_days(
    timing: IncomeTiming, cust: np.ndarray, days: np.ndarray, calendar: DayCalendar | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(last expected pay on or before ``days``, next expected pay after ``days``) per row.

    Rows pair a customer (position in ``timing``) with a day. NaN where the pattern gives
    no dates (irregular, unknown).
    """
    cal = calendar or WeekendCalendar()
    cust = np.asarray(cust, dtype=np.int64)
    days = np.asarray(days, dtype=np.int64)
    k = len(days)
    last = np.full(k, np.nan)
    nxt = np.full(k, np.nan)
    pat = timing.pattern[cust]

    monthly = (pat == MONTHLY_DAY) | (pat == LAST_WORKING_DAY)
    if monthly.any():
        d = days[monthly]
        dom = np.nan_to_num(timing.pay_day_of_month[cust[monthly]], nan=31).astype(np.int64)
        sh = timing.shift[cust[monthly]]
        m = month_of(d)
        cands = []
        for dm in (-1, 0, 1, 2):
            nom = day_in_month(m + dm, dom)
            cands.append(
                np.where(sh > 0, cal.next_business_day(nom), cal.previous_business_day(nom))
            )
        c = np.stack(cands, axis=1)
        last[monthly] = np.where(c <= d[:, None], c, -np.inf).max(axis=1)
        nxt[monthly] = np.where(c > d[:, None], c, np.inf).min(axis=1)

    per = (pat == FOUR_WEEKLY) | (pat == WEEKLY)
    if per.any():
        d = days[per]
        p = timing.period_days[cust[per]]
        ph = timing.phase[cust[per]]
        base = d - ((d - ph) % p)
        c = np.stack([cal.previous_business_day(base + j * p) for j in (-1, 0, 1, 2)], axis=1)
        last[per] = np.where(c <= d[:, None], c, -np.inf).max(axis=1)
        nxt[per] = np.where(c > d[:, None], c, np.inf).min(axis=1)
    last[~np.isfinite(last)] = np.nan
    nxt[~np.isfinite(nxt)] = np.nan
    return last, nxt


# ----------------------------------------------------------------------------- model rows


@dataclass(frozen=True)
class DebitHistory:
    """A customer's direct-debit record as of a day (arrays of length ``n``)."""

    attempts_365d: np.ndarray
    failure_rate_365d: np.ndarray
    failures_90d: np.ndarray


def debit_history(events: EventArrays, as_of: int) -> DebitHistory:
    """Attempts and insufficient-funds failures dated before ``as_of``."""
    deb = events.debits
    n = events.n
    valid = (deb["cust"] >= 0) & (deb["day"] < as_of) & (deb["result"] != RESULT_CODES["reversed"])
    y365 = valid & (deb["day"] >= as_of - 365)
    y90 = valid & (deb["day"] >= as_of - 90)
    fail = (deb["result"] == RESULT_CODES["failed"]) & deb["insufficient_funds"]
    att = np.bincount(deb["cust"][y365], minlength=n).astype(np.float64)
    f365 = np.bincount(deb["cust"][y365 & fail], minlength=n).astype(np.float64)
    f90 = np.bincount(deb["cust"][y90 & fail], minlength=n).astype(np.float64)
    rate = np.where(att > 0, f365 / np.maximum(att, 1), np.nan)
    return DebitHistory(att, rate, f90)


def debit_rows(
    timing: IncomeTiming,
    history: DebitHistory,
    cust: np.ndarray,
    collection_days: np.ndarray,
    amount_cents: np.ndarray,
    calendar: DayCalendar | None = None,
) -> np.ndarray:
    """Feature rows (in :data:`FEATURE_NAMES` order) for debits of ``cust`` on ``collection_days``."""
    cust = np.asarray(cust, dtype=np.int64)
    days = np.asarray(collection_days, dtype=np.int64)
    last, nxt = expected_pay_days(timing, cust, days, calendar)
    since = days - last
    until = nxt - days
    income = timing.monthly_income_cents[cust]
    X = np.column_stack(
        [
            since,
            until,
            since / (since + until),
            np.where(income > 0, np.asarray(amount_cents, np.float64) / income, np.nan),
            day_of_month(days).astype(np.float64),
            history.attempts_365d[cust],
            history.failure_rate_365d[cust],
            history.failures_90d[cust],
            timing.confidence[cust],
            timing.pattern[cust].astype(np.float64),
            timing.source[cust].astype(np.float64),
        ]
    )
    return X.astype(np.float64)


def first_attempts(events: EventArrays, retry_window_days: int = 10) -> np.ndarray:
    """Mask of debit attempts that are not a retry of a failed attempt of the last 10 days."""
    deb = events.debits
    k = len(deb)
    if k == 0:
        return np.zeros(0, bool)
    order = np.lexsort((deb["day"], deb["cust"]))
    c, d = deb["cust"][order], deb["day"][order]
    failed = deb["result"][order] == RESULT_CODES["failed"]
    # the most recent failed attempt strictly before each row, per customer
    idx = np.where(failed, np.arange(k), -1)
    last_failed = np.maximum.accumulate(idx)
    prev_failed = np.r_[-1, last_failed[:-1]]
    same = (prev_failed >= 0) & (c[np.maximum(prev_failed, 0)] == c)
    retry = (
        same
        & (d - d[np.maximum(prev_failed, 0)] <= retry_window_days)
        & (d > d[np.maximum(prev_failed, 0)])
    )
    out = np.empty(k, bool)
    out[order] = ~retry
    return out

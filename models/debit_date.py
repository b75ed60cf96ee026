"""The debit-date suggestion: collect just after payday, not just before it.

For each customer of a batch, :func:`suggest_debit_dates`:

1. detects the income timing as of ``as_of`` (:mod:`features.income_timing`);
2. scores every day of the month 1..28 with the debit-failure model, averaged over the
   next ``horizon_months`` collections from the first month the change can take effect
   (so weekends, TARGET2 closing days and four-weekly pay drifting through the month all
   count, :mod:`models.calendar`);
3. suggests the day with the lowest expected failure rate — but **keeps the current day**
   when the evidence is thin (no usable pattern, low confidence, a prior-only model) or
   the gain is too small to be worth a new pre-notification.

The rule is a calendar rule the creditor can apply every month ("the 26th; on a TARGET2
closing day the next business day"), with the concrete next dates. SEPA requires a
pre-notification (14 calendar days by default, DOMAIN.md §7): the first date the change
can take effect is the first collection on the new day at least that many days away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import numpy as np

from features.events import EventArrays, day_of_month, from_day, month_of, to_day
from features.income_timing import (
    FOUR_WEEKLY,
    IRREGULAR,
    PATTERNS,
    SOURCES,
    SRC_DEBITS,
    UNKNOWN,
    WEEKLY,
    IncomeTiming,
    debit_history,
    debit_rows,
    detect_income_timing,
    first_attempts,
)
from models.calendar import collection_day, target2
from models.debit_failure import DebitFailureModel

if TYPE_CHECKING:
    from models.serving import ServingRows

MAX_DEBIT_DAY: Final = 28  # every month has it: no month-end clipping surprises
DEFAULT_AMOUNT_CENTS: Final = 100_00


@dataclass(frozen=True)
class DebitDatePolicy:
    """When a move is worth suggesting. Defaults; the route may override per request."""

    pre_notification_days: int = 14
    horizon_months: int = 12
    min_confidence: float = 0.5
    min_absolute_gain: float = 0.01  # failure-rate points
    min_relative_gain: float = 0.20  # share of the current day's failure rate

    def __post_init__(self) -> None:
        if not 0 <= self.pre_notification_days <= 90:
            raise ValueError(
                f"pre_notification_days must be 0..90; got {self.pre_notification_days}"
            )
        if not 1 <= self.horizon_months <= 24:
            raise ValueError(f"horizon_months must be 1..24; got {self.horizon_months}")


class ReasonCode(StrEnum):
    """Stable reason codes (texts below, Dutch and English)."""

    PAYDAY_DETECTED = "payday_detected"
    INFERRED_FROM_DEBITS = "inferred_from_debits"
    CURRENT_DAY_BEFORE_PAYDAY = "current_day_before_payday"
    COLLECT_AFTER_PAYDAY = "collect_after_payday"
    PAY_DRIFTS = "pay_drifts_through_month"
    CURRENT_DAY_IS_BEST = "current_day_is_best"
    GAIN_TOO_SMALL = "gain_too_small"
    EVIDENCE_TOO_THIN = "evidence_too_thin"
    NO_CURRENT_DAY = "no_current_day"
    MODEL_WITHOUT_DATA = "model_without_data"


TEXTS: Final[dict[ReasonCode, tuple[str, str]]] = {
    ReasonCode.PAYDAY_DETECTED: (
        "Income arrives {pattern_en} (confidence {confidence:.0%}, {n} receipts).",
        "Inkomen komt {pattern_nl} binnen (zekerheid {confidence:.0%}, {n} bijschrijvingen).",
    ),
    ReasonCode.INFERRED_FROM_DEBITS: (
        "No income data: the pay day is inferred from failed and successful debits.",
        "Geen inkomensgegevens: de betaaldag is afgeleid uit gelukte en mislukte incasso's.",
    ),
    ReasonCode.CURRENT_DAY_BEFORE_PAYDAY: (
        "The current day falls {days} day(s) before the next pay, when the balance is lowest.",
        "De huidige dag valt {days} dag(en) voor het volgende inkomen, als het saldo het laagst is.",
    ),
    ReasonCode.COLLECT_AFTER_PAYDAY: (
        "Collecting shortly after pay lowers the expected failure rate from {cur:.1%} to {new:.1%}.",
        "Incasseren kort na het inkomen verlaagt de verwachte uitval van {cur:.1%} naar {new:.1%}.",
    ),
    ReasonCode.PAY_DRIFTS: (
        "Pay every {period} days drifts through the month; this day is best over the next year.",
        "Inkomen elke {period} dagen schuift door de maand; deze dag is over het komende jaar het best.",
    ),
    ReasonCode.CURRENT_DAY_IS_BEST: (
        "The current day is already (near) the best day.",
        "De huidige dag is al (bijna) de beste dag.",
    ),
    ReasonCode.GAIN_TOO_SMALL: (
        "Moving would lower the expected failure rate too little to be worth a change.",
        "Verplaatsen verlaagt de verwachte uitval te weinig om te wijzigen.",
    ),
    ReasonCode.EVIDENCE_TOO_THIN: (
        "Too little evidence about the income timing: keep the current day.",
        "Te weinig gegevens over het inkomensmoment: houd de huidige dag aan.",
    ),
    ReasonCode.NO_CURRENT_DAY: (
        "The current debit day is unknown (no earlier debits and none given).",
        "De huidige incassodag is onbekend (geen eerdere incasso's en niet opgegeven).",
    ),
    ReasonCode.MODEL_WITHOUT_DATA: (
        "The model was trained on too few debits to tell days apart: keep the current day.",
        "Het model is op te weinig incasso's getraind om dagen te onderscheiden: houd de huidige dag aan.",
    ),
}

_PATTERN_TEXT = {
    "monthly_day": ("on the {dom} of the month", "op de {dom}e van de maand"),
    "last_working_day": (
        "on the last working day of the month",
        "op de laatste werkdag van de maand",
    ),
    "four_weekly": ("every 4 weeks", "elke 4 weken"),
    "weekly": ("every week", "elke week"),
    "irregular": ("irregularly", "onregelmatig"),
    "unknown": ("at an unknown moment", "op een onbekend moment"),
}


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    text_en: str
    text_nl: str


def _reason(code: ReasonCode, **values: object) -> Reason:
    en, nl = TEXTS[code]
    return Reason(code, en.format(**values), nl.format(**values))


@dataclass(frozen=True)
class DebitDateSuggestion:
    """One customer's answer: current vs suggested day, both with expected failure rates."""

    customer_id: str
    as_of: date
    income_pattern: str
    pay_day_of_month: int | None
    pattern_confidence: float
    timing_source: str
    income_receipts: int
    next_expected_pay: date | None
    current_day: int | None
    current_failure_rate: float | None
    suggested_day: int
    suggested_failure_rate: float
    change: bool
    days_after_pay: int | None
    rule_en: str
    rule_nl: str
    effective_from: date
    next_dates: list[date]
    reasons: list[Reason] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers


def current_debit_days(events: EventArrays, as_of: int, last_n: int = 6) -> np.ndarray:
    """Each customer's current debit day: the most common day of month of their last first
    attempts before ``as_of`` (0 when there are none). Collections moved past a closing day
    are counted back to the nominal day when the days before were closed."""
    deb = events.debits
    cal = target2()
    keep = first_attempts(events) & (deb["cust"] >= 0) & (deb["day"] < as_of)
    cust, day = deb["cust"][keep], deb["day"][keep]
    out = np.zeros(events.n, np.int64)
    if len(cust) == 0:
        return out
    order = np.lexsort((-day, cust))
    cust, day = cust[order], day[order]
    start = np.r_[True, cust[1:] != cust[:-1]]
    rank = np.arange(len(cust)) - np.flatnonzero(start)[np.cumsum(start) - 1]
    recent = rank < last_n
    cust, day = cust[recent], day[recent]
    # a Monday collection may be a Saturday/Sunday/holiday day moved forward: count the
    # earliest closed day of that run as the nominal day
    nominal = day.copy()
    for back in range(1, 4):
        prev = day - back
        closed = (
            ~cal.is_business_day(prev) & (month_of(prev) == month_of(day)) & (nominal == prev + 1)
        )
        nominal = np.where(closed, prev, nominal)
    dom = np.minimum(day_of_month(nominal), 31)
    counts = np.zeros((events.n, 32))
    np.add.at(counts, (cust, dom), 1.0)
    # tie-break towards the most recent attempt's day
    counts[cust[rank[recent] == 0], dom[rank[recent] == 0]] += 0.5
    out = np.argmax(counts, axis=1)
    out[counts.sum(axis=1) == 0] = 0
    return out.astype(np.int64)


def typical_amounts(events: EventArrays, as_of: int) -> np.ndarray:
    """Median amount of each customer's debits of the last 365 days (a default of EUR 100)."""
    deb = events.debits
    keep = (deb["cust"] >= 0) & (deb["day"] < as_of) & (deb["day"] >= as_of - 365)
    out = np.full(events.n, float(DEFAULT_AMOUNT_CENTS))
    cust, amount = deb["cust"][keep], deb["amount_cents"][keep].astype(np.float64)
    if len(cust) == 0:
        return out
    order = np.lexsort((amount, cust))
    cust, amount = cust[order], amount[order]
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    counts = np.diff(np.r_[starts, len(cust)])
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    out[cust[starts]] = (amount[lo] + amount[hi]) / 2  # the median of each sorted group
    return out


def expected_failure_grid(
    model: DebitFailureModel,
    timing: IncomeTiming,
    events: EventArrays,
    as_of: int,
    amount_cents: np.ndarray,
    policy: DebitDatePolicy,
) -> tuple[np.ndarray, np.ndarray]:
    """(n x 31) mean P(fail) per day of month 1..31 over the horizon, and the first month."""
    cal = target2()
    history = debit_history(events, as_of)
    n = timing.n
    first_month = int(month_of(as_of + policy.pre_notification_days))
    months = first_month + np.arange(policy.horizon_months)
    doms = np.arange(1, 32)
    mm, dd = np.meshgrid(months, doms, indexing="ij")  # (months x 31)
    days = collection_day(mm.ravel(), dd.ravel())
    k = days.size
    cust = np.repeat(np.arange(n), k)
    X = debit_rows(timing, history, cust, np.tile(days, n), np.repeat(amount_cents, k), cal)
    p = model.predict_proba(X).reshape(n, len(months), len(doms))
    return p.mean(axis=1), months


def suggest_debit_dates(
    events: EventArrays,
    as_of: date | int,
    model: DebitFailureModel,
    *,
    current_days: np.ndarray | None = None,
    amount_cents: np.ndarray | None = None,
    policy: DebitDatePolicy | None = None,
) -> list[DebitDateSuggestion]:
    """A suggestion per customer of ``events`` (batch order). ``current_days`` (1..31, 0 =
    infer from the debit history) and ``amount_cents`` (<= 0: infer) are per customer."""
    policy = policy or DebitDatePolicy()
    as_of_day = as_of if isinstance(as_of, int) else to_day(as_of)
    cal = target2()
    timing = detect_income_timing(events, as_of_day, cal)
    n = events.n
    inferred_days = current_debit_days(events, as_of_day)
    cur = (
        inferred_days
        if current_days is None
        else np.where(
            np.asarray(current_days) > 0, np.asarray(current_days, dtype=np.int64), inferred_days
        )
    )
    amounts = typical_amounts(events, as_of_day)
    if amount_cents is not None:
        given = np.asarray(amount_cents, dtype=np.float64)
        amounts = np.where(given > 0, given, amounts)
    grid, months = expected_failure_grid(model, timing, events, as_of_day, amounts, policy)
    candidates = grid[:, :MAX_DEBIT_DAY]
    best = np.argmin(candidates + 1e-9 * np.arange(MAX_DEBIT_DAY), axis=1) + 1
    _, next_pay = _next_pay(timing, as_of_day)

    out = []
    for i in range(n):
        out.append(
            _one(
                i,
                events,
                timing,
                grid,
                months,
                cur[i],
                int(best[i]),
                next_pay[i],
                model,
                policy,
                as_of_day,
            )
        )
    return out


def suggest_for_customers(
    serving: ServingRows,
    model: DebitFailureModel,
    customer_ids: Sequence[str],
    as_of: date,
    *,
    current_days: Sequence[int | None],
    amount_cents: Sequence[int | None],
    pre_notification_days: int,
) -> list[DebitDateSuggestion]:
    """The request path's entry: read the customers' events through ``serving`` and
    suggest a day for each (request order). ``current_days`` and ``amount_cents`` per
    customer, None to infer them from the debit history. Raises as
    :meth:`~models.serving.ServingRows.events` does for unknown customers or a failed read.
    """
    events = serving.events(customer_ids)
    return suggest_debit_dates(
        events,
        as_of,
        model,
        current_days=np.array([d or 0 for d in current_days], dtype=np.int64),
        amount_cents=np.array([a or 0 for a in amount_cents], dtype=np.int64),
        policy=DebitDatePolicy(pre_notification_days=pre_notification_days),
    )


def _next_pay(timing: IncomeTiming, as_of: int) -> tuple[np.ndarray, np.ndarray]:
    from features.income_timing import expected_pay_days

    return expected_pay_days(timing, np.arange(timing.n), np.full(timing.n, as_of - 1), target2())


def _one(
    i: int,
    events: EventArrays,
    timing: IncomeTiming,
    grid: np.ndarray,
    months: np.ndarray,
    current: int,
    best: int,
    next_pay: float,
    model: DebitFailureModel,
    policy: DebitDatePolicy,
    as_of: int,
) -> DebitDateSuggestion:
    pattern = PATTERNS[int(timing.pattern[i])]
    conf = float(timing.confidence[i])
    dom = timing.pay_day_of_month[i]
    pay_dom = int(dom) if np.isfinite(dom) else None
    reasons: list[Reason] = []
    if pattern not in ("irregular", "unknown"):
        en, nl = _PATTERN_TEXT[pattern]
        reasons.append(
            _reason(
                ReasonCode.PAYDAY_DETECTED,
                pattern_en=en.format(dom=_ordinal(pay_dom) if pay_dom else ""),
                pattern_nl=nl.format(dom=pay_dom),
                confidence=conf,
                n=int(timing.n_receipts[i]),
            )
        )
    if int(timing.source[i]) == SRC_DEBITS:
        reasons.append(_reason(ReasonCode.INFERRED_FROM_DEBITS))

    cur_rate = float(grid[i, current - 1]) if current >= 1 else None
    best_rate = float(grid[i, best - 1])
    thin = int(timing.pattern[i]) in (IRREGULAR, UNKNOWN) or conf < policy.min_confidence * (
        0.8 if int(timing.source[i]) == SRC_DEBITS else 1.0
    )
    change = False
    if not model.informative:
        reasons.append(_reason(ReasonCode.MODEL_WITHOUT_DATA))
    elif thin:
        reasons.append(_reason(ReasonCode.EVIDENCE_TOO_THIN))
    elif cur_rate is None:
        reasons.append(_reason(ReasonCode.NO_CURRENT_DAY))
        change = True
    elif current == best:
        reasons.append(_reason(ReasonCode.CURRENT_DAY_IS_BEST))
    else:
        gain = cur_rate - best_rate
        if gain >= policy.min_absolute_gain and gain >= policy.min_relative_gain * cur_rate:
            change = True
        else:
            reasons.append(_reason(ReasonCode.GAIN_TOO_SMALL))
    if change:
        if cur_rate is not None and np.isfinite(next_pay):
            before = _days_before_next_pay(timing, i, current, months)
            if before is not None and before <= 7:
                reasons.append(_reason(ReasonCode.CURRENT_DAY_BEFORE_PAYDAY, days=before))
        reasons.append(
            _reason(
                ReasonCode.COLLECT_AFTER_PAYDAY,
                cur=cur_rate if cur_rate is not None else float(np.max(grid[i, :MAX_DEBIT_DAY])),
                new=best_rate,
            )
        )
        if int(timing.pattern[i]) in (FOUR_WEEKLY, WEEKLY):
            reasons.append(_reason(ReasonCode.PAY_DRIFTS, period=int(timing.period_days[i])))
    day = best if change or current < 1 else current
    rate = best_rate if change or current < 1 else float(cur_rate)  # type: ignore[arg-type]
    # the first collection on the (new) day at least the pre-notification period away
    earliest = as_of + policy.pre_notification_days
    dates = collection_day(np.arange(months[0] - 1, months[0] + 3), np.full(4, day))
    dates = dates[dates >= earliest][:3]
    after_pay = pay_dom is not None and int(timing.pattern[i]) == 0 and day >= pay_dom
    days_after = (day - pay_dom) if after_pay and pay_dom is not None else None
    en, nl = _rule_text(day, pay_dom if after_pay else None)
    return DebitDateSuggestion(
        customer_id=str(events.customer_ids[i]),
        as_of=from_day(as_of),
        income_pattern=pattern,
        pay_day_of_month=pay_dom,
        pattern_confidence=round(conf, 4),
        timing_source=SOURCES[int(timing.source[i])],
        income_receipts=int(timing.n_receipts[i]),
        next_expected_pay=from_day(int(next_pay)) if np.isfinite(next_pay) else None,
        current_day=int(current) if current >= 1 else None,
        current_failure_rate=round(cur_rate, 4) if cur_rate is not None else None,
        suggested_day=int(day),
        suggested_failure_rate=round(rate, 4),
        change=bool(change and day != current),
        days_after_pay=days_after,
        rule_en=en,
        rule_nl=nl,
        effective_from=from_day(int(dates[0])),
        next_dates=[from_day(int(d)) for d in dates],
        reasons=reasons,
    )


def _days_before_next_pay(timing: IncomeTiming, i: int, day: int, months: np.ndarray) -> int | None:
    from features.income_timing import expected_pay_days

    c = collection_day(months[:3], np.full(3, day))
    _, nxt = expected_pay_days(timing, np.full(3, i), c, target2())
    if not np.all(np.isfinite(nxt)):
        return None
    return int(np.min(nxt - c))


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _rule_text(day: int, pay_dom: int | None) -> tuple[str, str]:
    base_en = f"collect on the {_ordinal(day)} of each month; on a weekend or TARGET2 closing day, the next business day"
    base_nl = f"incasseer op de {day}e van elke maand; valt die in een weekend of op een TARGET2-sluitingsdag, dan de eerstvolgende werkdag"
    if pay_dom is None:
        return base_en, base_nl
    k = day - pay_dom
    if k == 0:
        return (
            base_en + f" (the usual pay day, the {_ordinal(pay_dom)})",
            base_nl + f" (de gebruikelijke betaaldag, de {pay_dom}e)",
        )
    return (
        base_en + f" ({k} day(s) after the usual pay day, the {_ordinal(pay_dom)})",
        base_nl + f" ({k} dag(en) na de gebruikelijke betaaldag, de {pay_dom}e)",
    )

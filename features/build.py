"""Point-in-time features: the one feature definition for training and serving.

:func:`build_features` is a pure, columnar function of a batch of customers' events and
an ``as_of`` day. It sees only events dated **before** ``as_of`` (an event dated ``d``
is known from ``d + 1``): an invoice counts as paid only when its payments added up
before ``as_of``, an arrangement's outcome only once its end date has passed. Training
calls it on a whole population at many past dates; the service calls it on a batch of
one at "now". ``tests/data/test_features.py`` pins both the leakage rule and the
online/offline parity.

Every feature is described in :data:`FEATURES` (name, unit, meaning, monotone
direction). Money features are in euros; windows are in days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np

from features.events import (
    HOUSEHOLD_CODES,
    NEVER,
    OUTCOME_CODES,
    PRODUCT_CODES,
    RESULT_CODES,
    SOURCE_CODES,
    STEP_CODES,
    EventArrays,
    to_day,
)

FEATURE_SET_VERSION: Final = "2026.11.3"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its column name, meaning and the risk direction the domain is sure of.

    ``monotone`` is +1 when more of it can never lower the risk of payment difficulty
    (e.g. more missed payments), -1 when more can never raise it, 0 when unconstrained.
    """

    name: str
    description: str
    monotone: int = 0


FEATURES: Final[tuple[FeatureSpec, ...]] = (
    # --- lateness on invoices
    FeatureSpec(
        "late_invoices_90d", "invoices due in the last 90 days paid late or still unpaid", +1
    ),
    FeatureSpec(
        "late_invoices_180d", "invoices due in the last 180 days paid late or still unpaid", +1
    ),
    FeatureSpec(
        "late_invoices_365d", "invoices due in the last 365 days paid late or still unpaid", +1
    ),
    FeatureSpec("late_share_365d", "share of invoices due in the last 365 days that were late", +1),
    FeatureSpec(
        "max_days_past_due_90d", "worst days past due on invoices due in the last 90 days", +1
    ),
    FeatureSpec(
        "max_days_past_due_365d", "worst days past due on invoices due in the last 365 days", +1
    ),
    FeatureSpec("mean_days_late_365d", "mean days late of invoices paid late in the last 365 days"),
    FeatureSpec("late_trend_90d", "late invoices in the last 90 days minus the 90 days before", +1),
    FeatureSpec(
        "days_since_last_late", "days since the due date of the most recent late invoice", -1
    ),
    FeatureSpec(
        "days_to_settle_365d",
        "mean days from invoice to full payment, invoices paid in the last 365 days",
    ),
    FeatureSpec(
        "paid_before_due_share_365d",
        "share of invoices paid in the last 365 days that were paid before the due date",
    ),
    FeatureSpec("open_overdue_invoices", "invoices past their due date and not paid", +1),
    FeatureSpec("open_overdue_eur", "unpaid amount on invoices past their due date, euros", +1),
    FeatureSpec("current_days_past_due", "days past due of the oldest unpaid overdue invoice", +1),
    FeatureSpec("outstanding_eur", "unpaid amount on all invoices issued so far, euros"),
    FeatureSpec("invoices_365d", "invoices issued in the last 365 days"),
    FeatureSpec(
        "monthly_billed_eur", "average amount billed per month over the last 90 days, euros"
    ),
    FeatureSpec("billed_trend_ratio", "amount billed in the last 90 days / the 90 days before"),
    FeatureSpec(
        "paid_to_billed_90d",
        "payments received in the last 90 days / amount billed in the last 90 days",
        -1,
    ),
    FeatureSpec(
        "paid_30d_to_prior_month_billed",
        "payments received in the last 30 days / amount billed 31-60 days ago",
        -1,
    ),
    # --- direct debits
    FeatureSpec("failed_debits_90d", "failed direct debits in the last 90 days", +1),
    FeatureSpec("failed_debits_365d", "failed direct debits in the last 365 days", +1),
    FeatureSpec(
        "debit_failure_rate_365d", "share of direct-debit attempts that failed, last 365 days", +1
    ),
    FeatureSpec(
        "insufficient_funds_365d", "debits returned AM04/MS03 (no funds) in the last 365 days", +1
    ),
    FeatureSpec(
        "reversed_debits_365d", "debits reversed by the customer (MD06) in the last 365 days"
    ),
    FeatureSpec("days_since_failed_debit", "days since the last failed direct debit", -1),
    FeatureSpec(
        "failed_debit_days_after_income", "mean days between last income and failed debits"
    ),
    # --- collection steps
    FeatureSpec("reminders_365d", "reminders sent in the last 365 days", +1),
    FeatureSpec(
        "fourteen_day_letters_365d", "14-day letters (second reminders) in the last 365 days", +1
    ),
    FeatureSpec(
        "agency_steps_365d", "claims handed to a collection agency in the last 365 days", +1
    ),
    FeatureSpec(
        "highest_step_365d", "highest collection step reached in the last 365 days (0-4)", +1
    ),
    FeatureSpec(
        "collection_costs_365d_eur", "collection costs charged in the last 365 days, euros", +1
    ),
    FeatureSpec("days_since_collection_step", "days since the last collection step", -1),
    # --- arrangements
    FeatureSpec("arrangements_broken", "payment arrangements broken so far", +1),
    FeatureSpec("arrangements_kept", "payment arrangements completed as agreed so far"),
    FeatureSpec("arrangement_active", "1 when a payment arrangement is running"),
    FeatureSpec("arrangement_monthly_eur", "monthly amount of running arrangements, euros"),
    # --- income (open banking)
    FeatureSpec("has_income_data", "1 when income receipts were seen in the last 365 days"),
    FeatureSpec("income_monthly_90d_eur", "income received per month over the last 90 days, euros"),
    FeatureSpec(
        "income_monthly_365d_eur", "income received per month over the last 365 days, euros"
    ),
    FeatureSpec("income_trend_ratio", "income of the last 90 days / the 90 days before"),
    FeatureSpec("days_since_income", "days since the last income receipt"),
    FeatureSpec(
        "benefit_income_share", "share of income from benefits and allowances, last 365 days"
    ),
    FeatureSpec(
        "income_variability_180d",
        "coefficient of variation of monthly income over the last 180 days",
    ),
    FeatureSpec(
        "income_lowest_month_ratio_180d", "lowest monthly income of the last 180 days / their mean"
    ),
    # --- balances (open banking)
    FeatureSpec("has_balance_data", "1 when account balances were seen in the last 90 days"),
    FeatureSpec("balance_latest_eur", "latest observed account balance, euros", -1),
    FeatureSpec("balance_min_90d_eur", "lowest observed balance in the last 90 days, euros", -1),
    FeatureSpec("balance_mean_90d_eur", "mean observed balance in the last 90 days, euros", -1),
    FeatureSpec(
        "overdrawn_share_90d", "share of balance observations below zero, last 90 days", +1
    ),
    FeatureSpec(
        "balance_trend_eur", "mean balance of the last 30 days minus the 60 days before, euros"
    ),
    FeatureSpec("balance_to_income", "latest balance / estimated monthly income"),
    # --- relative burden
    FeatureSpec("outstanding_to_income", "unpaid amount / estimated monthly income"),
    FeatureSpec("billed_to_income", "monthly billed amount / estimated monthly income"),
    # --- pay-later
    FeatureSpec("bnpl_open_eur", "unpaid pay-later orders, euros"),
    FeatureSpec("bnpl_orders_90d", "pay-later orders in the last 90 days"),
    FeatureSpec("bnpl_late_365d", "pay-later orders paid late in the last 365 days", +1),
    # --- customer
    FeatureSpec("tenure_days", "days since the customer relationship started"),
    FeatureSpec("age_years", "age in years (from birth year)"),
    FeatureSpec("declared_income_eur", "net monthly income the customer declared, euros"),
    FeatureSpec("household_adults", "adults in the household (1 or 2)"),
    FeatureSpec("household_children", "1 when the household has children"),
    FeatureSpec("household_pensioner", "1 when the household is of pension age"),
)

FEATURE_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES)
FEATURE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURE_NAMES)}

_BNPL = PRODUCT_CODES["bnpl"]
_FAILED = RESULT_CODES["failed"]
_REVERSED = RESULT_CODES["reversed"]
_BENEFITISH = np.array([SOURCE_CODES["benefit"], SOURCE_CODES["allowance"]])
_KEPT, _BROKEN = OUTCOME_CODES["kept"], OUTCOME_CODES["broken"]
_REMINDER = STEP_CODES["reminder"]
_LETTER = STEP_CODES["fourteen_day_letter"]
_AGENCY = STEP_CODES["agency"]
_TWO_ADULTS = np.array(
    [HOUSEHOLD_CODES[h] for h in ("couple", "couple_with_children", "pensioner_couple")]
)
_CHILDREN = np.array([HOUSEHOLD_CODES[h] for h in ("single_parent", "couple_with_children")])
_PENSIONER = np.array([HOUSEHOLD_CODES[h] for h in ("pensioner_single", "pensioner_couple")])


class _Batch:
    """Segment reductions over events grouped by customer (``cust`` = batch position)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def count(self, cust: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(cust[mask], minlength=self.n).astype(np.float64)

    def total(self, cust: np.ndarray, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.bincount(cust[mask], weights=values[mask].astype(np.float64), minlength=self.n)

    def maximum(
        self, cust: np.ndarray, mask: np.ndarray, values: np.ndarray, empty: float
    ) -> np.ndarray:
        out = np.full(self.n, -np.inf)
        np.maximum.at(out, cust[mask], values[mask].astype(np.float64))
        out[np.isneginf(out)] = empty
        return out

    def minimum(
        self, cust: np.ndarray, mask: np.ndarray, values: np.ndarray, empty: float
    ) -> np.ndarray:
        out = np.full(self.n, np.inf)
        np.minimum.at(out, cust[mask], values[mask].astype(np.float64))
        out[np.isposinf(out)] = empty
        return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def as_of_days(events: EventArrays, as_of: date | int | np.ndarray) -> np.ndarray:
    """``as_of`` as one integer day per customer of the batch."""
    if isinstance(as_of, np.ndarray):
        if as_of.shape != (events.n,):
            raise ValueError(
                f"as_of array must have one day per customer ({events.n}); got {as_of.shape}"
            )
        return as_of.astype(np.int64)
    day = as_of if isinstance(as_of, int | np.integer) else to_day(as_of)
    return np.full(events.n, int(day), dtype=np.int64)


def build_features(events: EventArrays, as_of: date | int | np.ndarray) -> np.ndarray:
    """Feature matrix (customers × :data:`FEATURE_NAMES`, float64, NaN = unknown).

    ``as_of`` is a date, a day number, or one day number per customer. Only events
    dated before ``as_of`` are used.
    """
    n = events.n
    b = _Batch(n)
    A = as_of_days(events, as_of)
    out = np.full((n, len(FEATURES)), np.nan)

    def put(name: str, values: np.ndarray) -> None:
        out[:, FEATURE_INDEX[name]] = values

    # ---------------------------------------------------------------- invoices
    inv = events.invoices
    c = inv["cust"]
    a = A[c]
    issued = inv["issue_day"] < a
    due, settled, amount = inv["due_day"], inv["settled_day"], inv["amount_cents"]
    # paid (in full) before as_of?  settled < a.  Late = due before as_of and not settled by due.
    is_due = issued & (due < a)
    late = is_due & (settled > due)
    unpaid = issued & (settled >= a)
    dpd_now = np.minimum(settled, a) - due  # days past due reached, as known at as_of
    paid_late = late & (settled < a)
    age_due = a - due
    for w in (90, 180, 365):
        put(f"late_invoices_{w}d", b.count(c, late & (age_due <= w)))
    due_365 = is_due & (age_due <= 365)
    put("late_share_365d", _ratio(b.count(c, late & (age_due <= 365)), b.count(c, due_365)))
    put(
        "max_days_past_due_90d", b.maximum(c, is_due & (age_due <= 90), np.maximum(dpd_now, 0), 0.0)
    )
    put("max_days_past_due_365d", b.maximum(c, due_365, np.maximum(dpd_now, 0), 0.0))
    put(
        "mean_days_late_365d",
        _ratio(
            b.total(c, paid_late & (age_due <= 365), settled - due),
            b.count(c, paid_late & (age_due <= 365)),
        ),
    )
    recent = b.count(c, late & (age_due <= 90))
    before = b.count(c, late & (age_due > 90) & (age_due <= 180))
    put("late_trend_90d", recent - before)
    last_late_due = b.maximum(c, late, due, np.nan)
    put("days_since_last_late", A - last_late_due)

    # payment timing: people with room pay early, people without pay late or at the last moment
    settled_known = (settled < a) & (a - settled <= 365)
    put(
        "days_to_settle_365d",
        _ratio(b.total(c, settled_known, settled - inv["issue_day"]), b.count(c, settled_known)),
    )
    put(
        "paid_before_due_share_365d",
        _ratio(b.count(c, settled_known & (settled < due)), b.count(c, settled_known)),
    )

    # partial payments made before as_of reduce what is outstanding
    pay = events.payments
    pay_known = (pay["day"] < A[pay["cust"]]) & (pay["invoice"] >= 0)
    paid_so_far = np.bincount(
        pay["invoice"][pay_known],
        weights=pay["amount_cents"][pay_known].astype(np.float64),
        minlength=len(inv),
    )[: len(inv)]
    open_cents = np.where(unpaid, np.maximum(amount - paid_so_far, 0), 0)
    overdue_open = unpaid & (due < a)
    put("open_overdue_invoices", b.count(c, overdue_open))
    put("open_overdue_eur", b.total(c, overdue_open, open_cents) / 100)
    put("current_days_past_due", b.maximum(c, overdue_open, a - due, 0.0))
    outstanding_eur = b.total(c, unpaid, open_cents) / 100
    put("outstanding_eur", outstanding_eur)
    issue_age = a - inv["issue_day"]
    put("invoices_365d", b.count(c, issued & (issue_age <= 365)))
    non_bnpl = inv["product"] != _BNPL
    billed_eur = b.total(c, issued & non_bnpl & (issue_age <= 90), amount) / 100 / 3
    put("monthly_billed_eur", billed_eur)
    # statement history (any creditor billing monthly): is billing growing, how much of it is paid
    billed_90 = b.total(c, issued & (issue_age <= 90), amount)
    billed_prev_90 = b.total(c, issued & (issue_age > 90) & (issue_age <= 180), amount)
    billed_prior_month = b.total(c, issued & (issue_age > 30) & (issue_age <= 60), amount)
    pay_age = A[pay["cust"]] - pay["day"]
    paid_90 = b.total(pay["cust"], (pay_age > 0) & (pay_age <= 90), pay["amount_cents"])
    paid_30 = b.total(pay["cust"], (pay_age > 0) & (pay_age <= 30), pay["amount_cents"])
    put("billed_trend_ratio", _ratio(billed_90, billed_prev_90))
    put("paid_to_billed_90d", _ratio(paid_90, billed_90))
    put("paid_30d_to_prior_month_billed", _ratio(paid_30, billed_prior_month))

    bnpl = inv["product"] == _BNPL
    put("bnpl_open_eur", b.total(c, bnpl & unpaid, open_cents) / 100)
    put("bnpl_orders_90d", b.count(c, bnpl & issued & (issue_age <= 90)))
    put("bnpl_late_365d", b.count(c, bnpl & late & (age_due <= 365)))

    # ---------------------------------------------------------------- income
    inc = events.income
    ic = inc["cust"]
    i_age = A[ic] - inc["day"]
    i_known = i_age > 0
    income_90 = b.total(ic, i_known & (i_age <= 90), inc["amount_cents"]) / 100 / 3
    income_prev = (
        b.total(ic, i_known & (i_age > 90) & (i_age <= 180), inc["amount_cents"]) / 100 / 3
    )
    income_365_total = b.total(ic, i_known & (i_age <= 365), inc["amount_cents"]) / 100
    has_income = b.count(ic, i_known & (i_age <= 365)) > 0
    first_income = b.minimum(ic, i_known, inc["day"], np.nan)
    # each receipt pays for the month after it, so a partial month counts as a whole one
    months_seen = np.clip(np.ceil((A - first_income) / 30.44), 1.0, 12.0)
    income_365 = np.where(has_income, income_365_total / months_seen, np.nan)
    put("has_income_data", has_income.astype(np.float64))
    put("income_monthly_90d_eur", np.where(has_income, income_90, np.nan))
    put("income_monthly_365d_eur", income_365)
    put("income_trend_ratio", np.where(has_income, _ratio(income_90, income_prev), np.nan))
    put("days_since_income", A - b.maximum(ic, i_known, inc["day"], np.nan))
    benefit = np.isin(inc["source"], _BENEFITISH)
    put(
        "benefit_income_share",
        _ratio(
            b.total(ic, i_known & (i_age <= 365) & benefit, inc["amount_cents"]) / 100,
            income_365_total,
        ),
    )

    monthly = np.vstack(
        [
            b.total(ic, (i_age > 30 * k) & (i_age <= 30 * (k + 1)), inc["amount_cents"])
            for k in range(6)
        ]
    )
    six_known = has_income & (A - first_income > 180)
    put(
        "income_variability_180d",
        np.where(six_known, _ratio(monthly.std(0), monthly.mean(0)), np.nan),
    )
    put(
        "income_lowest_month_ratio_180d",
        np.where(six_known, _ratio(monthly.min(0), monthly.mean(0)), np.nan),
    )

    # ---------------------------------------------------------------- balances
    bl = events.balances
    bc = bl["cust"]
    b_age = A[bc] - bl["day"]
    seen_90 = (b_age > 0) & (b_age <= 90)
    n_90 = b.count(bc, seen_90)
    has_balance = n_90 > 0
    last_day = b.maximum(bc, seen_90, bl["day"], np.nan)
    at_last = seen_90 & (bl["day"] == last_day[bc])
    latest_eur = _ratio(b.total(bc, at_last, bl["balance_cents"]), b.count(bc, at_last)) / 100
    put("has_balance_data", has_balance.astype(np.float64))
    put("balance_latest_eur", latest_eur)
    put(
        "balance_min_90d_eur",
        np.where(has_balance, b.minimum(bc, seen_90, bl["balance_cents"], np.nan) / 100, np.nan),
    )
    mean_90 = _ratio(b.total(bc, seen_90, bl["balance_cents"]), n_90) / 100
    put("balance_mean_90d_eur", mean_90)
    put("overdrawn_share_90d", _ratio(b.count(bc, seen_90 & (bl["balance_cents"] < 0)), n_90))
    seen_30 = seen_90 & (b_age <= 30)
    seen_prev = seen_90 & (b_age > 30)
    put(
        "balance_trend_eur",
        (
            _ratio(b.total(bc, seen_30, bl["balance_cents"]), b.count(bc, seen_30))
            - _ratio(b.total(bc, seen_prev, bl["balance_cents"]), b.count(bc, seen_prev))
        )
        / 100,
    )

    # ---------------------------------------------------------------- direct debits
    deb = events.debits
    dc = deb["cust"]
    d_age = A[dc] - deb["day"]
    d_known = d_age > 0
    failed = deb["result"] == _FAILED
    put("failed_debits_90d", b.count(dc, d_known & failed & (d_age <= 90)))
    f365 = b.count(dc, d_known & failed & (d_age <= 365))
    put("failed_debits_365d", f365)
    put("debit_failure_rate_365d", _ratio(f365, b.count(dc, d_known & (d_age <= 365))))
    put(
        "insufficient_funds_365d", b.count(dc, d_known & deb["insufficient_funds"] & (d_age <= 365))
    )
    put(
        "reversed_debits_365d", b.count(dc, d_known & (deb["result"] == _REVERSED) & (d_age <= 365))
    )
    put("days_since_failed_debit", A - b.maximum(dc, d_known & failed, deb["day"], np.nan))
    gap = _days_since_previous(dc, deb["day"], ic, inc["day"])
    f_gap = d_known & failed & (d_age <= 365) & (gap >= 0)
    put("failed_debit_days_after_income", _ratio(b.total(dc, f_gap, gap), b.count(dc, f_gap)))

    # ---------------------------------------------------------------- collection steps
    st = events.steps
    sc = st["cust"]
    s_age = A[sc] - st["day"]
    s_known = (s_age > 0) & (s_age <= 365)
    put("reminders_365d", b.count(sc, s_known & (st["step"] == _REMINDER)))
    put("fourteen_day_letters_365d", b.count(sc, s_known & (st["step"] == _LETTER)))
    put("agency_steps_365d", b.count(sc, s_known & (st["step"] >= _AGENCY)))
    put("highest_step_365d", b.maximum(sc, s_known, st["step"], 0.0))
    put("collection_costs_365d_eur", b.total(sc, s_known, st["cost_cents"]) / 100)
    put("days_since_collection_step", A - b.maximum(sc, s_age > 0, st["day"], np.nan))

    # ---------------------------------------------------------------- arrangements
    ar = events.arrangements
    rc = ar["cust"]
    a_start = ar["start_day"] < A[rc]
    ended = a_start & (ar["end_day"] < A[rc])  # outcome known only after its end date
    running = a_start & ~ended
    put("arrangements_broken", b.count(rc, ended & (ar["outcome"] == _BROKEN)))
    put("arrangements_kept", b.count(rc, ended & (ar["outcome"] == _KEPT)))
    put("arrangement_active", (b.count(rc, running) > 0).astype(np.float64))
    put("arrangement_monthly_eur", b.total(rc, running, ar["monthly_cents"]) / 100)

    # ---------------------------------------------------------------- customer
    cu = events.customers
    # the customer record itself is an event: unknown before it was created
    known = cu["created_day"] < A
    declared_eur = np.where(known, cu["declared_income_cents"] / 100, np.nan)
    put("tenure_days", np.where(known, A - cu["created_day"], np.nan))
    put("age_years", np.where(known, (A / 365.2425 + 1970) - cu["birth_year"] - 0.5, np.nan))
    put("declared_income_eur", declared_eur)
    hh = np.where(known, cu["household"], -1)
    put("household_adults", np.where(hh >= 0, 1.0 + np.isin(hh, _TWO_ADULTS), np.nan))
    put("household_children", np.where(hh >= 0, np.isin(hh, _CHILDREN), np.nan))
    put("household_pensioner", np.where(hh >= 0, np.isin(hh, _PENSIONER), np.nan))

    # ---------------------------------------------------------------- relative burden
    income_est = np.where(has_income, income_365, declared_eur)
    put("outstanding_to_income", _ratio(outstanding_eur, np.nan_to_num(income_est)))
    put("billed_to_income", _ratio(billed_eur, np.nan_to_num(income_est)))
    put("balance_to_income", _ratio(latest_eur, np.nan_to_num(income_est)))
    return out


def _days_since_previous(
    cust: np.ndarray, day: np.ndarray, ref_cust: np.ndarray, ref_day: np.ndarray
) -> np.ndarray:
    """For each event, days since the customer's latest reference event strictly before it.

    -1 where the customer has no earlier reference event. Used for "failed debit N days
    after income": both days are before ``as_of`` whenever the debit is, so no leakage.
    """
    out = np.full(len(cust), -1, dtype=np.int64)
    if len(cust) == 0 or len(ref_cust) == 0:
        return out
    span = np.int64(NEVER + 1)
    ref_key = ref_cust.astype(np.int64) * span + ref_day
    order = np.argsort(ref_key, kind="stable")
    ref_sorted = ref_key[order]
    key = cust.astype(np.int64) * span + day
    pos = np.searchsorted(ref_sorted, key, side="left") - 1
    ok = pos >= 0
    prev = ref_sorted[np.clip(pos, 0, None)]
    same = ok & (prev // span == cust)
    out[same] = day[same] - (prev[same] % span)
    return out


def monotone_constraints(names: tuple[str, ...] | list[str] = FEATURE_NAMES) -> list[int]:
    """LightGBM monotone constraints for ``names`` (0 for features not in :data:`FEATURES`)."""
    direction = {f.name: f.monotone for f in FEATURES}
    return [direction.get(name, 0) for name in names]

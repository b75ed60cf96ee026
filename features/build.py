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

Why one file of ~800 lines: :func:`build_features` is the one definition, computed in one
pass over per-batch arrays that every feature group shares (:class:`_Batch`); spread over
modules, a reviewer could no longer see the whole point-in-time cut in one place.
"""

from __future__ import annotations

from collections.abc import Callable
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
    Table,
    day_of_month,
    to_day,
)

FEATURE_SET_VERSION: Final = "2026.12.3"


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
    # --- the whole history (statement histories run for years; the windows above stop at 365)
    FeatureSpec(
        "days_since_30dpd",
        "days since the customer was last 30+ days past due on an invoice (0 = now), ever",
        -1,
    ),
    FeatureSpec(
        "days_since_60dpd",
        "days since the customer was last 60+ days past due on an invoice (0 = now), ever",
        -1,
    ),
    FeatureSpec(
        "max_days_past_due_ever",
        "worst days past due on any invoice due so far (whole history)",
        +1,
    ),
    FeatureSpec(
        "late_share_ever", "share of all invoices due so far that were paid late or are unpaid", +1
    ),
    FeatureSpec(
        "days_to_settle_365d",
        "mean days from invoice to full payment, invoices paid in the last 365 days",
    ),
    FeatureSpec(
        "paid_before_due_share_365d",
        "share of invoices paid in the last 365 days that were paid before the due date",
    ),
    FeatureSpec(
        "settle_trend_days",
        "mean days from invoice to payment, paid in the last 90 days minus the last 365 days",
    ),
    FeatureSpec(
        "max_days_to_settle_90d", "most days from invoice to full payment, paid in the last 90 days"
    ),
    FeatureSpec(
        "days_to_settle_std_365d",
        "spread (standard deviation) of days from invoice to payment, paid in the last 365 days",
    ),
    FeatureSpec(
        "unpaid_not_due_age_days", "days since issue of the oldest unpaid invoice not yet due"
    ),
    FeatureSpec(
        "payment_day_concentration_365d",
        "how much payments of the last 365 days cluster on one day of the month (0-1)",
    ),
    FeatureSpec(
        "partial_payment_share_365d",
        "share of payments in the last 365 days that left their invoice partly unpaid",
    ),
    FeatureSpec(
        "partial_paid_to_invoice_365d",
        "partial payments of the last 365 days / the amounts of the invoices they were for",
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
    FeatureSpec(
        "reminder_to_settle_days_365d",
        "mean days from a reminder to full payment of its invoice, reminders of the last 365 days",
    ),
    FeatureSpec(
        "reminders_settled_3d_share_365d",
        "share of reminders of the last 365 days whose invoice was paid within 3 days",
    ),
    FeatureSpec(
        "late_paid_after_20d_share_365d",
        "share of invoices paid late in the last 365 days that were paid more than 20 days late",
    ),
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
    FeatureSpec(
        "income_last_to_mean", "latest main income receipt / mean main receipt of the last 365 days"
    ),
    FeatureSpec(
        "benefit_switch_60d",
        "benefit share of main income in the last 60 days minus that of the last 365 days",
    ),
    FeatureSpec(
        "income_gap_ratio",
        "days since the last main income receipt / the usual days between receipts",
    ),
    FeatureSpec(
        "income_min60_to_mean",
        "lowest main income receipt of the last 60 days / mean main receipt of the last 365 days",
    ),
    FeatureSpec(
        "income_main_trend_ratio",
        "main income per day over the last 90 days / per day over the last 365 days",
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
    FeatureSpec(
        "balance_max_weekly_drop_60d_eur",
        "largest fall between two consecutive balance observations in the last 60 days, euros",
    ),
    FeatureSpec(
        "balance_after_open_bills_eur",
        "latest observed balance minus the unpaid amount of all invoices issued, euros",
    ),
    FeatureSpec(
        "balance_trough_trend_eur",
        "lowest balance of the last 30 days minus the lowest of the 60 days before, euros",
    ),
    FeatureSpec("balance_min_180d_eur", "lowest observed balance in the last 180 days, euros"),
    FeatureSpec(
        "due_days_after_pay",
        "days from the day of the month of the latest main income to that of the latest due date",
    ),
    # --- relative burden
    FeatureSpec("outstanding_to_income", "unpaid amount / estimated monthly income"),
    FeatureSpec("billed_to_income", "monthly billed amount / estimated monthly income"),
    # --- pay-later
    FeatureSpec("bnpl_open_eur", "unpaid pay-later orders, euros"),
    FeatureSpec("bnpl_orders_90d", "pay-later orders in the last 90 days"),
    FeatureSpec("bnpl_late_365d", "pay-later orders paid late in the last 365 days", +1),
    FeatureSpec(
        "bnpl_days_to_pay_365d", "mean days from pay-later order to payment, last 365 days"
    ),
    # --- customer
    FeatureSpec("tenure_days", "days since the customer relationship started"),
    # (these five: the latest customer_attributes row stating them, else the customer record)
    FeatureSpec("age_years", "age in years (from birth year)"),
    FeatureSpec("declared_income_eur", "net monthly income the customer declared, euros"),
    FeatureSpec("household_adults", "adults in the household (1 or 2)"),
    FeatureSpec("household_children", "1 when the household has children"),
    FeatureSpec("household_pensioner", "1 when the household is of pension age"),
    FeatureSpec(
        "employment_status",
        "stated employment: 0 employed, 1 self-employed, 2 retired, 3 student, 4 other, "
        "5 unemployed (customer_attributes)",
    ),
    FeatureSpec("days_since_application", "days since the customer applied (customer_attributes)"),
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
_ALLOWANCE = SOURCE_CODES["allowance"]
_BENEFIT = SOURCE_CODES["benefit"]


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


def _by_invoice(values: np.ndarray, invoice: np.ndarray) -> np.ndarray:
    """``values[invoice]`` per row (a payment's or a step's invoice), NaN where the row
    names no invoice (-1); safe when there are no invoices at all."""
    out = np.full(invoice.shape, np.nan)
    named = invoice >= 0
    out[named] = values[invoice[named]]
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
    # the whole history: when was the customer last seriously behind, and how often late
    behind_until = np.minimum(settled, a)  # the last day the invoice was unpaid, + 1
    for d in (30, 60):
        reached = is_due & (dpd_now >= d)
        put(f"days_since_{d}dpd", A - b.maximum(c, reached, behind_until, np.nan))
    put("max_days_past_due_ever", b.maximum(c, is_due, np.maximum(dpd_now, 0), 0.0))
    put("late_share_ever", _ratio(b.count(c, late), b.count(c, is_due)))

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
    # the same for regular invoices, recent against the year and how steady: a customer whose
    # money runs short pays later and less regularly before any invoice goes past due
    regular = inv["product"] != _BNPL
    to_settle = (settled - inv["issue_day"]).astype(np.float64)
    s365 = settled_known & regular
    s90 = s365 & (a - settled <= 90)
    n365 = b.count(c, s365)
    mean_365 = _ratio(b.total(c, s365, to_settle), n365)
    put("settle_trend_days", _ratio(b.total(c, s90, to_settle), b.count(c, s90)) - mean_365)
    put("max_days_to_settle_90d", b.maximum(c, s90, to_settle, np.nan))
    mean_sq = _ratio(b.total(c, s365, to_settle**2), n365)
    put("days_to_settle_std_365d", np.sqrt(np.maximum(mean_sq - mean_365**2, 0.0)))
    not_due_open = issued & regular & (due >= a) & (settled >= a)
    put("unpaid_not_due_age_days", b.maximum(c, not_due_open, a - inv["issue_day"], 0.0))

    # partial payments made before as_of reduce what is outstanding
    pay = events.payments
    pay_known = (pay["day"] < A[pay["cust"]]) & (pay["invoice"] >= 0)
    paid_so_far = np.bincount(
        pay["invoice"][pay_known],
        weights=pay["amount_cents"][pay_known].astype(np.float64),
        minlength=len(inv),
    )[: len(inv)]
    open_cents = np.where(unpaid, np.maximum(amount - paid_so_far, 0), 0)
    # a payment that leaves its invoice open is what the customer could spare that day
    pc = pay["cust"]
    pay_year = pay_known & (A[pc] - pay["day"] <= 365)
    partial = pay_year & (_by_invoice(settled, pay["invoice"]) != pay["day"])
    n_pay_year = b.count(pc, pay_year)
    put("partial_payment_share_365d", _ratio(b.count(pc, partial), n_pay_year))
    put(
        "partial_paid_to_invoice_365d",
        _ratio(
            b.total(pc, partial, pay["amount_cents"]),
            b.total(pc, partial, _by_invoice(amount, pay["invoice"])),
        ),
    )
    # payments bunched on one day of the month: paid when the income comes in, not when billed
    # (angle = day of month * 2 pi / 31: 31 values, so cos and sin of each once, looked up)
    dom = day_of_month(pay["day"])
    turn = np.arange(32) * (2 * np.pi / 31)
    cos_dom, sin_dom = np.cos(turn)[dom], np.sin(turn)[dom]
    put(
        "payment_day_concentration_365d",
        _ratio(
            np.hypot(b.total(pc, pay_year, cos_dom), b.total(pc, pay_year, sin_dom)),
            n_pay_year,
        ),
    )
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
    bnpl_paid = settled_known & bnpl
    put("bnpl_days_to_pay_365d", _ratio(b.total(c, bnpl_paid, to_settle), b.count(c, bnpl_paid)))

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

    # the main income (not allowances) receipt by receipt: a lower or a missing pay, or pay
    # turning into benefits, is a job loss or an income cut
    main = i_known & (inc["source"] != _ALLOWANCE)
    inc_cents = inc["amount_cents"].astype(np.float64)
    main_365 = main & (i_age <= 365)
    main_60 = main & (i_age <= 60)
    n_main = b.count(ic, main_365)
    mean_receipt = _ratio(b.total(ic, main_365, inc_cents), n_main)
    last_main = b.maximum(ic, main, inc["day"], np.nan)
    at_last_main = main & (inc["day"] == last_main[ic])
    put(
        "income_last_to_mean",
        _ratio(
            _ratio(b.total(ic, at_last_main, inc_cents), b.count(ic, at_last_main)), mean_receipt
        ),
    )
    is_benefit = inc["source"] == _BENEFIT
    put(
        "benefit_switch_60d",
        _ratio(b.total(ic, main_60 & is_benefit, inc_cents), b.total(ic, main_60, inc_cents))
        - _ratio(b.total(ic, main_365 & is_benefit, inc_cents), b.total(ic, main_365, inc_cents)),
    )
    first_main = b.minimum(ic, main_365, inc["day"], np.nan)
    put("income_gap_ratio", _ratio(A - last_main, _ratio(last_main - first_main, n_main - 1)))
    put("income_min60_to_mean", _ratio(b.minimum(ic, main_60, inc_cents, np.nan), mean_receipt))
    per_day_90 = b.total(ic, main & (i_age <= 90), inc_cents) / 90
    per_day_365 = _ratio(b.total(ic, main_365, inc_cents), np.minimum(A - first_main, 365.0))
    put("income_main_trend_ratio", _ratio(per_day_90, per_day_365))

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
    # a sudden fall between two weekly observations: an unexpected cost
    if _sorted_by(bc, bl["day"]):  # the read order (customer, day, id): no sort needed
        bc_s, b_day_s = bc, bl["day"]
        bal_s = bl["balance_cents"].astype(np.float64)
    else:
        order = np.lexsort((bl["day"], bc))
        bc_s, b_day_s = bc[order], bl["day"][order]
        bal_s = bl["balance_cents"][order].astype(np.float64)
    after_same = np.r_[False, bc_s[1:] == bc_s[:-1]]
    fall = np.where(after_same, np.r_[0.0, bal_s[:-1]] - bal_s, np.nan)
    obs_age = A[bc_s] - b_day_s
    put(
        "balance_max_weekly_drop_60d_eur",
        b.maximum(bc_s, after_same & (obs_age > 0) & (obs_age <= 60), fall, np.nan) / 100,
    )
    put("balance_after_open_bills_eur", latest_eur - outstanding_eur)
    # the low point before each pay is what is left of a month's income: falling troughs
    # are a month that no longer pays for itself
    bal_cents = bl["balance_cents"].astype(np.float64)
    put(
        "balance_trough_trend_eur",
        (
            b.minimum(bc, seen_90 & (b_age <= 30), bal_cents, np.nan)
            - b.minimum(bc, seen_90 & (b_age > 30), bal_cents, np.nan)
        )
        / 100,
    )
    put(
        "balance_min_180d_eur",
        b.minimum(bc, (b_age > 0) & (b_age <= 180), bal_cents, np.nan) / 100,
    )
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
    # how the customer answers a reminder: pays within days (forgot) or much later (cannot)
    step_settled = _by_invoice(settled, st["invoice"])
    reminded = s_known & (st["step"] == _REMINDER) & (st["invoice"] >= 0)
    answered = reminded & (step_settled < A[sc])
    to_answer = step_settled - st["day"]
    put(
        "reminder_to_settle_days_365d",
        _ratio(b.total(sc, answered, to_answer), b.count(sc, answered)),
    )
    put(
        "reminders_settled_3d_share_365d",
        _ratio(b.count(sc, answered & (to_answer <= 3)), b.count(sc, reminded)),
    )
    paid_late_365 = paid_late & (age_due <= 365)
    put(
        "late_paid_after_20d_share_365d",
        _ratio(b.count(c, paid_late_365 & (settled - due > 20)), b.count(c, paid_late_365)),
    )

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
    put("tenure_days", np.where(known, A - cu["created_day"], np.nan))
    # what the customer stated: per column the latest attribute row dated before as_of
    # that states it, else the customer record's value
    at = events.attributes
    latest = _latest_stated(at, A, n)
    birth_year = latest("birth_year", np.where(known, cu["birth_year"], np.nan))
    declared_cents = latest(
        "declared_income_cents", np.where(known, cu["declared_income_cents"], np.nan)
    )
    declared_eur = declared_cents / 100
    put("age_years", (A / 365.2425 + 1970) - birth_year - 0.5)
    put("declared_income_eur", declared_eur)
    employment = latest("employment", np.full(n, -1.0))
    put("employment_status", np.where(employment >= 0, employment, np.nan))
    applied = latest("application_day", np.full(n, float(NEVER)))
    put("days_since_application", np.where(applied < A, A - applied, np.nan))
    hh = latest("household", np.where(known, cu["household"], -1).astype(np.float64))
    put("household_adults", np.where(hh >= 0, 1.0 + np.isin(hh, _TWO_ADULTS), np.nan))
    put("household_children", np.where(hh >= 0, np.isin(hh, _CHILDREN), np.nan))
    put("household_pensioner", np.where(hh >= 0, np.isin(hh, _PENSIONER), np.nan))

    # ---------------------------------------------------------------- relative burden
    income_est = np.where(has_income, income_365, declared_eur)
    put("outstanding_to_income", _ratio(outstanding_eur, np.nan_to_num(income_est)))
    put("billed_to_income", _ratio(billed_eur, np.nan_to_num(income_est)))
    put("balance_to_income", _ratio(latest_eur, np.nan_to_num(income_est)))
    # where the due date falls in the pay cycle: long after pay, the money may be gone
    last_due = b.maximum(c, issued & regular, due, np.nan)
    recent_pay = np.where(A - last_main <= 120, last_main, np.nan)
    due_dom = np.where(np.isfinite(last_due), day_of_month(np.nan_to_num(last_due)), np.nan)
    pay_dom = np.where(np.isfinite(recent_pay), day_of_month(np.nan_to_num(recent_pay)), np.nan)
    put("due_days_after_pay", np.mod(due_dom - pay_dom, 31))
    return out


def _latest_stated(at: Table, A: np.ndarray, n: int) -> Callable[[str, np.ndarray], np.ndarray]:
    """``latest(column, fallback)``: per customer, ``column`` of their latest attribute row
    dated before ``as_of`` that states it (not NaN, code not -1, day not NEVER), else
    ``fallback``. Rows come in statement order (:attr:`EventArrays.attributes`), so the
    latest is the highest position."""
    ac = at["cust"]
    seen = at["day"] < A[ac]
    position = np.arange(len(ac))

    def latest(column: str, fallback: np.ndarray) -> np.ndarray:
        values = at[column]
        if values.dtype.kind == "f":
            stated = seen & ~np.isnan(values)
        else:
            stated = seen & (values != (NEVER if column.endswith("_day") else -1))
        last = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last, ac[stated], position[stated])
        out = fallback.astype(np.float64)
        has = last >= 0
        out[has] = values[last[has]]
        return out

    return latest


def _sorted_by(cust: np.ndarray, day: np.ndarray) -> bool:
    """Rows already in (customer, day) order, so ``np.lexsort((day, cust))`` is the
    identity (it is stable): the read order of every source, checked in one pass."""
    step = cust[1:] - cust[:-1]
    return bool(np.all((step > 0) | ((step == 0) & (day[1:] >= day[:-1]))))


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
    # Events come in read order (customer, day): usually sorted already.
    ref_sorted = ref_key if bool(np.all(ref_key[1:] >= ref_key[:-1])) else np.sort(ref_key)
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

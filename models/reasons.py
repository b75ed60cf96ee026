"""Reason codes: stable identifiers for why a score is what it is, with texts for people.

Reasons come from LightGBM's own SHAP contributions (``pred_contrib``) per feature; each
feature maps to one :class:`ReasonCode` and a plain-language text in Dutch and English.
Codes are part of the API contract: never rename one, add new ones.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class ReasonCode(StrEnum):
    LATE_PAYMENTS = "R01_LATE_PAYMENTS"
    DAYS_PAST_DUE = "R02_DAYS_PAST_DUE"
    OPEN_ARREARS = "R03_OPEN_ARREARS"
    FAILED_DEBITS = "R04_FAILED_DEBITS"
    COLLECTION_STEPS = "R05_COLLECTION_STEPS"
    BROKEN_ARRANGEMENT = "R06_BROKEN_ARRANGEMENT"
    INCOME_DROP = "R07_INCOME_DROP"
    HIGH_BURDEN = "R08_HIGH_BURDEN"
    PAY_LATER_EXPOSURE = "R09_PAY_LATER_EXPOSURE"
    SHORT_HISTORY = "R10_SHORT_HISTORY"
    INCOME_PROFILE = "R11_INCOME_PROFILE"
    RECENT_INCIDENT = "R12_RECENT_INCIDENT"
    HOUSEHOLD = "R13_HOUSEHOLD"
    ARRANGEMENT_RUNNING = "R14_ARRANGEMENT_RUNNING"
    BILLING_LEVEL = "R15_BILLING_LEVEL"
    LOW_BALANCE = "R16_LOW_BALANCE"
    PAYMENT_TIMING = "R17_PAYMENT_TIMING"
    IRREGULAR_INCOME = "R18_IRREGULAR_INCOME"
    PARTIAL_PAYMENTS = "R19_PARTIAL_PAYMENTS"


#: Plain-language texts: (English, Dutch). Inviting, not threatening (DOMAIN.md).
REASON_TEXTS: dict[ReasonCode, tuple[str, str]] = {
    ReasonCode.LATE_PAYMENTS: (
        "Several recent invoices were paid late.",
        "Meerdere recente facturen zijn te laat betaald.",
    ),
    ReasonCode.DAYS_PAST_DUE: (
        "Recent invoices stayed unpaid for a long time after their due date.",
        "Recente facturen bleven lang onbetaald na de vervaldatum.",
    ),
    ReasonCode.OPEN_ARREARS: (
        "There are unpaid invoices past their due date.",
        "Er staan facturen open waarvan de betaaltermijn verstreken is.",
    ),
    ReasonCode.FAILED_DEBITS: (
        "Direct debits failed, mostly for lack of funds.",
        "Automatische incasso's zijn mislukt, meestal door onvoldoende saldo.",
    ),
    ReasonCode.COLLECTION_STEPS: (
        "Reminders or collection steps were needed recently.",
        "Er waren recent herinneringen of incassostappen nodig.",
    ),
    ReasonCode.BROKEN_ARRANGEMENT: (
        "An earlier payment arrangement could not be kept.",
        "Een eerdere betalingsregeling kon niet worden nagekomen.",
    ),
    ReasonCode.INCOME_DROP: (
        "Income received recently is lower than before or has stopped.",
        "Het recent ontvangen inkomen is lager dan eerder of gestopt.",
    ),
    ReasonCode.HIGH_BURDEN: (
        "What is owed is high relative to income.",
        "Het openstaande bedrag is hoog in verhouding tot het inkomen.",
    ),
    ReasonCode.PAY_LATER_EXPOSURE: (
        "Several pay-later purchases are open or were paid late.",
        "Er staan meerdere achteraf-betalen-aankopen open of ze werden te laat betaald.",
    ),
    ReasonCode.SHORT_HISTORY: (
        "The payment history is still short.",
        "De betaalgeschiedenis is nog kort.",
    ),
    ReasonCode.INCOME_PROFILE: (
        "The income level or type leaves little room.",
        "De hoogte of soort van het inkomen laat weinig ruimte.",
    ),
    ReasonCode.RECENT_INCIDENT: (
        "A payment problem happened only recently.",
        "Er was kort geleden een betalingsprobleem.",
    ),
    ReasonCode.HOUSEHOLD: (
        "The household situation affects how much room there is.",
        "De samenstelling van het huishouden beïnvloedt de financiële ruimte.",
    ),
    ReasonCode.ARRANGEMENT_RUNNING: (
        "A payment arrangement is running.",
        "Er loopt een betalingsregeling.",
    ),
    ReasonCode.BILLING_LEVEL: (
        "The monthly amounts billed are high relative to income.",
        "De maandelijkse bedragen zijn hoog in verhouding tot het inkomen.",
    ),
    ReasonCode.LOW_BALANCE: (
        "The account balance has been low or overdrawn recently.",
        "Het saldo was de laatste tijd laag of negatief.",
    ),
    ReasonCode.PAYMENT_TIMING: (
        "Invoices are usually paid only at or after the last moment.",
        "Facturen worden meestal pas op of na het laatste moment betaald.",
    ),
    ReasonCode.IRREGULAR_INCOME: (
        "Income varies strongly from month to month.",
        "Het inkomen wisselt sterk van maand tot maand.",
    ),
    ReasonCode.PARTIAL_PAYMENTS: (
        "Recent payments covered only part of what was billed.",
        "Recente betalingen dekten maar een deel van wat in rekening werd gebracht.",
    ),
}

#: Feature name -> reason code. Every feature in features.build.FEATURES must appear.
FEATURE_REASONS: dict[str, ReasonCode] = {
    "late_invoices_90d": ReasonCode.LATE_PAYMENTS,
    "late_invoices_180d": ReasonCode.LATE_PAYMENTS,
    "late_invoices_365d": ReasonCode.LATE_PAYMENTS,
    "late_share_365d": ReasonCode.LATE_PAYMENTS,
    "late_trend_90d": ReasonCode.LATE_PAYMENTS,
    "max_days_past_due_90d": ReasonCode.DAYS_PAST_DUE,
    "max_days_past_due_365d": ReasonCode.DAYS_PAST_DUE,
    "mean_days_late_365d": ReasonCode.DAYS_PAST_DUE,
    "days_since_last_late": ReasonCode.RECENT_INCIDENT,
    "days_since_30dpd": ReasonCode.RECENT_INCIDENT,
    "days_since_60dpd": ReasonCode.RECENT_INCIDENT,
    "max_days_past_due_ever": ReasonCode.DAYS_PAST_DUE,
    "late_share_ever": ReasonCode.LATE_PAYMENTS,
    "open_overdue_invoices": ReasonCode.OPEN_ARREARS,
    "open_overdue_eur": ReasonCode.OPEN_ARREARS,
    "current_days_past_due": ReasonCode.OPEN_ARREARS,
    "outstanding_eur": ReasonCode.HIGH_BURDEN,
    "invoices_365d": ReasonCode.SHORT_HISTORY,
    "monthly_billed_eur": ReasonCode.BILLING_LEVEL,
    "billed_trend_ratio": ReasonCode.BILLING_LEVEL,
    "paid_to_billed_90d": ReasonCode.PARTIAL_PAYMENTS,
    "paid_30d_to_prior_month_billed": ReasonCode.PARTIAL_PAYMENTS,
    "failed_debits_90d": ReasonCode.FAILED_DEBITS,
    "failed_debits_365d": ReasonCode.FAILED_DEBITS,
    "debit_failure_rate_365d": ReasonCode.FAILED_DEBITS,
    "insufficient_funds_365d": ReasonCode.FAILED_DEBITS,
    "reversed_debits_365d": ReasonCode.FAILED_DEBITS,
    "days_since_failed_debit": ReasonCode.RECENT_INCIDENT,
    "failed_debit_days_after_income": ReasonCode.FAILED_DEBITS,
    "reminders_365d": ReasonCode.COLLECTION_STEPS,
    "fourteen_day_letters_365d": ReasonCode.COLLECTION_STEPS,
    "agency_steps_365d": ReasonCode.COLLECTION_STEPS,
    "highest_step_365d": ReasonCode.COLLECTION_STEPS,
    "collection_costs_365d_eur": ReasonCode.COLLECTION_STEPS,
    "days_since_collection_step": ReasonCode.RECENT_INCIDENT,
    "arrangements_broken": ReasonCode.BROKEN_ARRANGEMENT,
    "arrangements_kept": ReasonCode.BROKEN_ARRANGEMENT,
    "arrangement_active": ReasonCode.ARRANGEMENT_RUNNING,
    "arrangement_monthly_eur": ReasonCode.ARRANGEMENT_RUNNING,
    "has_income_data": ReasonCode.INCOME_PROFILE,
    "income_monthly_90d_eur": ReasonCode.INCOME_DROP,
    "income_monthly_365d_eur": ReasonCode.INCOME_PROFILE,
    "income_trend_ratio": ReasonCode.INCOME_DROP,
    "days_since_income": ReasonCode.INCOME_DROP,
    "benefit_income_share": ReasonCode.INCOME_PROFILE,
    "outstanding_to_income": ReasonCode.HIGH_BURDEN,
    "billed_to_income": ReasonCode.BILLING_LEVEL,
    "bnpl_open_eur": ReasonCode.PAY_LATER_EXPOSURE,
    "bnpl_orders_90d": ReasonCode.PAY_LATER_EXPOSURE,
    "bnpl_late_365d": ReasonCode.PAY_LATER_EXPOSURE,
    "tenure_days": ReasonCode.SHORT_HISTORY,
    "age_years": ReasonCode.HOUSEHOLD,
    "declared_income_eur": ReasonCode.INCOME_PROFILE,
    "household_adults": ReasonCode.HOUSEHOLD,
    "household_children": ReasonCode.HOUSEHOLD,
    "household_pensioner": ReasonCode.HOUSEHOLD,
    "employment_status": ReasonCode.INCOME_PROFILE,
    "days_since_application": ReasonCode.SHORT_HISTORY,
    "days_to_settle_365d": ReasonCode.PAYMENT_TIMING,
    "paid_before_due_share_365d": ReasonCode.PAYMENT_TIMING,
    "income_variability_180d": ReasonCode.IRREGULAR_INCOME,
    "income_lowest_month_ratio_180d": ReasonCode.IRREGULAR_INCOME,
    "has_balance_data": ReasonCode.LOW_BALANCE,
    "balance_latest_eur": ReasonCode.LOW_BALANCE,
    "balance_min_90d_eur": ReasonCode.LOW_BALANCE,
    "balance_mean_90d_eur": ReasonCode.LOW_BALANCE,
    "overdrawn_share_90d": ReasonCode.LOW_BALANCE,
    "balance_trend_eur": ReasonCode.LOW_BALANCE,
    "balance_to_income": ReasonCode.LOW_BALANCE,
    "settle_trend_days": ReasonCode.PAYMENT_TIMING,
    "max_days_to_settle_90d": ReasonCode.PAYMENT_TIMING,
    "days_to_settle_std_365d": ReasonCode.PAYMENT_TIMING,
    "unpaid_not_due_age_days": ReasonCode.PAYMENT_TIMING,
    "payment_day_concentration_365d": ReasonCode.PAYMENT_TIMING,
    "partial_payment_share_365d": ReasonCode.PARTIAL_PAYMENTS,
    "partial_paid_to_invoice_365d": ReasonCode.PARTIAL_PAYMENTS,
    "bnpl_days_to_pay_365d": ReasonCode.PAY_LATER_EXPOSURE,
    "reminder_to_settle_days_365d": ReasonCode.COLLECTION_STEPS,
    "reminders_settled_3d_share_365d": ReasonCode.COLLECTION_STEPS,
    "late_paid_after_20d_share_365d": ReasonCode.DAYS_PAST_DUE,
    "income_last_to_mean": ReasonCode.INCOME_DROP,
    "benefit_switch_60d": ReasonCode.INCOME_DROP,
    "income_gap_ratio": ReasonCode.INCOME_DROP,
    "income_min60_to_mean": ReasonCode.INCOME_DROP,
    "income_main_trend_ratio": ReasonCode.INCOME_DROP,
    "balance_max_weekly_drop_60d_eur": ReasonCode.LOW_BALANCE,
    "balance_after_open_bills_eur": ReasonCode.LOW_BALANCE,
    "balance_trough_trend_eur": ReasonCode.LOW_BALANCE,
    "balance_min_180d_eur": ReasonCode.LOW_BALANCE,
    "due_days_after_pay": ReasonCode.PAYMENT_TIMING,
}


#: What each reason's text states as a fact about the customer, as tests on their own
#: feature values: ``(feature, ">" or "<", threshold)``, any one suffices, and an unknown
#: value (NaN) passes none. SHAP can give risk to a *missing* value (no direct debits at
#: all, no balance data), and "Direct debits failed" would then be untrue of the customer,
#: so a code whose evidence fails is not shown and the next one takes its place. Codes that
#: state a level the model judged (burden, billing level, income profile, household) carry
#: no test. Found by review on 1 Dec 2026: 33 of 3,000 customers were told their debits
#: had failed with none failed, 48 that their balance was low with no balance data.
REASON_EVIDENCE: dict[ReasonCode, tuple[tuple[str, str, float], ...]] = {
    ReasonCode.LATE_PAYMENTS: (("late_invoices_365d", ">", 0),),
    # "stayed unpaid for a long time": beyond the 14-day letter's term (DOMAIN.md §1)
    ReasonCode.DAYS_PAST_DUE: (("max_days_past_due_365d", ">", 14),),
    ReasonCode.OPEN_ARREARS: (("open_overdue_invoices", ">", 0),),
    ReasonCode.FAILED_DEBITS: (("failed_debits_365d", ">", 0), ("reversed_debits_365d", ">", 0)),
    ReasonCode.COLLECTION_STEPS: (
        ("reminders_365d", ">", 0),
        ("fourteen_day_letters_365d", ">", 0),
        ("agency_steps_365d", ">", 0),
    ),
    ReasonCode.BROKEN_ARRANGEMENT: (("arrangements_broken", ">", 0),),
    ReasonCode.INCOME_DROP: (
        ("income_trend_ratio", "<", 0.9),
        ("income_last_to_mean", "<", 0.9),
        ("income_main_trend_ratio", "<", 0.9),
        ("income_min60_to_mean", "<", 0.9),
        ("benefit_switch_60d", ">", 0),
        ("days_since_income", ">", 45),
    ),
    ReasonCode.PAY_LATER_EXPOSURE: (("bnpl_open_eur", ">", 0), ("bnpl_late_365d", ">", 0)),
    ReasonCode.SHORT_HISTORY: (("tenure_days", "<", 365),),
    ReasonCode.RECENT_INCIDENT: (
        ("days_since_last_late", "<", 366),
        ("days_since_failed_debit", "<", 366),
        ("days_since_collection_step", "<", 366),
    ),
    ReasonCode.ARRANGEMENT_RUNNING: (("arrangement_active", ">", 0),),
    # "low or overdrawn": below zero at some point, or never above EUR 100 in 90 days
    ReasonCode.LOW_BALANCE: (("overdrawn_share_90d", ">", 0), ("balance_min_90d_eur", "<", 100.0)),
    ReasonCode.PAYMENT_TIMING: (("paid_before_due_share_365d", "<", 0.5),),
    ReasonCode.IRREGULAR_INCOME: (
        ("income_variability_180d", ">", 0.2),
        ("income_lowest_month_ratio_180d", "<", 0.8),
    ),
    ReasonCode.PARTIAL_PAYMENTS: (
        ("partial_payment_share_365d", ">", 0),
        ("paid_to_billed_90d", "<", 0.9),
    ),
}


@functools.lru_cache(maxsize=8)
def _evidence_plan(
    feature_names: tuple[str, ...],
) -> dict[ReasonCode, tuple[tuple[int, bool, float], ...]]:
    """:data:`REASON_EVIDENCE` as (feature index, is ">", threshold) for a feature order;
    a code none of whose features the bundle has is left untested."""
    index = {name: i for i, name in enumerate(feature_names)}
    plan = {}
    for code, tests in REASON_EVIDENCE.items():
        known = tuple((index[f], op == ">", t) for f, op, t in tests if f in index)
        if known:
            plan[code] = known
    return plan


def _evidenced(
    code: ReasonCode,
    values: list[float] | tuple[float, ...],
    plan: dict[ReasonCode, tuple[tuple[int, bool, float], ...]],
) -> bool:
    tests = plan.get(code)
    if tests is None:
        return True
    for i, greater, threshold in tests:
        v = values[i]
        if (v > threshold) if greater else (v < threshold):  # NaN: False either way
            return True
    return False


@dataclass(frozen=True)
class Reason:
    """One reason behind a score: the strongest feature of its code and how much it added."""

    code: ReasonCode
    feature: str
    value: float | None  # the feature's value (None when unknown)
    contribution: float  # added log-odds of payment difficulty (SHAP)

    @property
    def text_en(self) -> str:
        return REASON_TEXTS[self.code][0]

    @property
    def text_nl(self) -> str:
        return REASON_TEXTS[self.code][1]


def top_reasons(
    contributions: list[float] | tuple[float, ...],
    values: list[float] | tuple[float, ...],
    feature_names: tuple[str, ...] | list[str],
    k: int,
) -> list[Reason]:
    """The ``k`` reason codes that raise the risk most for one customer.

    Contributions of features sharing a code are added up (so two lateness windows do
    not crowd out a failed-debit reason); the code is shown with its strongest feature.
    Only positive totals count: a reason is something that *raises* the risk, and only
    codes whose text the customer's values bear out (:data:`REASON_EVIDENCE`).
    """
    per_code: dict[ReasonCode, tuple[float, int, float]] = {}
    for i, name in enumerate(feature_names):
        contribution = float(contributions[i])
        code = FEATURE_REASONS.get(name)
        if code is None:
            continue
        total, best_i, best_c = per_code.get(code, (0.0, i, float("-inf")))
        if contribution > best_c:
            best_i, best_c = i, contribution
        per_code[code] = (total + contribution, best_i, best_c)
    ranked = sorted(
        ((total, code, best_i) for code, (total, best_i, _) in per_code.items() if total > 0),
        reverse=True,
    )
    plan = _evidence_plan(tuple(feature_names))
    reasons: list[Reason] = []
    for total, code, i in ranked:
        if len(reasons) == k:
            break
        if not _evidenced(code, values, plan):
            continue
        value = float(values[i])
        reasons.append(
            Reason(
                code=code,
                feature=feature_names[i],
                value=None if value != value else value,
                contribution=total,
            )
        )
    return reasons


def top_reason_codes(
    contributions: np.ndarray,
    values: np.ndarray,
    feature_names: tuple[str, ...] | list[str],
    k: int,
) -> np.ndarray:
    """Vectorised :func:`top_reasons` for many rows, codes only (batch scoring).

    ``contributions`` and ``values`` are (n, features) in ``feature_names`` order. Returns
    an (n, k) object array of reason-code strings, ``""`` where a row has fewer than ``k``
    codes that raise the risk and that its values bear out. Same totals, same evidence,
    same ranking as :func:`top_reasons`.
    """
    codes = list(dict.fromkeys(FEATURE_REASONS[n] for n in feature_names if n in FEATURE_REASONS))
    membership = np.zeros((len(feature_names), len(codes)))
    for i, name in enumerate(feature_names):
        if name in FEATURE_REASONS:
            membership[i, codes.index(FEATURE_REASONS[name])] = 1.0
    totals = np.asarray(contributions, dtype=np.float64) @ membership  # (n, codes)
    values = np.asarray(values, dtype=np.float64)
    for code, tests in _evidence_plan(tuple(feature_names)).items():
        if code not in codes:
            continue
        shown = np.zeros(len(totals), dtype=bool)
        for i, greater, threshold in tests:
            shown |= (values[:, i] > threshold) if greater else (values[:, i] < threshold)
        totals[~shown, codes.index(code)] = 0.0  # not borne out: never among the codes
    # descending by total, ties by code descending - the order sorted(..., reverse=True) gives
    labels = np.array([c.value for c in codes], dtype=object)
    tie = np.argsort(np.argsort(labels))  # rank of each code's label
    order = np.lexsort((-tie[None, :].repeat(len(totals), 0), -totals), axis=1)[:, :k]
    top = np.take_along_axis(totals, order, axis=1)
    out = labels[order]
    out[~(top > 0)] = ""
    if out.shape[1] < k:
        out = np.hstack([out, np.full((len(out), k - out.shape[1]), "", dtype=object)])
    return out

"""The budget view: protected minimum, free room and the Nibud standard/maximum capacity.

From the customer's history (income receipts seen through open banking, this creditor's
own monthly bill, running arrangements) and what the caller declares (net income,
housing and care costs, other fixed costs, other arrangements, household type) it
computes, per month and in euros (DOMAIN.md §2, "suggested formula")::

    protected_minimum = vtlb_share × bijstandsnorm(household) + housing excess + care costs
    nibud_floor       = known fixed costs + Nibud minimum living costs(household)
    free_room         = income − max(protected_minimum, nibud_floor) − existing arrangements
    standard capacity = standard_share × free_room   (long plans)
    maximum capacity  = maximum_share × free_room    (short plans only)

Legal and Nibud-like amounts come from the versioned legal table
(``models/config/legal_nl.json``, block ``affordability``); the answer names its
version. Detected income says how it was detected and how sure it is.

:func:`budget_arrays` is the same arithmetic, columnar over a feature matrix
(``prudent=True``: the endpoint's income, the lower of the year's mean and the last 90
days' rate; the P(kept) model's free-room feature keeps the year's mean it was fitted on).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from features.build import FEATURE_INDEX
from features.events import from_day
from features.schemas import HouseholdType
from models.legal import legal_table_on

HOUSEHOLD_TYPES: tuple[str, ...] = tuple(h.value for h in HouseholdType)


class IncomeMethod(StrEnum):
    """How the income used in the budget was found."""

    DECLARED_BY_CALLER = "declared_by_caller"
    OPEN_BANKING_RECEIPTS = "open_banking_receipts"
    DECLARED_ON_RECORD = "declared_on_record"
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


@dataclass(frozen=True)
class AffordabilityAmounts:
    """The ``affordability`` block of one legal-table version (cents per month)."""

    version: str
    bijstandsnorm_cents: dict[str, int]
    vtlb_share: float
    beslagvrije_voet_share: float
    norm_rent_cents: int
    max_rent_counted_cents: int
    nibud_min_living_cents: dict[str, int]
    unconfirmed: tuple[str, ...]


@lru_cache(maxsize=1)
def _raw_versions() -> dict[str, dict[str, Any]]:
    text = resources.files("models").joinpath("config/legal_nl.json").read_text("utf-8")
    return {v["version"]: v for v in json.loads(text)["versions"]}


@lru_cache(maxsize=64)
def amounts_on(day: date) -> AffordabilityAmounts:
    """The affordability amounts of the legal table in force on ``day``."""
    table = legal_table_on(day)
    block = _raw_versions()[table.version].get("affordability")
    if block is None:
        raise ValueError(f"legal table {table.version} has no affordability block")
    return AffordabilityAmounts(
        version=table.version,
        bijstandsnorm_cents=dict(table.bijstandsnorm_incl_holiday_cents),
        vtlb_share=float(block["vtlb_share_of_bijstandsnorm"]),
        beslagvrije_voet_share=float(block["beslagvrije_voet_share"]),
        norm_rent_cents=int(block["norm_rent_cents"]),
        max_rent_counted_cents=int(block["max_rent_counted_cents"]),
        nibud_min_living_cents={k: int(v) for k, v in block["nibud_min_living_cents"].items()},
        unconfirmed=tuple(block.get("_unconfirmed", ())),
    )


@dataclass(frozen=True)
class DeclaredBudget:
    """What the caller declares (euros per month); ``None`` = not declared."""

    net_income_eur: float | None = None
    housing_costs_eur: float | None = None
    care_costs_eur: float | None = None  # health premium minus zorgtoeslag, own risk, care
    other_fixed_costs_eur: float | None = None
    other_arrangements_eur: float | None = None
    household_type: str | None = None


@dataclass(frozen=True)
class DetectedIncome:
    amount_eur: float | None
    method: IncomeMethod
    confidence: Confidence
    detail: str


@dataclass(frozen=True)
class BudgetView:
    """The budget of one customer, euros per month."""

    household_type: str
    income: DetectedIncome
    detected_income: DetectedIncome  # from history, shown even when the caller declared
    protected_minimum_eur: float
    beslagvrije_voet_base_eur: float
    nibud_floor_eur: float
    fixed_costs_eur: float
    existing_arrangements_eur: float
    free_room_eur: float | None  # None when no income is known
    standard_capacity_eur: float | None
    maximum_capacity_eur: float | None
    legal_table_version: str
    notes: list[str] = field(default_factory=list)


def household_from_features(row: np.ndarray) -> str:
    """The household type implied by the customer features (single when unknown)."""
    return HOUSEHOLD_TYPES[int(_household_codes(row.reshape(1, -1))[0])]


def detect_income(row: np.ndarray) -> DetectedIncome:
    """Monthly income from the history: open-banking receipts first, else declared on record."""
    f = FEATURE_INDEX
    if row[f["has_income_data"]] == 1 and np.isfinite(row[f["income_monthly_365d_eur"]]):
        mean = float(row[f["income_monthly_365d_eur"]])
        recent = row[f["income_monthly_90d_eur"]]
        # An income that fell or stopped counts as it is now: a plan or a pay-later limit
        # on last year's salary is a promise the customer cannot keep (review, 1 Dec 2026:
        # a couple on benefits after a job loss was budgeted on the old salary's mean).
        fell = bool(np.isfinite(recent) and recent < mean)
        amount = float(recent) if fell else mean
        variability = row[f["income_variability_180d"]]
        stale = row[f["days_since_income"]] > 45
        if np.isfinite(variability) and variability < 0.15 and not stale and not fell:
            conf = Confidence.HIGH
        elif not stale and np.isfinite(recent) and recent > 0:
            conf = Confidence.MEDIUM
        else:
            conf = Confidence.LOW
        detail = (
            (
                f"income of the last 90 days ({float(recent):.2f}/month), below the mean of "
                f"up to 12 months of account data ({mean:.2f}/month)"
                if fell
                else f"mean monthly income received over up to 12 months of account data; "
                f"last 90 days {float(np.nan_to_num(recent)):.2f}/month"
            )
            + ("" if np.isfinite(variability) else "; under 6 months of data")
            + ("; no income seen in the last 45 days" if stale else "")
        )
        return DetectedIncome(round(amount, 2), IncomeMethod.OPEN_BANKING_RECEIPTS, conf, detail)
    declared = row[f["declared_income_eur"]]
    if np.isfinite(declared) and declared > 0:
        return DetectedIncome(
            round(float(declared), 2),
            IncomeMethod.DECLARED_ON_RECORD,
            Confidence.LOW,
            "net income the customer declared earlier; not verified against receipts",
        )
    return DetectedIncome(
        None, IncomeMethod.UNKNOWN, Confidence.NONE, "no income data and nothing declared"
    )


def budget_view(
    features_row: np.ndarray,
    on: date,
    declared: DeclaredBudget | None = None,
    *,
    standard_share: float,
    maximum_share: float,
) -> BudgetView:
    """The budget of one customer as of ``on`` (``features_row`` over FEATURE_NAMES)."""
    declared = declared or DeclaredBudget()
    amounts = amounts_on(on)
    notes: list[str] = []
    household = declared.household_type or household_from_features(features_row)
    if household not in amounts.bijstandsnorm_cents:
        raise ValueError(f"household_type must be one of {HOUSEHOLD_TYPES}; got {household!r}")
    detected = detect_income(features_row)
    if declared.net_income_eur is not None:
        income = DetectedIncome(
            declared.net_income_eur,
            IncomeMethod.DECLARED_BY_CALLER,
            Confidence.MEDIUM,
            "net income declared in this request",
        )
        if (
            detected.amount_eur
            and abs(detected.amount_eur - declared.net_income_eur) > 0.2 * detected.amount_eur
        ):
            notes.append(
                "declared income differs more than 20% from the income seen on the account"
            )
    else:
        income = detected
    norm = amounts.bijstandsnorm_cents[household] / 100
    housing_excess = 0.0
    if declared.housing_costs_eur is not None:
        counted = min(declared.housing_costs_eur, amounts.max_rent_counted_cents / 100)
        housing_excess = max(0.0, counted - amounts.norm_rent_cents / 100)
    else:
        notes.append("housing costs not declared: no housing correction, fixed costs incomplete")
    care = declared.care_costs_eur or 0.0
    protected = amounts.vtlb_share * norm + housing_excess + care
    bvv = amounts.beslagvrije_voet_share * norm
    billed = float(np.nan_to_num(features_row[FEATURE_INDEX["monthly_billed_eur"]]))
    fixed = (declared.housing_costs_eur or 0.0) + (declared.other_fixed_costs_eur or 0.0) + billed
    nibud_floor = fixed + amounts.nibud_min_living_cents[household] / 100
    running = float(np.nan_to_num(features_row[FEATURE_INDEX["arrangement_monthly_eur"]]))
    arrangements = running + (declared.other_arrangements_eur or 0.0)
    free = std = mx = None
    if income.amount_eur is not None:
        free = round(income.amount_eur - max(protected, nibud_floor) - arrangements, 2)
        room = max(free, 0.0)
        std, mx = round(standard_share * room, 2), round(maximum_share * room, 2)
    else:
        notes.append("income unknown: free room cannot be computed")
    if amounts.unconfirmed:
        notes.append("legal table has unconfirmed amounts: " + ", ".join(amounts.unconfirmed))
    return BudgetView(
        household_type=household,
        income=income,
        detected_income=detected,
        protected_minimum_eur=round(protected, 2),
        beslagvrije_voet_base_eur=round(bvv, 2),
        nibud_floor_eur=round(nibud_floor, 2),
        fixed_costs_eur=round(fixed, 2),
        existing_arrangements_eur=round(arrangements, 2),
        free_room_eur=free,
        standard_capacity_eur=std,
        maximum_capacity_eur=mx,
        legal_table_version=amounts.version,
        notes=notes,
    )


def budget_arrays(
    X: np.ndarray, as_of_days: np.ndarray, *, prudent: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(income estimate, free-room estimate) per row of a FEATURE_NAMES matrix, euros/month.

    The same arithmetic as :func:`budget_view` with only what the history shows (no
    declared housing or care costs). NaN where the income is unknown.

    ``prudent``: income received is the lower of the year's monthly mean and the last 90
    days' rate, as :func:`budget_view` takes it: an income that fell or stopped counts as
    it is now, not as it was (pay-later limits, DOMAIN.md §1: prevention first). Off, the
    year's mean alone: the definition the trained P(plan kept) component was fitted on.

    Columnar all the way (household as an index into per-version lookup arrays): the
    pay-later route calls it for one row per request, where a per-row Python loop and
    pandas date handling were 12% of a worker's samples.
    """
    f = FEATURE_INDEX
    n = X.shape[0]
    received = X[:, f["income_monthly_365d_eur"]]
    if prudent:
        recent = X[:, f["income_monthly_90d_eur"]]
        received = np.where(np.isfinite(recent), np.fmin(received, recent), received)
    income = np.where(  # as detect_income: receipts where seen, else what was declared
        (X[:, f["has_income_data"]] == 1) & np.isfinite(received),
        received,
        X[:, f["declared_income_eur"]],
    )
    income = np.where(income > 0, income, np.nan)
    household = _household_codes(X)
    billed = _nan_to_zero(X[:, f["monthly_billed_eur"]])
    days = np.asarray(as_of_days, dtype=np.int64).reshape(-1)
    if n and (days.size == 1 or bool((days == days[0]).all())):  # one day: requests, most batches
        norm, living, vtlb_share = _amount_arrays(int(days[0]))
        floor = np.maximum(vtlb_share * norm[household], billed + living[household])
    else:
        floor = np.zeros(n)
        for day in np.unique(days):
            norm, living, vtlb_share = _amount_arrays(int(day))
            rows = days == day
            hh = household[rows]
            floor[rows] = np.maximum(vtlb_share * norm[hh], billed[rows] + living[hh])
    running = _nan_to_zero(X[:, f["arrangement_monthly_eur"]])
    return income, income - floor - running


def prudent_free_room(x: np.ndarray, day: int) -> float:
    """The prudent free room of :func:`budget_arrays` (``prudent=True``) for one
    FEATURE_NAMES row on ``day`` (days since 1970-01-01), euros/month; NaN where the
    income is unknown. The same arithmetic in Python floats, equal to the columnar one
    bit for bit (``tests/unit/test_budget.py``): for one row (the pay-later route, once
    per request) numpy's per-call overhead was ~70 µs, the arithmetic itself ~2 µs."""
    f = FEATURE_INDEX
    received = float(x[f["income_monthly_365d_eur"]])
    recent = float(x[f["income_monthly_90d_eur"]])
    if math.isfinite(recent):  # np.fmin: the one that is not NaN, else the smaller
        received = recent if math.isnan(received) else min(received, recent)
    income = (
        received
        if x[f["has_income_data"]] == 1 and math.isfinite(received)
        else float(x[f["declared_income_eur"]])
    )
    if not income > 0:
        return math.nan
    two = x[f["household_adults"]] == 2
    children = x[f["household_children"]] == 1
    if x[f["household_pensioner"]] == 1:
        household = _HOUSEHOLD_CODE["pensioner_couple" if two else "pensioner_single"]
    elif two:
        household = _HOUSEHOLD_CODE["couple_with_children" if children else "couple"]
    else:
        household = _HOUSEHOLD_CODE["single_parent" if children else "single"]
    billed = float(x[f["monthly_billed_eur"]])
    running = float(x[f["arrangement_monthly_eur"]])
    norm, living, vtlb_share = _amount_arrays(int(day))
    floor = max(
        vtlb_share * float(norm[household]),
        (0.0 if math.isnan(billed) else billed) + float(living[household]),
    )
    return income - floor - (0.0 if math.isnan(running) else running)


_HOUSEHOLD_CODE = {h: i for i, h in enumerate(HOUSEHOLD_TYPES)}


def _nan_to_zero(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


def _household_codes(X: np.ndarray) -> np.ndarray:
    """Per row, the index in HOUSEHOLD_TYPES of the household the features imply: a
    pensioner flag, two adults, children; single when unknown (NaN compares false)."""
    f = FEATURE_INDEX
    two = X[:, f["household_adults"]] == 2
    children = X[:, f["household_children"]] == 1
    code = HOUSEHOLD_TYPES.index
    return np.where(
        X[:, f["household_pensioner"]] == 1,
        np.where(two, code("pensioner_couple"), code("pensioner_single")),
        np.where(
            two,
            np.where(children, code("couple_with_children"), code("couple")),
            np.where(children, code("single_parent"), code("single")),
        ),
    )


@lru_cache(maxsize=64)
def _amount_arrays(day: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(bijstandsnorm, Nibud minimum living costs) in euros per household code, and the
    VTLB share, of the legal table in force on ``day`` (days since 1970-01-01)."""
    amounts = amounts_on(from_day(day))
    norm = np.array([amounts.bijstandsnorm_cents[h] for h in HOUSEHOLD_TYPES]) / 100
    living = np.array([amounts.nibud_min_living_cents[h] for h in HOUSEHOLD_TYPES]) / 100
    norm.flags.writeable = False
    living.flags.writeable = False
    return norm, living, amounts.vtlb_share

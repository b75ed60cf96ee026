"""``POST /v1/affordability``: a customer's debt and declared budget; the budget view,
plans with P(kept), a referral and the cost of escalation."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

from features.schemas import HouseholdType
from models.budget import DeclaredBudget
from models.plan_reasons import REASON_TEXTS, SAFETY_NET_TEXT, PlanReason
from service.schemas.common import (
    EARLIEST_LEGAL_AS_OF,
    CustomerId,
    Day,
    ReasonBase,
    RequestModel,
    check_as_of,
)

MAX_DEBT_EUR = 1_000_000.0  # as the event contract: larger is an input error
MAX_MONTHLY_EUR = 100_000.0


def _money(limit: float, description: str, *, positive: bool = False) -> Any:
    kwargs: dict[str, Any] = {"gt": 0} if positive else {"ge": 0}
    return Field(default=None, le=limit, allow_inf_nan=False, description=description, **kwargs)


class DeclaredBudgetIn(RequestModel):
    """What the caller knows about the customer's budget (euros per month)."""

    net_income_eur: float | None = _money(MAX_MONTHLY_EUR, "net household income incl. allowances")
    housing_costs_eur: float | None = _money(
        MAX_MONTHLY_EUR, "rent or mortgage, net of housing allowance"
    )
    care_costs_eur: float | None = _money(
        MAX_MONTHLY_EUR, "health premium minus zorgtoeslag, own risk, care"
    )
    other_fixed_costs_eur: float | None = _money(
        MAX_MONTHLY_EUR, "other fixed costs (energy, insurance, ...)"
    )
    other_arrangements_eur: float | None = _money(
        MAX_MONTHLY_EUR, "payment arrangements with other creditors"
    )
    household_type: HouseholdType | None = None

    @field_validator(
        "net_income_eur",
        "housing_costs_eur",
        "care_costs_eur",
        "other_fixed_costs_eur",
        "other_arrangements_eur",
    )
    @classmethod
    def _whole_cents(cls, value: float | None) -> float | None:
        """Money in whole cents, as everywhere in tijdig: a declared income of €0.004 is
        no income, not a divisor that overflows the P(kept) model's ratios."""
        return None if value is None else eur_to_cents(value) / 100

    def to_declared(self) -> DeclaredBudget:
        """The model's form of the declared budget."""
        return DeclaredBudget(
            net_income_eur=self.net_income_eur,
            housing_costs_eur=self.housing_costs_eur,
            care_costs_eur=self.care_costs_eur,
            other_fixed_costs_eur=self.other_fixed_costs_eur,
            other_arrangements_eur=self.other_arrangements_eur,
            household_type=None if self.household_type is None else self.household_type.value,
        )


def eur_to_cents(eur: float) -> int:
    """Euros as the caller wrote them, in whole cents rounded half up: through the decimal
    text, not the binary float (0.285 * 100 is 28.4999... and ``round`` made it 28)."""
    return int((Decimal(repr(eur)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class AffordabilityRequest(RequestModel):
    customer_id: CustomerId
    # At least a cent: the plan works in whole cents, and a smaller amount rounded to
    # none (found by the schema fuzz test: 5e-324 was a 500).
    debt_amount_eur: float = Field(
        ge=0.01,
        le=MAX_DEBT_EUR,
        allow_inf_nan=False,
        description="open debt, euros (rounded to whole cents; at least 0.01)",
    )
    as_of: Day | None = Field(
        default=None,
        description="as known at the start of this day (default: today, Europe/Amsterdam); "
        f"from the first legal table's day ({EARLIEST_LEGAL_AS_OF}) to tomorrow",
    )
    budget: DeclaredBudgetIn | None = None

    @field_validator("as_of")
    @classmethod
    def _plausible_day(cls, value: date | None) -> date | None:
        # The protected minimum and the WIK costs come from the legal table in force on
        # as_of: none before the first one (was a 500); no later than tomorrow, like the
        # other routes (9999-12-31 was accepted).
        return check_as_of(value, EARLIEST_LEGAL_AS_OF, "the first legal table in force")


class IncomeOut(BaseModel):
    amount_eur: float | None
    method: str
    confidence: str
    detail: str


class BudgetOut(BaseModel):
    household_type: str
    income: IncomeOut
    detected_income: IncomeOut
    protected_minimum_eur: float
    beslagvrije_voet_base_eur: float
    nibud_floor_eur: float
    fixed_costs_eur: float
    existing_arrangements_eur: float
    free_room_eur: float | None
    standard_capacity_eur: float | None
    maximum_capacity_eur: float | None
    notes: list[str]


class PlanOut(BaseModel):
    """One plan, with what it is expected to bring over the advice's ``horizon_months``."""

    kind: str = Field(description="suggested | shorter | longer | lowest_amount | best_effort")
    monthly_amount_eur: float
    months: int
    last_instalment_eur: float
    p_kept: float
    expected_repaid_12m_eur: float = Field(description="instalments expected in 12 months")
    meets_target: bool = Field(description="P(kept) >= target_p_kept; never a cut-off")
    expected_repaid_eur: float = Field(description="principal expected within the horizon")
    expected_costs_eur: float = Field(
        description="collection costs the customer is expected to bear within the horizon"
    )
    costs_if_broken_eur: float = Field(description="those costs should the plan break")
    expected_value_eur: float = Field(
        description="what the plan was chosen on: expected repaid minus the policy's weight "
        "times expected costs"
    )


class ReferralReasonOut(ReasonBase):
    """A structural reason to refer to debt help (CCD2 art. 36); never a low P(kept)."""


class ReferralOut(BaseModel):
    refer_to_debt_help: bool
    reason: str | None = Field(description="the first of reasons (kept for older clients)")
    text_en: str | None
    text_nl: str | None
    reasons: list[ReferralReasonOut] = Field(
        description="every structural reason, each with its texts"
    )


class SafetyNetOut(BaseModel):
    """The forbearance the suggested plan carries (CCD2 art. 35), with its texts."""

    pause_max_months: int
    pause_times: int
    check_in_after_missed_instalments: int
    check_in_month: int
    text_en: str
    text_nl: str


class DebtSignalsOut(BaseModel):
    """The signs of problematic debt the advice weighed; null = not known."""

    open_collection_cases: int | None = Field(
        description="invoices at the agency or bailiff, still unpaid"
    )
    open_payment_plans: int | None
    broken_plans: int | None = Field(description="payment plans broken before")
    income_below_protected_minimum: bool | None


class EscalationOut(BaseModel):
    principal_eur: float
    wik_costs_eur: float
    statutory_interest_eur: float
    total_on_top_eur: float
    expected_avoided_eur: float


class PlanReasonOut(ReasonBase):
    """A reason of the plan advice (code ``P…``)."""


_INCOME_EXAMPLE: JsonDict = {
    "amount_eur": 2400.0,
    "method": "declared_by_caller",
    "confidence": "medium",
    "detail": "net income declared in this request",
}


def _plan_example(kind: str, monthly: float, months: int, last: float, **more: Any) -> JsonDict:
    """A plan of the example answer (figures of a real answer for a EUR 500 debt)."""
    return {
        "kind": kind,
        "monthly_amount_eur": monthly,
        "months": months,
        "last_instalment_eur": last,
        "meets_target": False,
        "costs_if_broken_eur": 136.41,
        **more,
    }


def _reason_example(code: PlanReason) -> JsonDict:
    en, nl = REASON_TEXTS[code]
    return {"code": code.value, "text_en": en, "text_nl": nl}


_NET = {"pause": 2, "times": 1, "missed": 1, "month": 1}
_KEPT_PLAN = {"p_kept": 0.2329, "expected_repaid_eur": 384.93, "expected_costs_eur": 104.65}
_KEPT_PLAN |= {"expected_value_eur": 280.28}


class AffordabilityResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C000001",
                    "as_of": "2026-01-15",
                    "decision_id": "01a24eca-8589-756e-80fc-a57098758de4",
                    "budget": {
                        "household_type": "single",
                        "income": _INCOME_EXAMPLE,
                        "detected_income": {
                            "amount_eur": 2250.0,
                            "method": "open_banking_receipts",
                            "confidence": "medium",
                            "detail": "mean monthly income received over up to 12 months of "
                            "account data; last 90 days 2250.00/month",
                        },
                        "protected_minimum_eur": 1678.18,
                        "beslagvrije_voet_base_eur": 1278.18,
                        "nibud_floor_eur": 1120.33,
                        "fixed_costs_eur": 720.33,
                        "existing_arrangements_eur": 0.0,
                        "free_room_eur": 721.82,
                        "standard_capacity_eur": 469.18,
                        "maximum_capacity_eur": 721.82,
                        "notes": [],
                    },
                    "suggested_plan": _plan_example(
                        "suggested", 50.0, 10, 50.0, expected_repaid_12m_eur=269.86, **_KEPT_PLAN
                    ),
                    "alternatives": [
                        _plan_example(
                            "shorter",
                            56.0,
                            9,
                            52.0,
                            p_kept=0.2252,
                            expected_repaid_12m_eur=267.57,
                            expected_repaid_eur=383.79,
                            expected_costs_eur=105.69,
                            expected_value_eur=278.1,
                        ),
                        _plan_example(
                            "longer", 39.0, 13, 32.0, expected_repaid_12m_eur=252.59, **_KEPT_PLAN
                        ),
                        _plan_example(
                            "lowest_amount",
                            21.0,
                            24,
                            17.0,
                            expected_repaid_12m_eur=136.01,
                            **_KEPT_PLAN,
                        ),
                    ],
                    "referral": {
                        "refer_to_debt_help": False,
                        "reason": None,
                        "text_en": None,
                        "text_nl": None,
                        "reasons": [],
                    },
                    "safety_net": {
                        "pause_max_months": 2,
                        "pause_times": 1,
                        "check_in_after_missed_instalments": 1,
                        "check_in_month": 1,
                        "text_en": SAFETY_NET_TEXT[0].format(**_NET),
                        "text_nl": SAFETY_NET_TEXT[1].format(**_NET),
                    },
                    "debt_signals": {
                        "open_collection_cases": 0,
                        "open_payment_plans": 0,
                        "broken_plans": 1,
                        "income_below_protected_minimum": False,
                    },
                    "escalation": {
                        "principal_eur": 500.0,
                        "wik_costs_eur": 75.0,
                        "statutory_interest_eur": 29.17,
                        "total_on_top_eur": 104.17,
                        "expected_avoided_eur": 24.26,
                    },
                    "reasons": [
                        _reason_example(code)
                        for code in (
                            PlanReason.FITS_FREE_ROOM,
                            PlanReason.LONGER_FOR_KEEPING,
                            PlanReason.LOW_P_KEPT,
                            PlanReason.PAST_PLANS_BROKEN,
                        )
                    ],
                    "target_p_kept": 0.5,
                    "horizon_months": 24,
                    "model_version": "tijdig-risk/7",
                    "plan_model_version": "plan_kept:plan-2026.4:281",
                    "plan_policy_version": "plan-2026.4",
                    "legal_table_version": "nl-2026-01",
                    "legal_table_stale": False,
                    "legal_notices": [],
                }
            ]
        },
    )

    customer_id: str
    as_of: date
    decision_id: str
    budget: BudgetOut
    suggested_plan: PlanOut | None
    alternatives: list[PlanOut]
    referral: ReferralOut
    safety_net: SafetyNetOut | None = Field(
        description="the pause and check-ins of the suggested plan; null on a referral"
    )
    debt_signals: DebtSignalsOut
    escalation: EscalationOut
    reasons: list[PlanReasonOut]
    target_p_kept: float
    horizon_months: int = Field(
        description="the horizon of each plan's expected repaid and expected costs"
    )
    model_version: str
    plan_model_version: str
    plan_policy_version: str
    legal_table_version: str
    legal_table_stale: bool = Field(
        description="as_of lies too far past the newest legal table: amounts may be out of date"
    )
    legal_notices: list[str]

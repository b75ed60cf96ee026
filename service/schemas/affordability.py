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
    kind: str
    monthly_amount_eur: float
    months: int
    last_instalment_eur: float
    p_kept: float
    expected_repaid_12m_eur: float
    meets_target: bool


class ReferralOut(BaseModel):
    refer_to_debt_help: bool
    reason: str | None
    text_en: str | None
    text_nl: str | None


class EscalationOut(BaseModel):
    principal_eur: float
    wik_costs_eur: float
    statutory_interest_eur: float
    total_on_top_eur: float
    expected_avoided_eur: float


class PlanReasonOut(ReasonBase):
    """A reason of the plan advice (code ``P…``)."""


_INCOME_EXAMPLE: JsonDict = {
    "amount_eur": 1650.0,
    "method": "declared_by_caller",
    "confidence": "high",
    "detail": "net income declared by the caller",
}
_PLAN_EXAMPLE: JsonDict = {
    "kind": "suggested",
    "monthly_amount_eur": 45.0,
    "months": 12,
    "last_instalment_eur": 5.0,
    "p_kept": 0.84,
    "expected_repaid_12m_eur": 452.1,
    "meets_target": True,
}


class AffordabilityResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C000001",
                    "as_of": "2026-01-15",
                    "decision_id": "01a24ea0-aa55-77f8-bd46-1e2282bcd889",
                    "budget": {
                        "household_type": "single",
                        "income": _INCOME_EXAMPLE,
                        "detected_income": {
                            "amount_eur": 1600.0,
                            "method": "open_banking_receipts",
                            "confidence": "medium",
                            "detail": "income of the last 90 days (1600.00/month)",
                        },
                        "protected_minimum_eur": 1278.18,
                        "beslagvrije_voet_base_eur": 1214.27,
                        "nibud_floor_eur": 620.33,
                        "fixed_costs_eur": 720.33,
                        "existing_arrangements_eur": 0.0,
                        "free_room_eur": 120.0,
                        "standard_capacity_eur": 48.0,
                        "maximum_capacity_eur": 96.0,
                        "notes": [],
                    },
                    "suggested_plan": _PLAN_EXAMPLE,
                    "alternatives": [
                        {**_PLAN_EXAMPLE, "kind": "longer", "monthly_amount_eur": 25.0}
                    ],
                    "referral": {
                        "refer_to_debt_help": False,
                        "reason": None,
                        "text_en": None,
                        "text_nl": None,
                    },
                    "escalation": {
                        "principal_eur": 500.0,
                        "wik_costs_eur": 75.0,
                        "statutory_interest_eur": 52.5,
                        "total_on_top_eur": 127.5,
                        "expected_avoided_eur": 107.1,
                    },
                    "reasons": [],
                    "target_p_kept": 0.8,
                    "model_version": "7",
                    "plan_model_version": "plan_kept:plan-2026.1:238",
                    "plan_policy_version": "plan-2026.1",
                    "legal_table_version": "nl-2025-01",
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
    escalation: EscalationOut
    reasons: list[PlanReasonOut]
    target_p_kept: float
    model_version: str
    plan_model_version: str
    plan_policy_version: str
    legal_table_version: str

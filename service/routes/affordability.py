"""``POST /v1/affordability``: budget, affordable amount and a payment plan (scope ``collection``).

Thin route (STYLE.md): parse → read the customer's events → features → the budget view
(:mod:`models.budget`) and the plan advice (:mod:`models.plans`, using the bundle's
``plan_kept`` component) → shape the answer → decision log (kind ``affordability``).
A bundle without the ``plan_kept`` component answers 503 problem+json, never 500.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator

from features.build import build_features
from features.events import to_day
from features.schemas import HouseholdType
from models.budget import BudgetView, DeclaredBudget, budget_view
from models.plans import REASON_TEXTS, Advice, Plan, PlanPolicy, PlanReason, advise
from service.decision_log import Decision, feature_dict, new_decision_id
from service.deps import BundleDep, DecisionLogDep, SettingsDep, StoreDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.routes.common import log_decisions, read_events
from service.schemas import (
    EARLIEST_LEGAL_AS_OF,
    CustomerId,
    Day,
    RequestModel,
    check_as_of,
    today,
)
from service.settings import Scope

router = APIRouter(tags=["collection"])

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


class PlanReasonOut(BaseModel):
    code: str
    text_en: str
    text_nl: str


class AffordabilityResponse(BaseModel):
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


@router.post(
    "/v1/affordability",
    response_model=AffordabilityResponse,
    dependencies=[Depends(require_scope(Scope.COLLECTION))],
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Protected minimum, free room, affordable plan with P(kept), or a debt-help referral",
)
async def affordability(
    body: AffordabilityRequest,
    bundle: BundleDep,
    store: StoreDep,
    decision_log: DecisionLogDep,
    settings: SettingsDep,
) -> AffordabilityResponse:
    model = bundle.components.get("plan_kept")
    if model is None:
        raise ProblemError(
            503,
            ProblemType.NO_MODEL,
            "No payment-plan model loaded",
            "the loaded bundle has no plan_kept component; train and publish a bundle that has one",
        )
    as_of = body.as_of or settings.default_as_of or today()
    ids = [body.customer_id]
    events = await read_events(store, ids)
    day = to_day(as_of)
    row = build_features(events, day)[0]
    policy = PlanPolicy.from_dict(model.policy) if model.policy else PlanPolicy.default()
    declared = _declared(body.budget)
    budget = budget_view(
        row,
        as_of,
        declared,
        standard_share=policy.standard_share,
        maximum_share=policy.maximum_share,
    )
    debt_cents = eur_to_cents(body.debt_amount_eur)
    advice = advise(model, row, day, as_of, debt_cents, budget, policy)

    decision_id = new_decision_id()
    response = _shape(body, as_of, decision_id, budget, advice, policy, bundle.version)
    decision = Decision(
        decision_id=decision_id,
        created_at=datetime.now(UTC),
        kind="affordability",
        customer_id=body.customer_id,
        as_of=as_of,
        model_version=bundle.version,
        policy_version=policy.version,
        inputs={"request_id": str(uuid.uuid4()), **body.model_dump(mode="json")},
        features=feature_dict(bundle.feature_names, row.tolist()),
        outputs=response.model_dump(mode="json", exclude={"decision_id", "customer_id"}),
    )
    await log_decisions(decision_log, [decision], settings)
    return response


def _declared(b: DeclaredBudgetIn | None) -> DeclaredBudget:
    if b is None:
        return DeclaredBudget()
    return DeclaredBudget(
        net_income_eur=b.net_income_eur,
        housing_costs_eur=b.housing_costs_eur,
        care_costs_eur=b.care_costs_eur,
        other_fixed_costs_eur=b.other_fixed_costs_eur,
        other_arrangements_eur=b.other_arrangements_eur,
        household_type=None if b.household_type is None else b.household_type.value,
    )


def _plan_out(p: Plan) -> PlanOut:
    return PlanOut.model_validate(asdict(p))


def _shape(
    body: AffordabilityRequest,
    as_of: date,
    decision_id: str,
    budget: BudgetView,
    advice: Advice,
    policy: PlanPolicy,
    bundle_version: str,
) -> AffordabilityResponse:
    def income(d: Any) -> IncomeOut:
        return IncomeOut(
            amount_eur=d.amount_eur,
            method=d.method.value,
            confidence=d.confidence.value,
            detail=d.detail,
        )

    ref_text = (
        REASON_TEXTS.get(PlanReason(advice.referral_reason)) if advice.referral_reason else None
    )
    e = advice.escalation
    return AffordabilityResponse(
        customer_id=body.customer_id,
        as_of=as_of,
        decision_id=decision_id,
        budget=BudgetOut(
            household_type=budget.household_type,
            income=income(budget.income),
            detected_income=income(budget.detected_income),
            protected_minimum_eur=budget.protected_minimum_eur,
            beslagvrije_voet_base_eur=budget.beslagvrije_voet_base_eur,
            nibud_floor_eur=budget.nibud_floor_eur,
            fixed_costs_eur=budget.fixed_costs_eur,
            existing_arrangements_eur=budget.existing_arrangements_eur,
            free_room_eur=budget.free_room_eur,
            standard_capacity_eur=budget.standard_capacity_eur,
            maximum_capacity_eur=budget.maximum_capacity_eur,
            notes=budget.notes,
        ),
        suggested_plan=None if advice.suggested is None else _plan_out(advice.suggested),
        alternatives=[_plan_out(p) for p in advice.alternatives],
        referral=ReferralOut(
            refer_to_debt_help=advice.referral,
            reason=advice.referral_reason,
            text_en=ref_text[0] if ref_text else None,
            text_nl=ref_text[1] if ref_text else None,
        ),
        escalation=EscalationOut(
            principal_eur=e.principal_eur,
            wik_costs_eur=e.wik_costs_eur,
            statutory_interest_eur=e.statutory_interest_eur,
            total_on_top_eur=e.total_on_top_eur,
            expected_avoided_eur=e.expected_avoided_eur,
        ),
        reasons=[
            PlanReasonOut(code=r.value, text_en=REASON_TEXTS[r][0], text_nl=REASON_TEXTS[r][1])
            for r in advice.reasons
        ],
        target_p_kept=policy.target_p_kept,
        model_version=bundle_version,
        plan_model_version=advice.model_version,
        plan_policy_version=policy.version,
        legal_table_version=budget.legal_table_version,
    )

"""``POST /v1/affordability``: budget, affordable amount and a payment plan (scope ``collection``).

Thin route (STYLE.md): parse → :func:`models.affordability.assess_affordability` (the
customer's events, features, the budget view, the plan advice with the bundle's
``plan_kept`` component) → shape the answer → decision log (kind ``affordability``).
A bundle without the ``plan_kept`` component answers 503 problem+json, never 500.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from models.affordability import AffordabilityAssessment, assess_affordability
from models.plans import REASON_TEXTS, Plan, PlanReason, ReferralReason
from service.decision_log import new_decision_id
from service.deps import ScoringContext, scoring_context
from service.errors import ProblemError, ProblemType, problem_responses
from service.json_body import StrictJSONRoute
from service.routes.common import DecisionRecord, from_store, log_decisions, resolve_as_of
from service.schemas import (
    AffordabilityRequest,
    AffordabilityResponse,
    BudgetOut,
    DebtSignalsOut,
    DeclaredBudgetIn,
    EscalationOut,
    IncomeOut,
    PlanOut,
    PlanReasonOut,
    ReferralOut,
    ReferralReasonOut,
    SafetyNetOut,
    eur_to_cents,
)
from service.settings import Scope

router = APIRouter(tags=["collection"], route_class=StrictJSONRoute)


@router.post(
    "/v1/affordability",
    response_model=AffordabilityResponse,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Protected minimum, free room, affordable plan with P(kept), or a debt-help referral",
)
async def affordability(
    body: AffordabilityRequest,
    ctx: Annotated[ScoringContext, Depends(scoring_context(Scope.COLLECTION))],
) -> AffordabilityResponse:
    bundle = ctx.bundle
    model = bundle.components.get("plan_kept")
    if model is None:
        raise ProblemError(
            503,
            ProblemType.NO_MODEL,
            "No payment-plan model loaded",
            "the loaded bundle has no plan_kept component; train and publish a bundle that has one",
        )
    as_of = resolve_as_of(body.as_of, ctx.settings)
    assessment = await from_store(
        assess_affordability,
        ctx.serving,
        model,
        customer_id=body.customer_id,
        as_of=as_of,
        debt_cents=eur_to_cents(body.debt_amount_eur),
        declared=(body.budget or DeclaredBudgetIn()).to_declared(),
    )

    decision_id = new_decision_id()
    response = _shape(assessment, decision_id, bundle.version)
    record = DecisionRecord(
        "affordability",
        as_of,
        bundle.version,
        assessment.policy.version,
        bundle.feature_names,
        client=ctx.client,
    )
    row = record.row(
        decision_id,
        body.customer_id,
        inputs=body.model_dump(mode="json"),
        features=assessment.features,
        outputs=response,
        exclude={"decision_id", "customer_id"},
    )
    await log_decisions(ctx.decision_log, [row], ctx.settings)
    return response


def _plan_out(p: Plan) -> PlanOut:
    return PlanOut.model_validate(asdict(p))


def _referral_reason_out(reason: ReferralReason) -> ReferralReasonOut:
    en, nl = REASON_TEXTS[PlanReason(reason.value)]
    return ReferralReasonOut(code=reason.value, text_en=en, text_nl=nl)


def _shape(
    assessment: AffordabilityAssessment, decision_id: str, bundle_version: str
) -> AffordabilityResponse:
    budget, advice, policy = assessment.budget, assessment.advice, assessment.policy

    def income(d: Any) -> IncomeOut:
        return IncomeOut(
            amount_eur=d.amount_eur,
            method=d.method.value,
            confidence=d.confidence.value,
            detail=d.detail,
        )

    referral_reasons = [_referral_reason_out(r) for r in advice.referral_reasons]
    first = referral_reasons[0] if referral_reasons else None
    e = advice.escalation
    return AffordabilityResponse(
        customer_id=assessment.customer_id,
        as_of=assessment.as_of,
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
            text_en=first.text_en if first else None,
            text_nl=first.text_nl if first else None,
            reasons=referral_reasons,
        ),
        safety_net=(
            None if advice.safety_net is None else SafetyNetOut(**asdict(advice.safety_net))
        ),
        debt_signals=DebtSignalsOut(**asdict(assessment.signals)),
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
        horizon_months=advice.horizon_months,
        model_version=bundle_version,
        plan_model_version=advice.model_version,
        plan_policy_version=policy.version,
        legal_table_version=advice.legal_table_version,
        legal_table_stale=advice.legal_table_stale,
        legal_notices=advice.legal_notices,
    )

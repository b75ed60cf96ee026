"""``POST /v1/bnpl/decisions``: may we offer pay-later for this order, up to what limit?

Scope ``checkout``. Real-time: one call into :mod:`models.checkout` (the customer's
serving state, the age check, the pay-later policy of the loaded bundle). Every decision is logged with its inputs, features, outputs and
versions; a decline always names its reasons and the path to human review.

Idempotency: a checkout that retries after a timeout sends the same ``Idempotency-Key``
header and gets the same decision back (``idempotent_replay: true``), never a second,
possibly different one. The same key with a different request is a 409. The key is bound
in the transaction that logs the decision, first writer wins: when two retries race, the
one that lost is not logged and answers with the winner's decision, so every logged
decision was given to someone and a key never points to a decision that was not logged
(:mod:`service.idempotency`).

Data minimisation: the buyer's birth date is used to compute the age and is not logged;
the log keeps the age and how it was verified. Special-category data (GDPR art. 9) are
refused outright by the request schema, so they can never become model input.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from models.bnpl import BNPL_TEXTS, AgeCheck, BnplDecision
from models.bundle import Bundle
from models.checkout import assess_order
from models.decline_memory import LOOKBACK_DAYS, customer_memory
from service.decision_log import (
    DecisionLog,
    DecisionLogUnavailable,
    IdempotencyBinding,
    new_decision_id,
)
from service.deps import ScoringContext, scoring_context
from service.errors import problem_responses
from service.idempotency import decision_under_key, idempotency_binding
from service.json_body import StrictJSONRoute
from service.routes.common import (
    DecisionRecord,
    decision_log_unavailable,
    from_store,
    json_response,
    log_decisions,
    resolve_as_of,
)
from service.schemas import (
    BnplDecisionRequest,
    BnplDecisionResponse,
    BnplReasonOut,
    LimitRaiseOut,
    ReviewPath,
    RiskReasonOut,
)
from service.settings import Scope

router = APIRouter(tags=["checkout"], route_class=StrictJSONRoute)


@router.post(
    "/v1/bnpl/decisions",
    response_model=BnplDecisionResponse,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
    summary="Pay-later at checkout: offer or decline, a limit, reasons",
)
async def bnpl_decision(
    body: BnplDecisionRequest,
    ctx: Annotated[ScoringContext, Depends(scoring_context(Scope.CHECKOUT))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    bundle, decision_log = ctx.bundle, ctx.decision_log
    binding = None
    if idempotency_key:  # the request's fingerprint is only needed to check a retry
        binding = idempotency_binding(ctx.api_key_id, idempotency_key, body)
        replay = _replay(decision_log, binding)
        if replay is not None:
            return json_response(replay)

    as_of = resolve_as_of(body.as_of, ctx.settings)
    memory = None
    if body.customer_id is not None:
        memory = _decline_memory(
            decision_log, body.customer_id, ctx.client, as_of, bundle.bnpl_policy.term_days
        )
    verification = body.age_verification
    assessment = await from_store(
        assess_order,
        ctx.serving,
        bundle,
        customer_id=body.customer_id,
        order_eur=body.order.amount_cents / 100,
        currency=body.order.currency,
        age=AgeCheck(verification.verified, verification.birth_date, verification.method),
        as_of=as_of,
        memory=memory,
    )
    response = _response(new_decision_id(), assessment.decision, body, bundle, as_of)
    record = DecisionRecord(
        "bnpl_decision",
        as_of,
        bundle.version,
        bundle.bnpl_policy.version,
        bundle.feature_names,
        client=ctx.client,
    )
    logged = record.row(
        response.decision_id,
        body.customer_id or "",
        inputs={
            "order": body.order.model_dump(),
            "age_verified": assessment.age.verified,
            "age_verification_method": assessment.age.method,
            "age_years": assessment.age_years,
            "open_collection_case": assessment.open_case,
            "idempotency_key": idempotency_key,
            "as_of_requested": body.as_of.isoformat() if body.as_of else None,
            "serving_row": assessment.serving_row,
            # the probability the cut-off applied to when the bundle has a pay-later
            # adjustment (models.bnpl_adjustment); None: the model's own
            "pay_later_probability": assessment.decision.pay_later_probability,
            # NaN (no such decline) is not JSON: logged as null
            "decline_memory": None
            if memory is None
            else {k: (None if math.isnan(v) else v) for k, v in memory.items()},
        },
        features=assessment.features,
        outputs=response,
        exclude={"decision_id", "idempotent_replay"},
        idempotency=binding,
    )
    held = (await log_decisions(decision_log, [logged], ctx.settings)).get(logged.decision_id)
    if held is not None:  # a concurrent retry bound the key first: ours was not logged
        assert binding is not None
        replay = _replay(decision_log, binding, held)
        if replay is None:  # its decision was purged meanwhile; ours was not logged
            raise decision_log_unavailable(
                "the idempotency key is held by a decision that is no longer in the log, "
                "so no decision is given; retry with the same key"
            )
        return json_response(replay)
    return json_response(response)


def _decline_memory(
    decision_log: DecisionLog, customer_id: str, client: str, as_of: date, term_days: int
) -> dict[str, float]:
    """The customer's decline memory as of ``as_of`` from this client's own pay-later
    decisions in the log (:func:`models.decline_memory.customer_memory`, the computation
    the simulator runs); a 503 when the log cannot answer, as for any decision."""
    try:
        logged = decision_log.pay_later_decisions(
            customer_id, client, as_of - timedelta(days=LOOKBACK_DAYS), as_of
        )
    except DecisionLogUnavailable as exc:
        raise decision_log_unavailable(
            "the decision log could not be read for the customer's earlier pay-later "
            "decisions, so no decision is given; retry"
        ) from exc
    rows = [
        (
            day,
            bool(out.get("offer")),
            round(float(out.get("order_eur", 0.0)) * 100),
            [r["code"] for r in out.get("reasons", []) if r.get("declines")],
        )
        for day, out in logged
    ]
    return customer_memory(rows, as_of, term_days)


def _replay(
    decision_log: DecisionLog, binding: IdempotencyBinding, held: tuple[str, str] | None = None
) -> BnplDecisionResponse | None:
    """The answer already given under ``binding``'s key, marked as a replay; None when
    there is none (a 409 for another request, a 503 when the log cannot answer)."""
    logged = decision_under_key(decision_log, binding, held)
    if logged is None:
        return None
    return BnplDecisionResponse(
        decision_id=logged.decision_id, idempotent_replay=True, **logged.outputs
    )


def _response(
    decision_id: str,
    decision: BnplDecision,
    body: BnplDecisionRequest,
    bundle: Bundle,
    as_of: date,
) -> BnplDecisionResponse:
    review = None
    if not decision.offer:
        review = ReviewPath(
            how=f"POST /v1/decisions/{decision_id}/review",
            text_en="You can ask for this decision to be reviewed by a person and give your view.",
            text_nl="U kunt vragen dat een medewerker dit besluit beoordeelt en uw kant toelichten.",
        )
    return BnplDecisionResponse(
        decision_id=decision_id,
        offer=decision.offer,
        limit_eur=decision.limit_eur,
        available_eur=decision.available_eur,
        order_eur=decision.order_eur,
        currency=body.order.currency,
        reasons=[
            BnplReasonOut(
                code=r.code.value, declines=r.declines, text_en=r.text_en, text_nl=r.text_nl
            )
            for r in decision.reasons
        ],
        risk_reasons=[RiskReasonOut.of(r) for r in decision.risk_reasons],
        probability=decision.probability,
        thin_file=decision.thin_file,
        model_version=bundle.version,
        policy_version=bundle.bnpl_policy.version,
        as_of=as_of,
        human_review=review,
        limit_raise=None
        if decision.limit_raise is None
        else LimitRaiseOut(
            code=decision.limit_raise.value,
            next_limit_eur=decision.next_limit_eur,
            text_en=BNPL_TEXTS[decision.limit_raise][0],
            text_nl=BNPL_TEXTS[decision.limit_raise][1],
        ),
    )

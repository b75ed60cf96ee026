"""``POST /v1/risk/scores``: early warning for one or many customers (scope ``collection``).

Batch rule: **all ids or nothing**. If any id is unknown the answer is 404 naming every
unknown id, so a caller never silently gets a partial answer. Duplicates are a 422.

The route is ``async`` and does the short CPU work (features, predict, reasons; about
1 ms for one customer) inline: for millisecond work that beats the threadpool (STYLE.md).
The store read is blocking I/O. On SQLite it is a local, indexed read of ~0.23 ms; measured
in-process (one customer, 4 x 400 calls) inline and threadpool were within noise of each
other (best medians 3.4 vs 3.5 ms per request), so it stays inline and spares the thread
hop. On PostgreSQL a network round trip would stall every other request on the loop, so
there it goes to the threadpool.

With ``shadow_share`` set, a drawn share of requests is also handed to the shadow
challenger after the answer is built (:mod:`service.shadow`): it never changes the
answer, and never waits.

The decision log row is committed before answering, on SQLite by the event loop itself
together with the other requests of the same loop turn (see :mod:`service.decision_log`;
the step's cost is in the in-process split of ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.exceptions import RequestValidationError

from models.bundle import Bundle
from models.scoring import RiskAssessment, assess_state
from models.serving import ServingRows, ServingState
from service.decision_log import Decision, new_decision_id
from service.deps import ScoringContext, scoring_context
from service.errors import problem_responses
from service.json_body import StrictJSONRoute
from service.routes.common import (
    DecisionRecord,
    from_store,
    json_response,
    log_decisions,
    resolve_as_of,
)
from service.schemas import (
    ActionOut,
    RiskReasonOut,
    RiskResult,
    RiskScoresRequest,
    RiskScoresResponse,
)
from service.settings import Scope
from service.shadow import ShadowOffer

router = APIRouter(tags=["collection"], route_class=StrictJSONRoute)


@router.post(
    "/v1/risk/scores",
    response_model=RiskScoresResponse,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Early-warning risk scores with reasons and a recommended action",
)
async def risk_scores(
    body: RiskScoresRequest,
    ctx: Annotated[ScoringContext, Depends(scoring_context(Scope.COLLECTION))],
) -> Response:
    bundle, settings, metrics = ctx.bundle, ctx.settings, ctx.metrics
    ids = body.customer_ids
    if len(ids) > settings.max_batch_customers:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "customer_ids"),
                    "msg": f"at most {settings.max_batch_customers} customer ids per request; got {len(ids)}",
                    "type": "too_long",
                }
            ]
        )
    as_of = resolve_as_of(body.as_of, settings)

    state = await from_store(ServingRows.state, ctx.serving, bundle, ids, as_of)
    assessments = assess_state(bundle, state, as_of, explain=body.explain)

    record = DecisionRecord(
        "risk_score",
        as_of,
        bundle.version,
        bundle.policy.version,
        bundle.feature_names,
        client=ctx.client,
    )
    results, rows = _shape(assessments, state, body, record)
    await log_decisions(ctx.decision_log, rows, settings)
    for r in results:
        metrics.scores.labels(r.band).inc()
    metrics.decisions_logged.inc(len(rows))
    response = RiskScoresResponse(
        model_version=bundle.version,
        policy_version=bundle.policy.version,
        as_of=as_of,
        results=results,
    )
    answer = json_response(response)
    if ctx.shadow is not None:  # after the answer is built: it cannot change it
        ctx.shadow.offer(lambda: _shadow_offer(bundle, state, results, record))
    return answer


def _shadow_offer(
    bundle: Bundle,
    state: ServingState,
    results: list[RiskResult],
    record: DecisionRecord,
) -> ShadowOffer:
    """What the shadow challenger needs of this request (built only when it is drawn)."""
    return ShadowOffer(
        created_at=record.created_at,
        as_of=record.as_of,
        champion_version=bundle.version,
        customer_ids=[r.customer_id for r in results],
        decision_ids=[r.decision_id for r in results],
        X=state.X,
        champion_probability=[r.probability for r in results],
        champion_flag=[r.early_warning for r in results],
    )


def _shape(
    assessments: list[RiskAssessment],
    state: ServingState,
    body: RiskScoresRequest,
    record: DecisionRecord,
) -> tuple[list[RiskResult], list[Decision]]:
    """Response items and decision-log rows, one per customer, sharing the decision id."""
    results: list[RiskResult] = []
    rows: list[Decision] = []
    for i, a in enumerate(assessments):
        decision_id = new_decision_id()
        reasons = [RiskReasonOut.of(r) for r in a.reasons]
        action = ActionOut(
            action=a.action.value,
            channel=a.action_channel,
            text_en=a.action_text_en,
            text_nl=a.action_text_nl,
        )
        result = RiskResult(
            customer_id=a.customer_id,
            probability=a.probability,
            band=a.band.value,
            early_warning=a.early_warning,
            reasons=reasons,
            recommended_action=action,
            decision_id=decision_id,
        )
        results.append(result)
        rows.append(
            record.row(
                decision_id,
                a.customer_id,
                inputs={
                    "customer_id": a.customer_id,
                    "as_of_requested": body.as_of.isoformat() if body.as_of else None,
                    "explain": body.explain,
                    "batch_size": len(body.customer_ids),
                    "serving_row": state.source(i),
                },
                features=a.features,
                outputs=result,
                exclude={"decision_id", "customer_id"},
            )
        )
    return results, rows

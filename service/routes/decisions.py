"""Logged decisions: ``GET /v1/decisions/{id}`` returns one with its explanation and reviews
(scopes ``collection``, ``checkout`` or ``review``); ``POST /v1/decisions/{id}/review``
records a person's review of an automated decision (scope ``review``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends

from service.decision_log import DecisionLogUnavailable
from service.deps import DecisionLogDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.routes.common import decision_log_unavailable
from service.schemas import DecisionOut, ReviewIn, ReviewOut
from service.settings import Scope

router = APIRouter(tags=["collection"])


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionOut,
    dependencies=[Depends(require_scope(Scope.COLLECTION, Scope.CHECKOUT, Scope.REVIEW))],
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="A logged decision: inputs, feature vector, outputs and versions",
)
def get_decision(decision_id: UUID, decision_log: DecisionLogDep) -> DecisionOut:
    # sync route: a database read (and possibly a flush of queued writes) blocks
    try:
        decision = decision_log.get(str(decision_id))
        reviews = [] if decision is None else decision_log.reviews_of(decision.decision_id)
    except DecisionLogUnavailable as exc:
        raise decision_log_unavailable(
            "the decision log cannot be read right now; retry later"
        ) from exc
    if decision is None:
        raise ProblemError(
            404,
            ProblemType.UNKNOWN_DECISION,
            "Unknown decision",
            f"no decision {decision_id} in the log (decisions are kept for the retention period)",
        )
    return DecisionOut.model_validate({**decision.to_dict(), "reviews": reviews})


@router.post(
    "/v1/decisions/{decision_id}/review",
    response_model=ReviewOut,
    status_code=201,
    dependencies=[Depends(require_scope(Scope.REVIEW))],
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Record a person's review of a decision (upheld or overturned, with the reason)",
)
def review_decision(decision_id: UUID, body: ReviewIn, decision_log: DecisionLogDep) -> ReviewOut:
    try:
        if decision_log.get(str(decision_id)) is None:
            raise ProblemError(
                404,
                ProblemType.UNKNOWN_DECISION,
                "Unknown decision",
                f"no decision {decision_id} in the log",
            )
        review = decision_log.add_review(str(decision_id), body.reviewer, body.outcome, body.reason)
    except DecisionLogUnavailable as exc:
        raise decision_log_unavailable(
            "the review could not be recorded now, so none was; retry later"
        ) from exc
    return ReviewOut.model_validate(review)

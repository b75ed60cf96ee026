"""Logged decisions: ``GET /v1/decisions/{id}`` returns one with its explanation and reviews
(scopes ``collection``, ``checkout``, ``review`` or ``auditor``); ``POST
/v1/decisions/{id}/review`` records a person's review of an automated decision (scope
``review``). A key reads only its own client's decisions of the kinds its scopes cover
(:mod:`service.tenancy`); any other decision is answered as unknown."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from service.decision_log import Decision, DecisionLog, DecisionLogUnavailable
from service.deps import Caller, DecisionLogDep, require_caller
from service.errors import ProblemError, ProblemType, problem_responses
from service.json_body import StrictJSONRoute
from service.routes.common import decision_log_unavailable
from service.schemas import DecisionOut, ReviewIn, ReviewOut
from service.settings import Scope
from service.tenancy import may_read, record_read

router = APIRouter(tags=["collection"], route_class=StrictJSONRoute)


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionOut,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="A logged decision: inputs, feature vector, outputs and versions",
)
def get_decision(
    decision_id: UUID,
    caller: Annotated[
        Caller,
        Depends(require_caller(Scope.COLLECTION, Scope.CHECKOUT, Scope.REVIEW, Scope.AUDITOR)),
    ],
    decision_log: DecisionLogDep,
) -> DecisionOut:
    # sync route: a database read (and possibly a flush of queued writes) blocks
    try:
        decision = _readable(decision_log, str(decision_id), caller)
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
    record_read(caller, decision)
    return DecisionOut.model_validate({**decision.to_dict(), "reviews": reviews})


def _readable(decision_log: DecisionLog, decision_id: str, caller: Caller) -> Decision | None:
    """The decision when ``caller`` may read it; None when it is unknown or not theirs
    (the same answer, so another client's decision ids cannot be probed)."""
    decision = decision_log.get(decision_id)
    return decision if decision is not None and may_read(caller, decision) else None


@router.post(
    "/v1/decisions/{decision_id}/review",
    response_model=ReviewOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Record a person's review of a decision (upheld or overturned, with the reason)",
)
def review_decision(
    decision_id: UUID,
    caller: Annotated[Caller, Depends(require_caller(Scope.REVIEW))],
    body: ReviewIn,
    decision_log: DecisionLogDep,
) -> ReviewOut:
    try:
        if _readable(decision_log, str(decision_id), caller) is None:
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

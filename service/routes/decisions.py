"""``GET /v1/decisions/{decision_id}``: a logged decision with its explanation (scope ``collection``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends

from service.decision_log import DecisionLogUnavailable
from service.deps import DecisionLogDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.schemas import DecisionOut
from service.settings import Scope

router = APIRouter(tags=["collection"])


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionOut,
    dependencies=[Depends(require_scope(Scope.COLLECTION))],
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="A logged decision: inputs, feature vector, outputs and versions",
)
def get_decision(decision_id: UUID, decision_log: DecisionLogDep) -> DecisionOut:
    # sync route: a database read (and possibly a flush of queued writes) blocks
    try:
        decision = decision_log.get(str(decision_id))
    except DecisionLogUnavailable as exc:
        raise ProblemError(
            503, ProblemType.DECISION_LOG_UNAVAILABLE, "Decision log unavailable", str(exc)
        ) from exc
    if decision is None:
        raise ProblemError(
            404,
            ProblemType.UNKNOWN_DECISION,
            "Unknown decision",
            f"no decision {decision_id} in the log (decisions are kept for the retention period)",
        )
    return DecisionOut.model_validate(decision.to_dict())

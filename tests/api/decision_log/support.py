"""Decisions to log in the decision log's tests, and ways to log them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from service.decision_log import Decision, IdempotencyBinding, feature_dict, new_decision_id


def row(customer_id="C1", created_at=None):
    return Decision(
        decision_id=new_decision_id(),
        created_at=created_at or datetime.now(UTC),
        kind="risk_score",
        customer_id=customer_id,
        as_of=date(2026, 1, 15),
        model_version="m1",
        policy_version="p1",
        inputs={"explain": True},
        features=feature_dict(["a", "b"], [1.0, float("nan")]),
        outputs={"probability": 0.2, "band": "high"},
    )


def bound(decision, scope="checkout:x", key="k", request_hash="h"):
    """``decision`` given under an idempotency key."""
    return replace(decision, idempotency=IdempotencyBinding(scope, key, request_hash))


def logged_ids(lg):
    return {d.decision_id for d in lg.iter_decisions()}


def log_in_one_turn(lg, *requests):
    """Each request's rows logged from one event-loop turn; results or exceptions."""
    import asyncio

    async def main():
        return await asyncio.gather(
            *(lg.log(rows, wait=True, timeout_s=5) for rows in requests), return_exceptions=True
        )

    return asyncio.run(main())

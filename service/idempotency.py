"""Idempotency keys of the pay-later route: whose key, which request, which decision.

A checkout that retries after a timeout sends the same ``Idempotency-Key`` and gets the
decision already given; the same key with another request is a 409. The binding of a
key to its decision is written by the decision log in the decision's own transaction
(:class:`service.decision_log.IdempotencyBinding`); this module names the key's owner,
fingerprints the request and looks up what a key already holds.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel

from service.decision_log import Decision, DecisionLog, DecisionLogUnavailable, IdempotencyBinding
from service.errors import ProblemError, ProblemType
from service.routes.common import decision_log_unavailable
from service.settings import Scope


def idempotency_scope(api_key_id: str) -> str:
    """Whose idempotency keys these are: one scope per API key (``checkout:`` + the
    key's short SHA-256 id, never the key), so two checkout clients that both use their
    order number as the key never get each other's decision or a 409.

    Rows stored before this (under the shared scope ``"checkout"``) simply match no
    request any more and leave with the retention purge: no migration is needed; a retry
    that straddles the upgrade, like one across an API-key rotation, decides afresh."""
    return f"{Scope.CHECKOUT.value}:{api_key_id}"


def request_hash(body: BaseModel) -> str:
    """SHA-256 of the request as parsed (JSON, sorted keys): equal for a true retry,
    whatever the order or spacing of the fields the client sent."""
    return hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()


def idempotency_binding(api_key_id: str, key: str, body: BaseModel) -> IdempotencyBinding:
    """The binding ``body`` asks for under ``key`` for the client ``api_key_id``."""
    return IdempotencyBinding(idempotency_scope(api_key_id), key, request_hash(body))


def decision_under_key(
    decision_log: DecisionLog,
    binding: IdempotencyBinding,
    held: tuple[str, str] | None = None,
) -> Decision | None:
    """The logged decision already given under ``binding``'s key (``held``, the binding
    that holds it, or looked up), None when there is none (or it was purged).

    A 409 problem when the key holds another request; a 503 when the log cannot answer.
    """
    try:
        if held is None:
            held = decision_log.decision_for_key(binding.scope, binding.key)
        if held is None:
            return None
        held_hash, decision_id = held
        if held_hash != binding.request_hash:
            raise ProblemError(
                409,
                ProblemType.IDEMPOTENCY_CONFLICT,
                "Idempotency key reused",
                "this Idempotency-Key was used for a different request; use a new key per order",
            )
        return decision_log.get(decision_id)
    except DecisionLogUnavailable as exc:
        raise decision_log_unavailable(
            "the idempotency key could not be checked, so no decision is given; retry with "
            "the same key"
        ) from exc

"""Who may read which logged decision: tenants (clients) and the kinds each scope covers.

Every API key acts for one client. A key reads its own client's decisions only, and of
those only the kinds its scopes cover: a checkout key sees pay-later decisions, never a
collection decision with its feature vector. A ``review`` key reads every kind of its own
client (reviewers look at both). An ``auditor`` key reads every client's decisions, and
each such read is logged. A decision a caller may not read is answered as unknown (404),
so its existence is not revealed either.
"""

from __future__ import annotations

from typing import Final

import structlog

from service.decision_log import Decision
from service.deps import Caller
from service.settings import Scope

log = structlog.get_logger("tijdig.audit")

#: Decision kind (``decisions.kind``) -> the scope that produced it and may read it back.
KIND_SCOPES: Final[dict[str, Scope]] = {
    "bnpl_decision": Scope.CHECKOUT,
    "risk_score": Scope.COLLECTION,
    "debit_date": Scope.COLLECTION,
    "affordability": Scope.COLLECTION,
}


def may_read(caller: Caller, decision: Decision) -> bool:
    """Whether ``caller`` may read ``decision`` (see the module docstring)."""
    if Scope.AUDITOR in caller.scopes:
        return True
    if decision.client != caller.client:
        return False
    if Scope.REVIEW in caller.scopes:
        return True
    return KIND_SCOPES.get(decision.kind) in caller.scopes


def record_read(caller: Caller, decision: Decision) -> None:
    """Log every read by an auditor key (who, which decision of which client), so each
    read of another client's decisions can be accounted for."""
    if Scope.AUDITOR in caller.scopes:
        log.info(
            "decision_read_by_auditor",
            api_key_id=caller.api_key_id,
            auditor_client=caller.client,
            decision_id=decision.decision_id,
            decision_client=decision.client,
            kind=decision.kind,
        )

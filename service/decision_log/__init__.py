"""The decision log: every answer the service gives, written durably for audit and replay.

One module per job:

- ``records``: the decision record (:class:`Decision`), its tables and ids;
- ``database``: the engine, direct DB-API statements, "not now" errors
  (:class:`DecisionLogUnavailable`); the package's one import of the shared store helpers;
- ``keys``: idempotency keys, bound in the transaction that logs their decision;
- ``writer``: the writer thread, group commit of queued submissions;
- ``loop``: :meth:`DecisionLog.log`, what the async routes await (on SQLite, committed on
  the event loop itself);
- ``retention``: the legal floor of the retention period and the purge's cutoff;
- ``queries``: reads, human reviews, key lookup, retention purge (and its dry run) and
  audit export (all, per customer, per client);
- ``shadow``: the shadow challenger's answers beside the champion's (``shadow_scores``);
- ``log``: :class:`DecisionLog` assembled from those, with :meth:`~DecisionLog.open` and
  :meth:`~DecisionLog.close` (which flushes everything queued).

This package re-exports the public names, so ``from service.decision_log import X`` works.
"""

from service.decision_log.database import DecisionLogUnavailable, make_engine
from service.decision_log.log import DecisionLog
from service.decision_log.loop import CHECKPOINT_EVERY_ROWS
from service.decision_log.records import (
    Decision,
    IdempotencyBinding,
    decisions,
    feature_dict,
    idempotency_keys,
    metadata,
    new_decision_id,
    reviews,
)
from service.decision_log.retention import LEGAL_MIN_RETENTION_DAYS, PurgeCount, RetentionRefused
from service.decision_log.shadow import SHADOW_COLUMNS, shadow_scores
from service.decision_log.writer import SQLITE_LOCK_WAIT_S

__all__ = [
    "CHECKPOINT_EVERY_ROWS",
    "LEGAL_MIN_RETENTION_DAYS",
    "SHADOW_COLUMNS",
    "SQLITE_LOCK_WAIT_S",
    "Decision",
    "DecisionLog",
    "DecisionLogUnavailable",
    "IdempotencyBinding",
    "PurgeCount",
    "RetentionRefused",
    "decisions",
    "feature_dict",
    "idempotency_keys",
    "make_engine",
    "metadata",
    "new_decision_id",
    "reviews",
    "shadow_scores",
]

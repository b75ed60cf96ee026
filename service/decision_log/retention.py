"""How long the decision log keeps decisions, enforced where the deletion happens.

Deployers of a high-risk AI system keep its logs at least six months (AI Act art. 26(6));
:data:`LEGAL_MIN_RETENTION_DAYS` is that floor. A log is opened with its configured
retention (never below the floor), and its purge refuses to delete anything younger,
whatever its caller asks: a ``--days 0`` typed by hand deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Six months, rounded up (AI Act art. 26(6)); the settings refuse less, so does the log.
LEGAL_MIN_RETENTION_DAYS = 183


class RetentionRefused(ValueError):
    """A purge asked to delete decisions younger than the retention period."""


@dataclass(frozen=True)
class PurgeCount:
    """What a purge with the same arguments deletes (or deleted): decisions created
    before ``cutoff``, their reviews and their idempotency keys."""

    cutoff: datetime
    decisions: int
    reviews: int
    idempotency_keys: int


def check_min_retention(min_retention_days: int) -> int:
    """``min_retention_days`` when it is at least the legal floor; ValueError otherwise."""
    if min_retention_days < LEGAL_MIN_RETENTION_DAYS:
        raise ValueError(
            f"the decision log's retention must be at least {LEGAL_MIN_RETENTION_DAYS} days "
            f"(AI Act art. 26(6)); got {min_retention_days}"
        )
    return min_retention_days


def purge_cutoff(days: int, min_retention_days: int, now: datetime | None = None) -> datetime:
    """The creation time before which a purge keeping ``days`` days deletes; raises
    :class:`RetentionRefused` when ``days`` is shorter than ``min_retention_days``."""
    if days < min_retention_days:
        raise RetentionRefused(
            f"refusing to purge decisions younger than {min_retention_days} days (the "
            f"configured retention, at least {LEGAL_MIN_RETENTION_DAYS}); got {days} days"
        )
    return (now or datetime.now(UTC)) - timedelta(days=days)

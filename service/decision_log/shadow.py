"""The shadow challenger's answers, logged beside the champion's (issue 23, item 6).

One row per shadow-scored risk decision: the champion's probability and flag as
answered (and logged in ``decisions`` under the same ``decision_id``), the challenger's
as it would have answered under its own policy. Nothing here is ever shown to a
customer; ``tijdig models compare`` reads it. The rows are written by the shadow
worker thread (:mod:`service.shadow`) in batches of their own, never in a request's
transaction, and purged with the decisions they shadow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.decision_log.base import DecisionLogBase
from service.decision_log.records import as_utc, metadata

shadow_scores = sa.Table(
    "shadow_scores",
    metadata,
    sa.Column("decision_id", sa.String(36), primary_key=True),  # the champion's decision
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("champion_version", sa.String(200), nullable=False),
    sa.Column("challenger_version", sa.String(200), nullable=False),
    sa.Column("champion_probability", sa.Double, nullable=False),
    sa.Column("challenger_probability", sa.Double, nullable=False),
    sa.Column("champion_flag", sa.Boolean, nullable=False),  # early warning as answered
    sa.Column("challenger_flag", sa.Boolean, nullable=False),  # under its own policy
)

#: The columns of a shadow row, in table order (what :meth:`ShadowRows.iter_shadow` yields).
SHADOW_COLUMNS = tuple(c.name for c in shadow_scores.columns)


class ShadowRows(DecisionLogBase):
    """Writing and reading shadow rows (a mixin of :class:`~service.decision_log.DecisionLog`)."""

    def log_shadow(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert shadow rows (dicts keyed by :data:`SHADOW_COLUMNS`) in one transaction
        of their own; returns how many. Called from the shadow worker thread only."""
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(shadow_scores.insert(), list(rows))
        return len(rows)

    def iter_shadow(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Shadow rows created in [``since``, ``until``), oldest first (UTC restored)."""
        query = sa.select(shadow_scores).order_by(
            shadow_scores.c.created_at, shadow_scores.c.decision_id
        )
        if since is not None:
            query = query.where(shadow_scores.c.created_at >= since)
        if until is not None:
            query = query.where(shadow_scores.c.created_at < until)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield {**row, "created_at": as_utc(row["created_at"])}

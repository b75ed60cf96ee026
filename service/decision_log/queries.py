"""Reading and maintaining the decision log: decisions by id, human reviews, the
decision an idempotency key names, the retention purge (with its dry run) and the audit
export (all of it, one customer's for an access request, or one client's).

Reads that must see the caller's own answers flush the writer first. A database that
cannot answer now is :class:`DecisionLogUnavailable` (the routes' 503).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from service.decision_log.database import (
    DirectStatement,
    sqlite_busy,
    unavailable,
    unavailable_on_database_error,
)
from service.decision_log.keys import KEY_HELD
from service.decision_log.records import (
    Decision,
    as_utc,
    decision_from_row,
    decisions,
    idempotency_keys,
    reviews,
)
from service.decision_log.retention import PurgeCount, purge_cutoff
from service.decision_log.shadow import shadow_scores
from service.decision_log.writer import WriterThread

#: One client's pay-later decisions on one customer, dated in [since, until): the
#: decline memory's read, asked before every pay-later decision.
PAY_LATER_DECISIONS = (
    sa.select(decisions.c.as_of, decisions.c.outputs)
    .where(
        decisions.c.customer_id == sa.bindparam("customer_id"),
        decisions.c.client == sa.bindparam("client"),
        decisions.c.kind == sa.bindparam("kind"),
        decisions.c.as_of >= sa.bindparam("since"),
        decisions.c.as_of < sa.bindparam("until"),
    )
    .order_by(decisions.c.as_of, decisions.c.decision_id)
)


class Queries(WriterThread):
    """The decision log's reads, reviews, purge and export (a mixin of :class:`DecisionLog`)."""

    # ------------------------------------------------------------------ decisions
    def get(self, decision_id: str) -> Decision | None:
        """One decision by id (flushes queued writes first, so it sees its own answers).

        Raises :class:`DecisionLogUnavailable` when the database cannot answer now
        (locked past the busy timeout, down) or the flush does not finish in time."""
        with unavailable_on_database_error("be read"):
            self.flush()
            with self.engine.connect() as conn:
                row = (
                    conn.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id))
                    .mappings()
                    .first()
                )
        return None if row is None else decision_from_row(row)

    def iter_decisions(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        customer_id: str | None = None,
        client: str | None = None,
    ) -> Iterator[Decision]:
        """Decisions created in [``since``, ``until``), oldest first (flushes first); only
        ``customer_id``'s and only ``client``'s when given."""
        self.flush()
        query = sa.select(decisions).order_by(decisions.c.created_at, decisions.c.decision_id)
        if since is not None:
            query = query.where(decisions.c.created_at >= since)
        if until is not None:
            query = query.where(decisions.c.created_at < until)
        if customer_id is not None:
            query = query.where(decisions.c.customer_id == customer_id)
        if client is not None:
            query = query.where(decisions.c.client == client)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield decision_from_row(row)

    def pay_later_decisions(
        self, customer_id: str, client: str, since: date, until: date
    ) -> list[tuple[date, dict[str, Any]]]:
        """``client``'s pay-later decisions on ``customer_id`` dated (``as_of``) in
        [``since``, ``until``): (day, outputs), oldest first. The decline memory's read
        (:mod:`models.decline_memory`). It does not flush: only days before ``until`` (the
        request's as_of) count, and those were committed long ago. Raises
        :class:`DecisionLogUnavailable` when the database cannot answer now."""
        values = {
            "customer_id": customer_id,
            "client": client,
            "kind": "bnpl_decision",
            "since": since,
            "until": until,
        }
        direct = self._read_direct(self._sqlite_pay_later, values)
        if direct is not None:  # outputs come back as JSON text through the DB-API
            return [(date.fromisoformat(day), json.loads(out)) for day, out in direct]
        with unavailable_on_database_error("be read"), self.engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(PAY_LATER_DECISIONS, values)]

    def count(self) -> int:
        """How many decisions the log holds (flushes first)."""
        self.flush()
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    # ------------------------------------------------------------------ reviews
    def add_review(
        self, decision_id: str, reviewer: str, outcome: str, reason: str
    ) -> dict[str, Any]:
        """Record a human review of a logged decision; returns the stored review.
        :class:`DecisionLogUnavailable` when the database cannot take it now."""
        review = {
            "review_id": str(uuid.uuid4()),
            "decision_id": decision_id,
            "created_at": datetime.now(UTC),
            "reviewer": reviewer,
            "outcome": outcome,
            "reason": reason,
        }
        with unavailable_on_database_error("store the review"), self.engine.begin() as conn:
            conn.execute(reviews.insert(), [review])
        return review

    def reviews_of(self, decision_id: str) -> list[dict[str, Any]]:
        """The reviews of a decision, oldest first (:class:`DecisionLogUnavailable` when
        the database cannot answer now)."""
        with unavailable_on_database_error("be read"), self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reviews)
                .where(reviews.c.decision_id == decision_id)
                .order_by(reviews.c.created_at, reviews.c.review_id)
            ).mappings()
            return [{**row, "created_at": as_utc(row["created_at"])} for row in rows]

    # ------------------------------------------------------------------ idempotency
    # The scope column is String(32): "checkout:" + 16 hex digits fits.
    def decision_for_key(self, scope: str, key: str) -> tuple[str, str] | None:
        """(request hash, decision id) already given for this idempotency key, if any.

        ``scope`` is whose key it is: the checkout route passes one per API key
        (``checkout:<key id>``), so two clients using the same key never meet. Keys are
        bound with their decisions (:class:`IdempotencyBinding`), so a key found here
        names a committed decision (unless the retention purge removed it since).

        Every checkout asks this before deciding. On SQLite it reads on the loops'
        connection, through a statement compiled once: ~10 µs of CPU against ~90 µs
        through a pooled connection and SQLAlchemy's execution. When that connection is
        in use by another thread or SQLite says busy or locked, it reads the pooled way,
        as before. :class:`DecisionLogUnavailable` when the database cannot answer now."""
        found = self._decision_for_key_direct(scope, key)
        if found is not None:
            return (found[0][0], found[0][1]) if found else None
        with unavailable_on_database_error("be read"), self.engine.connect() as conn:
            row = conn.execute(KEY_HELD, {"scope": scope, "key": key}).first()
        return None if row is None else (row[0], row[1])

    def _decision_for_key_direct(self, scope: str, key: str) -> list[tuple[str, str]] | None:
        """The key's binding read on the loops' connection ([] when there is none), or
        None when that cannot be done now without waiting: then the pooled path reads."""
        statements = self._sqlite_keys
        held = None if statements is None else statements.held
        return self._read_direct(held, {"scope": scope, "key": key})

    def _read_direct(
        self, statement: DirectStatement | None, values: dict[str, Any]
    ) -> list[tuple[Any, ...]] | None:
        """``statement``'s rows read on the loops' connection (SQLite), or None when that
        cannot be done now without waiting (PostgreSQL, the connection in use by another
        thread, SQLite busy): then the caller reads the pooled way."""
        if statement is None or not self._loop_conn_lock.acquire(blocking=False):
            return None
        try:
            if self._loop_conn is None:
                return None  # closed: the pooled path says so
            dbapi = self._loop_conn.driver_connection
            if dbapi.in_transaction:  # never: commits finish under the lock
                return None
            try:
                # fetchall: the statement runs to its end, so no read snapshot stays open
                rows = dbapi.execute(statement.sql, statement.params(values)).fetchall()
            except sqlite3.OperationalError as exc:
                if sqlite_busy(exc):
                    return None
                raise unavailable("be read", exc) from exc
            return [tuple(row) for row in rows]
        finally:
            self._loop_conn_lock.release()

    # ------------------------------------------------------------------ retention, audit
    def purge_older_than(self, days: int, now: datetime | None = None) -> int:
        """Delete decisions created more than ``days`` days ago, with their reviews,
        idempotency keys and shadow rows; returns how many decisions. Raises
        :class:`~service.decision_log.retention.RetentionRefused` when ``days`` is shorter
        than the log's retention (:attr:`min_retention_days`), deleting nothing."""
        cutoff = purge_cutoff(days, self.min_retention_days, now)
        self.flush()
        old = sa.select(decisions.c.decision_id).where(decisions.c.created_at < cutoff)
        with self.engine.begin() as conn:
            # a review belongs to its decision: it goes with it, whatever its own date
            conn.execute(reviews.delete().where(reviews.c.decision_id.in_(old)))
            conn.execute(idempotency_keys.delete().where(idempotency_keys.c.created_at < cutoff))
            conn.execute(shadow_scores.delete().where(shadow_scores.c.created_at < cutoff))
            result = conn.execute(decisions.delete().where(decisions.c.created_at < cutoff))
        return int(result.rowcount or 0)

    def purge_count(self, days: int, now: datetime | None = None) -> PurgeCount:
        """What :meth:`purge_older_than` with the same arguments would delete (a dry run;
        refuses the same way)."""
        cutoff = purge_cutoff(days, self.min_retention_days, now)
        self.flush()
        old = sa.select(decisions.c.decision_id).where(decisions.c.created_at < cutoff)

        def count(table: sa.Table, where: sa.ColumnElement[bool]) -> int:
            query = sa.select(sa.func.count()).select_from(table).where(where)
            return int(conn.execute(query).scalar_one())

        with self.engine.connect() as conn:
            return PurgeCount(
                cutoff=cutoff,
                decisions=count(decisions, decisions.c.created_at < cutoff),
                reviews=count(reviews, reviews.c.decision_id.in_(old)),
                idempotency_keys=count(idempotency_keys, idempotency_keys.c.created_at < cutoff),
            )

    def export(
        self,
        path: Path | str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        customer_id: str | None = None,
        client: str | None = None,
    ) -> int:
        """Write decisions as JSON lines (one decision per line, with its reviews) for an
        audit; only ``customer_id``'s (a data subject's access request, GDPR art. 15)
        and only ``client``'s (one tenant's) when given. Returns how many."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with path.open("w", encoding="utf-8") as fh:
            for decision in self.iter_decisions(
                since, until, customer_id=customer_id, client=client
            ):
                doc = {**decision.to_dict(), "reviews": self._exported_reviews(decision)}
                fh.write(json.dumps(doc, ensure_ascii=False, sort_keys=True))
                fh.write("\n")
                n += 1
        return n

    def _exported_reviews(self, decision: Decision) -> list[dict[str, Any]]:
        return [
            {**review, "created_at": review["created_at"].isoformat()}
            for review in self.reviews_of(decision.decision_id)
        ]

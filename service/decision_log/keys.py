"""Idempotency-key binding: a decision's key is bound in the transaction that logs it.

Whichever path commits the decision (the event loop's or the writer thread's), its key is
bound first in the same transaction: first writer wins, and a decision whose key a
concurrent call holds is not logged, so the log never holds a decision nobody was given
and a key never points to a decision that was not committed (see
:class:`~service.decision_log.records.IdempotencyBinding`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa

from service.decision_log.database import DecisionLogUnavailable, DirectStatement
from service.decision_log.records import Decision, decisions, idempotency_keys

# The statements of key binding; parameters named so both paths pass the same dicts.
KEY_HELD = sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.decision_id).where(
    (idempotency_keys.c.scope == sa.bindparam("scope"))
    & (idempotency_keys.c.key == sa.bindparam("key"))
)
_KEY_DROP = sa.delete(idempotency_keys).where(
    (idempotency_keys.c.scope == sa.bindparam("scope"))
    & (idempotency_keys.c.key == sa.bindparam("key"))
    & (idempotency_keys.c.decision_id == sa.bindparam("decision_id"))
)
_DECISION_EXISTS = sa.select(decisions.c.decision_id).where(
    decisions.c.decision_id == sa.bindparam("decision_id")
)
#: Tries to bind one key: a binding whose decision is gone is dropped and the insert
#: tried again; on SQLite (one writer at a time) the second try always settles it.
_BIND_ATTEMPTS = 3


def _key_insert(dialect_name: str) -> Any:
    """``INSERT INTO idempotency_keys .. ON CONFLICT DO NOTHING`` for the dialect."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(idempotency_keys).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(idempotency_keys).on_conflict_do_nothing()


class KeyStatements:
    """The key statements compiled once for SQLite's DB-API (the loop's and the writer's
    connections, and the fast :meth:`DecisionLog.decision_for_key`)."""

    def __init__(self, dialect: sa.engine.Dialect) -> None:
        self.insert = DirectStatement(_key_insert(dialect.name), dialect)
        self.held = DirectStatement(KEY_HELD, dialect)
        self.drop = DirectStatement(_KEY_DROP, dialect)
        self.exists = DirectStatement(_DECISION_EXISTS, dialect)


class _KeyOps(Protocol):
    """What binding keys needs, inside the transaction that logs the decisions."""

    def insert(self, values: dict[str, Any]) -> bool: ...  # True: inserted
    def held(self, values: dict[str, Any]) -> tuple[str, str] | None: ...
    def exists(self, values: dict[str, Any]) -> bool: ...
    def drop(self, values: dict[str, Any]) -> None: ...


class SqliteKeyOps:
    """:class:`_KeyOps` on a SQLite DB-API connection, through :class:`KeyStatements`."""

    def __init__(self, dbapi_conn: Any, statements: KeyStatements) -> None:
        self.conn, self.st = dbapi_conn, statements

    def insert(self, values: dict[str, Any]) -> bool:
        cursor = self.conn.execute(self.st.insert.sql, self.st.insert.params(values))
        return int(cursor.rowcount) > 0  # 0: ON CONFLICT DO NOTHING did nothing

    def held(self, values: dict[str, Any]) -> tuple[str, str] | None:
        rows = self.conn.execute(self.st.held.sql, self.st.held.params(values)).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def exists(self, values: dict[str, Any]) -> bool:
        return bool(self.conn.execute(self.st.exists.sql, self.st.exists.params(values)).fetchall())

    def drop(self, values: dict[str, Any]) -> None:
        self.conn.execute(self.st.drop.sql, self.st.drop.params(values))


@functools.cache
def _returning_key_insert(dialect_name: str) -> Any:
    """:func:`_key_insert` with RETURNING, built once per dialect: SQLAlchemy 2 keeps an
    INSERT's rowcount only on request."""
    return _key_insert(dialect_name).returning(idempotency_keys.c.key)


class SqlAlchemyKeyOps:
    """:class:`_KeyOps` on a SQLAlchemy connection (PostgreSQL)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.insert_statement = _returning_key_insert(conn.dialect.name)

    def insert(self, values: dict[str, Any]) -> bool:
        return self.conn.execute(self.insert_statement, values).first() is not None

    def held(self, values: dict[str, Any]) -> tuple[str, str] | None:
        row = self.conn.execute(KEY_HELD, values).first()
        return None if row is None else (row[0], row[1])

    def exists(self, values: dict[str, Any]) -> bool:
        return self.conn.execute(_DECISION_EXISTS, values).first() is not None

    def drop(self, values: dict[str, Any]) -> None:
        self.conn.execute(_KEY_DROP, values)


def bind_keys(ops: _KeyOps, rows: Sequence[Decision]) -> list[Decision]:
    """Bind the idempotency keys of ``rows`` in the caller's transaction, before their
    decisions are inserted; returns the decisions to insert: those without a key and
    those whose key this bound. The others get ``held_by`` (the binding that holds).

    Keys are bound in (scope, key) order, so two PostgreSQL transactions binding the same
    keys wait for each other instead of deadlocking."""
    bound = [d for d in rows if d.idempotency is not None]
    if not bound:
        return list(rows)
    forget_bindings(bound)  # a batch retried row by row starts afresh
    accepted: set[str] = set()  # decisions of this transaction whose key was bound
    for d in sorted(bound, key=_binding_order):
        held = _bind_key(ops, d, accepted)
        if held is None:
            accepted.add(d.decision_id)
        else:
            assert d.idempotency is not None
            d.idempotency.held_by = held
    return [d for d in rows if not _key_held(d)]


def _binding_order(d: Decision) -> tuple[str, str]:
    assert d.idempotency is not None
    return d.idempotency.scope, d.idempotency.key


def _bind_key(ops: _KeyOps, d: Decision, accepted: set[str]) -> tuple[str, str] | None:
    """None when ``d``'s key is now bound to ``d``; else the binding that holds it."""
    binding = d.idempotency
    assert binding is not None
    values = {
        "scope": binding.scope,
        "key": binding.key,
        "request_hash": binding.request_hash,
        "decision_id": d.decision_id,
        "created_at": d.created_at,  # the key leaves with its decision at the purge
    }
    for _ in range(_BIND_ATTEMPTS):
        if ops.insert(values):
            return None
        held = ops.held(values)
        if held is None:  # its holder was deleted since the insert (a purge): try again
            continue
        holder = {"scope": binding.scope, "key": binding.key, "decision_id": held[1]}
        if held[1] in accepted or ops.exists(holder):
            return held
        # A binding whose decision is gone (purged on its own): the key is free again.
        ops.drop(holder)
    raise DecisionLogUnavailable("the idempotency key could not be bound (contended); retry")


def forget_bindings(rows: Sequence[Decision]) -> None:
    """Clear ``held_by`` of ``rows``: their transaction was rolled back."""
    for d in rows:
        if d.idempotency is not None:
            d.idempotency.held_by = None


def _key_held(d: Decision) -> bool:
    """True when a commit left ``d`` out of the log: a concurrent call holds its key."""
    return d.idempotency is not None and d.idempotency.held_by is not None


def logged_count(rows: Sequence[Decision]) -> int:
    """How many of committed ``rows`` are in the log (not held by another call's key)."""
    return sum(1 for d in rows if not _key_held(d))


def held_keys(rows: Sequence[Decision]) -> dict[str, tuple[str, str]]:
    """decision id -> the binding that holds its key, for the rows that were not logged."""
    return {
        d.decision_id: d.idempotency.held_by
        for d in rows
        if d.idempotency is not None and d.idempotency.held_by is not None
    }

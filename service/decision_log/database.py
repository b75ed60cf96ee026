"""How the decision log talks to its database: the engine, statements run through the
DB-API directly, and the errors that mean "not now" (:class:`DecisionLogUnavailable`).

SQLite runs in WAL mode (``synchronous=NORMAL``); PostgreSQL works with the same code.
This is the package's one import of the shared SQLite/PostgreSQL helpers.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler

from features.db import configure_sqlite, create_tables

__all__ = [
    "DecisionLogUnavailable",
    "DirectInsert",
    "DirectStatement",
    "commit_failed",
    "create_tables",
    "make_engine",
    "sqlite_busy",
    "unavailable",
    "unavailable_on_database_error",
]


class DecisionLogUnavailable(RuntimeError):
    """The log cannot take or commit decisions right now; the caller must not answer."""


#: Database errors that mean "not now" (locked past the busy timeout, server down or
#: unreachable, no pooled connection in time), not "wrong request": a reader answers 503.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # the connection pool's
    TimeoutError,  # a flush that did not commit in time
)


@contextlib.contextmanager
def unavailable_on_database_error(doing: str) -> Iterator[None]:
    """Turn a database that cannot answer now into :class:`DecisionLogUnavailable` (the
    routes' 503), naming only the error type (the message may hold SQL or paths)."""
    try:
        yield
    except DecisionLogUnavailable:
        raise
    except _UNAVAILABLE_ERRORS as exc:
        raise unavailable(doing, exc) from exc


def unavailable(doing: str, exc: BaseException) -> DecisionLogUnavailable:
    """The decision log could not do ``doing`` now, naming only the error type (the
    message may hold SQL or paths)."""
    return DecisionLogUnavailable(
        f"the decision log could not {doing} ({type(exc).__name__}); retry later"
    )


def commit_failed(exc: Exception) -> DecisionLogUnavailable:
    """What the callers of a commit that failed are told."""
    return DecisionLogUnavailable(f"decision log commit failed: {type(exc).__name__}: {exc}")


def sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (and their extended codes): "not now", not broken."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


def _json_text(value: Any) -> str:
    """The JSON columns' text: compact, by orjson. ``json.dumps`` spent 47 µs per logged
    risk score on its ~4.5 KB (float formatting, mostly), 8 % of a served request's CPU;
    orjson takes 3 µs. NaN becomes null, so the text is valid JSON (PostgreSQL refuses
    NaN); numpy scalars and non-string keys are written as json.dumps would."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, their folder is created."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False}, json_serializer=_json_text
        )
        # Readers and admin calls wait up to 5 s for the lock; the writer and the loop
        # connection switch the wait off and poll themselves (see DecisionLog.open()).
        configure_sqlite(engine, busy_timeout_ms=5_000)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, json_serializer=_json_text)


class DirectStatement:
    """A Core statement run through the DB-API directly: SQLAlchemy compiles it once, and
    :meth:`params` converts values with its parameters' types' bind processors, so they
    are exactly what ``conn.execute(statement, values)`` sends (tested), without its
    per-execution work."""

    def __init__(self, statement: sa.sql.ClauseElement, dialect: sa.engine.Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        self.binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or []
        ]

    def params(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """The DB-API parameters for ``values`` (name -> value), in the SQL's order."""
        return tuple(
            values[name] if bind is None else bind(values[name]) for name, bind in self.binds
        )


class DirectInsert(DirectStatement):
    """``table.insert()`` as a :class:`DirectStatement`: rows are stored exactly as
    ``conn.execute(table.insert(), rows)`` stores them. A one-row commit that way took
    219 µs, 63 µs of it SQLite's; the decision-log writer commits once per request or two
    under load.
    """

    def __init__(self, table: sa.Table, dialect: sa.engine.Dialect) -> None:
        super().__init__(table.insert(), dialect)

    def executemany(self, dbapi_conn: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` on ``dbapi_conn`` in the caller's transaction."""
        dbapi_conn.executemany(self.sql, [self.params(row) for row in rows])

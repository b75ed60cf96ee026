"""Database plumbing shared by tijdig's stores: how SQLite engines connect, safe table
creation, URLs fit for logs, and the event store's connections (pooled, per-thread
request connections, the write transaction) on SQLite or PostgreSQL.

Nothing here knows the event tables; :mod:`features.tables` does.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = [
    "SNAPSHOT_SQL_PG",
    "SQLITE_IN_CHUNK",
    "StoreConnections",
    "configure_sqlite",
    "create_tables",
    "gc_paused",
    "public_url",
]

SQLITE_IN_CHUNK: Final = 900  # ids per IN (...) list on SQLite (read paths)
_SQLITE_LOOKUP_CHUNK: Final = 5_000  # ids per IN (...) list for ingest look-ups
# The first statement of a read on PostgreSQL that must see one snapshot throughout.
SNAPSHOT_SQL_PG: Final = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def create_tables(
    engine: sa.Engine, metadata: sa.MetaData, *, schema: str | None = None, attempts: int = 10
) -> None:
    """``metadata.create_all``, safe when several processes create the same fresh database
    at once — uvicorn workers starting together. Each checks, finds nothing, and creates;
    the losers fail ("table ... already exists" on SQLite, a duplicate type on
    PostgreSQL, or a lock held by the winner) and, after a short randomised pause, check
    again and find the tables. Measured before: 4 processes opening one fresh decision log
    at once, 13 of 60 opens failed; that worker then answered every request with 503.
    """
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if schema is not None:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                metadata.create_all(conn, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1) * (1 + random.random()))


def public_url(url: str | sa.URL) -> str:
    """``url`` fit for a message or a log line: the password masked."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def configure_sqlite(
    engine: sa.Engine,
    *,
    busy_timeout_ms: int,
    cache_kib: int | None = None,
    sqlalchemy_begins: bool = False,
) -> None:
    """How every tijdig SQLite engine connects: WAL, ``synchronous=NORMAL`` (durable at
    checkpoints, never corrupt), and the caller's lock wait and page cache.

    ``sqlalchemy_begins`` has SQLAlchemy emit BEGIN (with the mode a connection's
    ``tijdig_sqlite_begin`` execution option asks for) instead of the sqlite3 module's
    implicit transactions, so transactions mean what they say; the event store wants
    that, the decision log issues its own BEGIN IMMEDIATE.
    """

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        if sqlalchemy_begins:
            dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # First: switching to WAL takes a lock too.
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        if cache_kib is not None:
            cur.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        cur.close()

    sa.event.listen(engine, "connect", on_connect)
    if sqlalchemy_begins:
        sa.event.listen(engine, "begin", _sqlite_on_begin)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("tijdig_sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Bulk conversions allocate millions of tuples; the cyclic GC would rescan them over
    and over (3-4x slower). Nothing here makes cycles, so pause it for the duration."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class StoreConnections:
    """The event store's database (``sqlite:///path.db`` or
    ``postgresql+psycopg://user@host:port/db``) and the ways it is connected to.

    ``schema`` (PostgreSQL only) is the ``search_path`` of every connection. Safe to share
    across threads: SQLAlchemy pools the connections, and the request path keeps one
    connection of its own per thread.
    """

    def __init__(self, url: str, schema: str | None = None):
        self.url = url
        self.schema = schema
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._fast_conns: list[Any] = []
        if self.dialect == "sqlite":
            if schema is not None:
                raise ValueError("schema= is for PostgreSQL; an SQLite store is its own file")
            database = parsed.database
            if not database or database == ":memory:" or database.startswith("file:"):
                raise ValueError(f"the SQLite event store needs a file path, got {url!r}")
            self._sqlite_path = str(Path(database))
            Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                parsed,
                connect_args={"check_same_thread": False, "timeout": 30.0},
                pool_size=5,
                max_overflow=10,
            )
            # 64 MiB page cache: index upkeep on big ingests.
            configure_sqlite(
                self.engine, busy_timeout_ms=30_000, cache_kib=65_536, sqlalchemy_begins=True
            )
            self._param = "?"
        elif self.dialect == "postgresql":
            if parsed.get_driver_name() != "psycopg":
                raise ValueError(f"PostgreSQL is supported through psycopg 3: {url!r}")
            connect_args: dict[str, Any] = {"connect_timeout": 10}
            if schema is not None:
                if not schema.replace("_", "").isalnum():
                    raise ValueError(f"schema name must be alphanumeric/underscore: {schema!r}")
                connect_args["options"] = f"-csearch_path={schema}"
            self.engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
            self._param = "%s"
        else:
            raise ValueError(f"unsupported event store URL (sqlite or postgresql): {url!r}")

    def dispose(self) -> None:
        """Close every connection (pooled and per-thread)."""
        with self._lock:
            conns, self._fast_conns = self._fast_conns, []
        for conn in conns:
            with suppress(Exception):
                conn.close()
        self._local = threading.local()
        self.engine.dispose()

    # ------------------------------------------------------------------ SQL helpers

    def _in_clause(self, column: str, n: int) -> str:
        return f"{column} IN ({', '.join([self._param] * n)})"

    def _lookup(
        self, conn: sa.Connection, select: str, columns: list[str], key: str, ids: set[str]
    ) -> dict[str, tuple[Any, ...]]:
        """key value -> row for the ``ids`` found by ``select`` (``SELECT <columns> FROM
        <table>``), inside ``conn``'s transaction; ``IN`` lists in chunks on SQLite."""
        if not ids:
            return {}
        dbapi: Any = conn.connection.driver_connection
        cur = dbapi.cursor()
        ki = columns.index(key)
        found: dict[str, tuple[Any, ...]] = {}
        ordered = sorted(ids)
        if self.dialect == "postgresql":
            cur.execute(select + f" WHERE {key} = ANY(%s)", (ordered,))
            for row in cur.fetchall():
                found[row[ki]] = tuple(row)
        else:
            for i in range(0, len(ordered), _SQLITE_LOOKUP_CHUNK):
                chunk = ordered[i : i + _SQLITE_LOOKUP_CHUNK]
                cur.execute(select + " WHERE " + self._in_clause(key, len(chunk)), chunk)
                for row in cur.fetchall():
                    found[row[ki]] = tuple(row)
        cur.close()
        return found

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _raw(self, *, snapshot: bool) -> Iterator[Any]:
        """A pooled DBAPI connection in one read transaction (a consistent snapshot)."""
        proxy = self.engine.raw_connection()
        try:
            dbapi: Any = proxy.driver_connection
            if self.dialect == "sqlite":
                dbapi.execute("BEGIN")
            elif snapshot:
                dbapi.execute(SNAPSHOT_SQL_PG)
            try:
                yield dbapi
            finally:
                if self.dialect == "sqlite":
                    dbapi.execute("ROLLBACK")
                else:
                    dbapi.rollback()
        finally:
            proxy.close()

    @contextmanager
    def _write_connection(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # BEGIN IMMEDIATE: take the write lock up front, so checks and insert see
                # one state and concurrent ingests serialise instead of deadlocking.
                conn = conn.execution_options(tijdig_sqlite_begin="IMMEDIATE")
                yield conn
            else:
                yield conn

    def _fast_sqlite(self) -> Any:
        """This thread's own read-only sqlite3 connection for the request path."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            import sqlite3

            conn = sqlite3.connect(
                self._sqlite_path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._lock:
                self._fast_conns.append(conn)
        return conn

    def _fast_pg(self) -> Any:
        """This thread's own psycopg connection for the request path.

        Taken from the engine (same URL, connect args, search_path) and detached from its
        pool, so a request pays neither a pool checkout nor the pre-ping round trip.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            proxy = self.engine.raw_connection()
            conn = proxy.driver_connection
            proxy.detach()
            self._local.conn = conn
            with self._lock:
                self._fast_conns.append(conn)
        return conn

    def _drop_fast_pg(self, conn: Any) -> None:
        """Forget this thread's request connection after the server went away (restart,
        idle timeout); the next :meth:`_fast_pg` reconnects."""
        with self._lock:
            if conn in self._fast_conns:
                self._fast_conns.remove(conn)
        conn.close()
        self._local.conn = None

    def _pg_request(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """One read on this thread's request connection (reconnect once if it dropped)."""
        import psycopg

        for attempt in (1, 2):
            conn = self._fast_pg()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params, prepare=True)
                    rows = cur.fetchall()
                conn.rollback()
                return rows
            except psycopg.OperationalError:
                self._drop_fast_pg(conn)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

"""The decision log: every answer the service gives, written durably for audit and replay.

Each risk answer becomes one row: ``decision_id`` (a time-ordered UUIDv7), ``created_at``
(UTC), ``kind``, ``customer_id``, ``as_of``, ``model_version``, ``policy_version``, the
request inputs, the feature vector (name -> value) and the outputs (probability, band,
flag, reasons, action).
With the bundle named by ``model_version`` and its policy, a decision can be replayed.

Write strategy — **group commit**. Requests hand their rows to :meth:`DecisionLog.submit`
(a bounded queue, never blocks the event loop) and get a future; one writer thread takes
whatever is queued (up to ``batch_size`` rows), inserts it in one transaction and resolves
the futures. The risk route awaits its future before answering (setting
``decision_log_wait_for_commit``), so an answer a client holds is always in the log —
and concurrent requests share one commit instead of paying one each. With waiting off
the answer goes out at once and the row commits a few milliseconds later;
:meth:`get` flushes first, so a decision is always readable right after its answer.
A full queue (the database stalled) is refused with :class:`DecisionLogUnavailable`
rather than holding memory or blocking: no answer without a log entry.
:meth:`close` flushes everything queued.

On SQLite the routes take a shorter path, :meth:`DecisionLog.log`: the rows of every
request handled in one turn of the event loop are committed together *on the loop
thread*, by a callback scheduled right after them, on a connection of its own. No thread
hop, no cross-thread future: with the writer thread the hand-over (queue, futures, waking
the loop, the GIL passed back and forth) cost more than the insert itself — one worker
under load answered ~45 % more requests with logging stubbed out. The commit is a
``BEGIN IMMEDIATE`` tried once: when another process holds the write lock, the batch
goes to the writer thread instead of the loop waiting for it. The loop's connection
never checkpoints the WAL (a checkpoint can take milliseconds); it asks the writer
thread to, every :data:`CHECKPOINT_EVERY_ROWS` rows.

SQLite runs in WAL mode (``synchronous=NORMAL``); PostgreSQL works with the same code
(through the writer thread: a network round trip must not block the loop).

Idempotency keys are bound in the transaction that logs their decision, whichever path
commits it (see :class:`IdempotencyBinding`): first writer wins, and a decision whose key
a concurrent call holds is not logged, so the log never holds a decision nobody was given
and a key never points to a decision that was not committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler

from features.store import configure_sqlite, create_tables

_log = structlog.get_logger("tijdig.decision_log")

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
)


# A human reviewer's outcome on an automated decision (CCD2 right to human intervention,
# GDPR art. 22(3)); a decision keeps every review, newest last.
reviews = sa.Table(
    "decision_reviews",
    metadata,
    sa.Column("review_id", sa.String(36), primary_key=True),
    sa.Column("decision_id", sa.String(36), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# Idempotency keys of retried calls (a checkout retries on a timeout): the same key with
# the same request returns the decision already given; with another request it is refused.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("decision_id", sa.String(36), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


class DecisionLogUnavailable(RuntimeError):
    """The log cannot take or commit decisions right now; the caller must not answer."""


@dataclass(eq=False)
class IdempotencyBinding:
    """The idempotency key a decision is given under, bound in the decision's own
    transaction: the key row is inserted first (conflict: do nothing); only when it was
    inserted is the decision logged. When a concurrent call holds the key, the commit
    leaves the decision out of the log and sets ``held_by`` to the binding that holds,
    (request hash, decision id) — committed, since a binding commits with its decision.

    ``scope`` is whose key it is (the checkout route uses one scope per API key).
    """

    scope: str
    key: str
    request_hash: str
    #: Set by the commit: the binding that holds the key when it was not this decision's.
    held_by: tuple[str, str] | None = None


@dataclass(frozen=True)
class Decision:
    """One logged decision (a row of the ``decisions`` table), optionally bound to an
    idempotency key (not part of the row, see :class:`IdempotencyBinding`)."""

    decision_id: str
    created_at: datetime
    kind: str
    customer_id: str
    as_of: date
    model_version: str
    policy_version: str
    inputs: dict[str, Any]
    features: dict[str, float | None]
    outputs: dict[str, Any]
    idempotency: IdempotencyBinding | None = field(default=None, compare=False, repr=False)

    def row(self) -> dict[str, Any]:
        """The ``decisions`` table row (dates as dates: the column types convert them)."""
        return {
            "decision_id": self.decision_id,
            "created_at": self.created_at,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "as_of": self.as_of,
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            "inputs": self.inputs,
            "features": self.features,
            "outputs": self.outputs,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO strings): the export and the API."""
        return {
            "decision_id": self.decision_id,
            "created_at": self.created_at.isoformat(),
            "kind": self.kind,
            "customer_id": self.customer_id,
            "as_of": self.as_of.isoformat(),
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            "inputs": self.inputs,
            "features": self.features,
            "outputs": self.outputs,
        }


def new_decision_id() -> str:
    """A UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then 74 random bits.

    Time-ordered, so every new row lands at the right edge of the primary-key index
    instead of on a random page: a one-row commit on a 200,000-row SQLite log took
    ~230 µs of CPU instead of ~270-290 µs with uuid4, and the gap grows with the log (a
    random key's page is less and less often in the cache). Ids also sort by time, which
    an auditor paging through an export appreciates. Still unguessable: 74 bits from
    ``os.urandom``. (Python 3.14 has ``uuid.uuid7``; this is the same layout.)
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are used
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76  # version
        | (rand >> 68) << 64  # rand_a: 12 bits
        | 0b10 << 62  # variant
        | rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b: 62 bits
    )
    return str(uuid.UUID(int=value))


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
def _unavailable_on_database_error(doing: str) -> Iterator[None]:
    """Turn a database that cannot answer now into :class:`DecisionLogUnavailable` (the
    routes' 503), naming only the error type (the message may hold SQL or paths)."""
    try:
        yield
    except DecisionLogUnavailable:
        raise
    except _UNAVAILABLE_ERRORS as exc:
        raise _unavailable(doing, exc) from exc


def _unavailable(doing: str, exc: BaseException) -> DecisionLogUnavailable:
    """The decision log could not do ``doing`` now, naming only the error type (the
    message may hold SQL or paths)."""
    return DecisionLogUnavailable(
        f"the decision log could not {doing} ({type(exc).__name__}); retry later"
    )


def _commit_failed(exc: Exception) -> DecisionLogUnavailable:
    return DecisionLogUnavailable(f"decision log commit failed: {type(exc).__name__}: {exc}")


class _CallerGaveUp(Exception):
    """A submission of the batch being committed was cancelled (its caller's wait timed
    out and it answered that no decision was given): the transaction is rolled back and
    the batch committed again without it."""


def _claim(batch: Sequence[tuple[list[Decision], Future[int]]]) -> bool:
    """Mark each submission of ``batch`` not yet claimed as running, just before its rows
    are committed; False when one was cancelled instead (its caller gave up). Once
    claimed (running), a submission can no longer be cancelled, so what is committed is
    answered. Only the writer marks its futures running."""
    every = True
    for _, fut in batch:
        if not fut.running() and not fut.set_running_or_notify_cancel():
            every = False
    return every


def _log_unawaited_failure(done: asyncio.Future[int] | Future[int]) -> None:
    """An unawaited commit that failed still says so (the caller already answered); for
    the loop's own futures and the writer thread's alike."""
    if not done.cancelled() and done.exception() is not None:
        _log.error("decision_log_commit_failed_unawaited", error=str(done.exception()))


def feature_dict(names: Sequence[str], values: Sequence[float | None]) -> dict[str, float | None]:
    """Feature vector as JSON-safe name -> value (NaN, i.e. unknown, becomes None).
    ``values`` are Python floats (``ndarray.tolist()``); ``v != v`` is the NaN test
    without a call (5 µs for 84 features instead of 9 µs, once per logged decision)."""
    return {n: (None if v != v else v) for n, v in zip(names, values, strict=True)}


_STOP = object()
_CHECKPOINT = object()
SQLITE_LOCK_WAIT_S = 5.0  # the writer gives up (503 to the requests) after this long
#: Rows committed from the event loop between two WAL checkpoints run by the writer
#: thread (about SQLite's own default of 1,000 pages: a logged row fills about a page).
CHECKPOINT_EVERY_ROWS = 1000


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
        # connection switch the wait off and poll themselves (see open()).
        configure_sqlite(engine, busy_timeout_ms=5_000)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, json_serializer=_json_text)


class _DirectStatement:
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
        return tuple(
            values[name] if bind is None else bind(values[name]) for name, bind in self.binds
        )


class _DirectInsert(_DirectStatement):
    """``table.insert()`` as a :class:`_DirectStatement`: rows are stored exactly as
    ``conn.execute(table.insert(), rows)`` stores them. A one-row commit that way took
    219 µs, 63 µs of it SQLite's; the decision-log writer commits once per request or two
    under load.
    """

    def __init__(self, table: sa.Table, dialect: sa.engine.Dialect) -> None:
        super().__init__(table.insert(), dialect)

    def executemany(self, dbapi_conn: Any, rows: Sequence[dict[str, Any]]) -> None:
        dbapi_conn.executemany(self.sql, [self.params(row) for row in rows])


# The statements of key binding; parameters named so both paths pass the same dicts.
_KEY_HELD = sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.decision_id).where(
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


class _KeyStatements:
    """The key statements compiled once for SQLite's DB-API (the loop's and the writer's
    connections, and the fast :meth:`DecisionLog.decision_for_key`)."""

    def __init__(self, dialect: sa.engine.Dialect) -> None:
        self.insert = _DirectStatement(_key_insert(dialect.name), dialect)
        self.held = _DirectStatement(_KEY_HELD, dialect)
        self.drop = _DirectStatement(_KEY_DROP, dialect)
        self.exists = _DirectStatement(_DECISION_EXISTS, dialect)


class _KeyOps(Protocol):
    """What binding keys needs, inside the transaction that logs the decisions."""

    def insert(self, values: dict[str, Any]) -> bool: ...  # True: inserted
    def held(self, values: dict[str, Any]) -> tuple[str, str] | None: ...
    def exists(self, values: dict[str, Any]) -> bool: ...
    def drop(self, values: dict[str, Any]) -> None: ...


class _SqliteKeyOps:
    def __init__(self, dbapi_conn: Any, statements: _KeyStatements) -> None:
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


class _SqlAlchemyKeyOps:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.insert_statement = _returning_key_insert(conn.dialect.name)

    def insert(self, values: dict[str, Any]) -> bool:
        return self.conn.execute(self.insert_statement, values).first() is not None

    def held(self, values: dict[str, Any]) -> tuple[str, str] | None:
        row = self.conn.execute(_KEY_HELD, values).first()
        return None if row is None else (row[0], row[1])

    def exists(self, values: dict[str, Any]) -> bool:
        return self.conn.execute(_DECISION_EXISTS, values).first() is not None

    def drop(self, values: dict[str, Any]) -> None:
        self.conn.execute(_KEY_DROP, values)


def _bind_keys(ops: _KeyOps, rows: Sequence[Decision]) -> list[Decision]:
    """Bind the idempotency keys of ``rows`` in the caller's transaction, before their
    decisions are inserted; returns the decisions to insert: those without a key and
    those whose key this bound. The others get ``held_by`` (the binding that holds).

    Keys are bound in (scope, key) order, so two PostgreSQL transactions binding the same
    keys wait for each other instead of deadlocking."""
    bound = [d for d in rows if d.idempotency is not None]
    if not bound:
        return list(rows)
    _forget_bindings(bound)  # a batch retried row by row starts afresh
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


def _forget_bindings(rows: Sequence[Decision]) -> None:
    for d in rows:
        if d.idempotency is not None:
            d.idempotency.held_by = None


def _key_held(d: Decision) -> bool:
    """True when a commit left ``d`` out of the log: a concurrent call holds its key."""
    return d.idempotency is not None and d.idempotency.held_by is not None


def _logged_count(rows: Sequence[Decision]) -> int:
    return sum(1 for d in rows if not _key_held(d))


def _sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (and their extended codes): "not now", not broken."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


class DecisionLog:
    """Durable, batched decision log. Open with :meth:`open`, stop with :meth:`close`.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the log database.
    batch_size : int, default 512
        Most rows committed in one transaction.
    max_queue : int, default 20_000
        Most submissions waiting for the writer; beyond it :meth:`submit` refuses.
    """

    def __init__(self, url: str, *, batch_size: int = 512, max_queue: int = 20_000) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError(
                f"batch_size and max_queue must be positive; got {batch_size}, {max_queue}"
            )
        self.url = url
        self.batch_size = batch_size
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.committed = 0  # rows committed since open (for metrics and tests)
        self._sqlite_insert: _DirectInsert | None = None  # set by open() on SQLite
        self._sqlite_keys: _KeyStatements | None = None  # likewise
        self._writer_conn: Any = None  # the writer thread's own connection (SQLite)
        self._loop_conn: Any = None  # the event loops' connection (SQLite), see log()
        self._loop_conn_lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[list[Decision], Any]]] = {}
        self._rows_since_checkpoint = 0

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> DecisionLog:
        self._engine = make_engine(self.url)
        create_tables(self._engine, metadata)  # several workers may open a fresh log at once
        if self._engine.dialect.name == "sqlite":
            self._sqlite_insert = _DirectInsert(decisions, self._engine.dialect)
            self._sqlite_keys = _KeyStatements(self._engine.dialect)
            # The writer's own connection for its whole life, busy handler off (the
            # writer polls for the lock itself, see _insert): a pool checkout, its reset
            # and two PRAGMAs per commit were ~30 µs of every request's share.
            self._writer_conn = self._engine.raw_connection()
            self._writer_conn.driver_connection.execute("PRAGMA busy_timeout=0")
            self._loop_conn = self._engine.raw_connection()
            self._loop_conn.driver_connection.execute("PRAGMA busy_timeout=0")
            self._loop_conn.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        self._closed.clear()
        self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit everything queued, stop the writer and release the database."""
        for loop in list(self._pending):  # not yet flushed by their loop: via the writer
            self._hand_to_writer(loop, self._pending.pop(loop, []))
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout_s)
        self._thread = None
        self._closed.set()
        with self._loop_conn_lock:
            for conn in (self._writer_conn, self._loop_conn):
                if conn is not None:
                    conn.close()  # back to the pool, to be disposed with it
            self._writer_conn = self._loop_conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise DecisionLogUnavailable("decision log is not open")
        return self._engine

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))

    # ------------------------------------------------------------------ writing
    def submit(self, rows: Sequence[Decision]) -> Future[int]:
        """Queue decisions for the writer; the future resolves once they are committed.

        Raises :class:`DecisionLogUnavailable`
        when the writer is not running or the queue is full (never blocks).
        """
        fut: Future[int] = Future()
        if self._thread is None or not self._thread.is_alive():
            raise DecisionLogUnavailable("decision log writer is not running")
        try:
            self._queue.put_nowait((list(rows), fut))
        except queue.Full as exc:
            raise DecisionLogUnavailable("decision log queue is full") from exc
        return fut

    def write(self, rows: Sequence[Decision], timeout_s: float = 10.0) -> int:
        """Submit and wait for the commit (synchronous callers)."""
        return self.submit(rows).result(timeout_s)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Return once everything submitted before the call is committed."""
        if self._thread is not None and self._thread.is_alive():
            self.submit([]).result(timeout_s)

    async def log(
        self, rows: Sequence[Decision], *, wait: bool, timeout_s: float
    ) -> dict[str, tuple[str, str]]:
        """Log decisions from an event loop; with ``wait``, return once they are committed.

        On SQLite the rows join the loop's pending batch, committed on the loop thread by
        one callback after every request of this turn has added its rows (see the module
        docstring); elsewhere they go to the writer thread. Raises
        :class:`DecisionLogUnavailable` (the log is closed, or the commit failed) or
        ``TimeoutError`` (no commit within ``timeout_s``).

        Rows bound to an idempotency key are always awaited (whether they were logged
        decides the answer). Returns, for each row that was not logged because a
        concurrent call holds its key, decision id -> (request hash, decision id) of the
        binding that holds it (committed); empty when every row was logged.
        """
        if self._thread is None or not self._thread.is_alive():
            raise DecisionLogUnavailable("decision log writer is not running")
        wait = wait or any(d.idempotency is not None for d in rows)
        if self._loop_conn is None:  # PostgreSQL: the writer thread
            future = self.submit(rows)
            if not wait:
                future.add_done_callback(_log_unawaited_failure)
                return {}
            async with asyncio.timeout(timeout_s):
                await asyncio.wrap_future(future)
            return _held(rows)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush_loop_batch, loop)
        pending.append((list(rows), done))
        if not wait:
            done.add_done_callback(_log_unawaited_failure)
            return {}
        async with asyncio.timeout(timeout_s):
            await done
        return _held(rows)

    def _flush_loop_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the loop's pending rows on the loop thread (the callback :meth:`log`
        scheduled); the write lock held elsewhere hands them to the writer thread."""
        batch = self._pending.pop(loop, [])
        if batch:
            self._commit_from_loop(loop, batch)

    def _commit_from_loop(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[list[Decision], Any]]
    ) -> None:
        rows = [d for decisions_, _ in batch for d in decisions_]
        try:
            committed = self._insert_from_loop(rows)
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail the others with it
                for one in batch:
                    self._commit_from_loop(loop, [one])
                return
            for _, done in batch:
                if not done.done():
                    done.set_exception(_commit_failed(exc))
            return
        if not committed:
            self._hand_to_writer(loop, batch)
            return
        logged = _logged_count(rows)
        self.committed += logged
        for decisions_, done in batch:
            if not done.done():
                done.set_result(_logged_count(decisions_))
        self._rows_since_checkpoint += logged
        if self._rows_since_checkpoint >= CHECKPOINT_EVERY_ROWS:
            self._rows_since_checkpoint = 0
            with contextlib.suppress(queue.Full):  # the next one will ask again
                self._queue.put_nowait(_CHECKPOINT)

    def _insert_from_loop(self, rows: list[Decision]) -> bool:
        """Insert and commit on the loop's connection (binding keys first); False, having
        written nothing, when the write lock is held elsewhere (the loop must not wait)."""
        if not self._loop_conn_lock.acquire(blocking=False):
            return False  # another thread's loop is committing on this connection
        try:
            if self._loop_conn is None:
                raise DecisionLogUnavailable("decision log is closed")
            dbapi = self._loop_conn.driver_connection
            try:
                dbapi.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _sqlite_busy(exc):
                    return False
                raise
            self._commit_sqlite(dbapi, rows)
            return True
        finally:
            self._loop_conn_lock.release()

    def _commit_sqlite(
        self,
        dbapi: Any,
        rows: Sequence[Decision],
        before_commit: Callable[[], bool] | None = None,
    ) -> None:
        """In the transaction the caller began (holding the write lock): bind the rows'
        idempotency keys, insert the decisions to log, commit; roll all of it back on any
        failure, so no binding outlives a decision that was not committed. With
        ``before_commit`` (the writer's claim of its submissions) returning False, roll
        back and raise :class:`_CallerGaveUp`."""
        assert self._sqlite_insert is not None and self._sqlite_keys is not None
        try:
            to_log = _bind_keys(_SqliteKeyOps(dbapi, self._sqlite_keys), rows)
            if to_log:
                self._sqlite_insert.executemany(dbapi, [d.row() for d in to_log])
            if before_commit is not None and not before_commit():
                raise _CallerGaveUp
            dbapi.execute("COMMIT")
        except BaseException:
            dbapi.execute("ROLLBACK")
            _forget_bindings(rows)
            raise

    def _hand_to_writer(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[list[Decision], Any]]
    ) -> None:
        """Commit a loop's batch through the writer thread, one submission per request (so
        the writer retries a failing one alone, as the loop does); each future resolves on
        its loop. A request that stops waiting (its timeout) cancels its submission, and
        the writer then leaves its rows out (:func:`_claim`)."""
        for decisions_, done in batch:
            self._hand_one_to_writer(loop, decisions_, done)

    def _hand_one_to_writer(
        self, loop: asyncio.AbstractEventLoop, decisions_: list[Decision], done: Any
    ) -> None:
        try:
            future = self.submit(decisions_)
        except DecisionLogUnavailable as exc:
            if not done.done():
                done.set_exception(exc)
            return

        def settle(result: Future[int]) -> None:
            if done.done():
                return
            if result.cancelled():
                done.cancel()
            elif (error := result.exception()) is not None:
                done.set_exception(error)
            else:
                done.set_result(_logged_count(decisions_))

        def resolve_on_loop(result: Future[int]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: no one waits
                loop.call_soon_threadsafe(settle, result)

        def caller_gave_up(waited: Any) -> None:
            if waited.cancelled():
                future.cancel()  # thread-safe; no effect once the writer has claimed it

        future.add_done_callback(resolve_on_loop)
        done.add_done_callback(caller_gave_up)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _CHECKPOINT:
                self._checkpoint()
                continue
            stop = item is _STOP
            batch = [] if stop else [item]
            rows = 0 if stop else len(item[0])
            while not stop and rows < self.batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _CHECKPOINT:
                    continue  # the commit below may checkpoint by itself; else the next ask
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
                rows += len(nxt[0])
            if stop:  # drain what is left, then leave
                while True:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is not _STOP and nxt is not _CHECKPOINT:
                        batch.append(nxt)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database without waiting for readers (PASSIVE), on
        the writer thread: the loops' connection never checkpoints by itself."""
        try:
            self._writer_conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # a missed checkpoint only lets the WAL grow until the next
            _log.warning("decision_log_checkpoint_failed", error=f"{type(exc).__name__}: {exc}")

    def _commit(self, batch: list[tuple[list[Decision], Future[int]]]) -> None:
        """Commit the submissions of ``batch``; each is claimed (marked running) only once
        the write lock is held and its rows are written, just before the commit, so a
        caller that gave up while the writer waited for the lock is left out, never
        logged after it answered that no decision was given."""
        live = [(rows_, fut) for rows_, fut in batch if not fut.cancelled()]
        rows = [d for decisions_, _ in live for d in decisions_]
        try:
            if rows:
                self._insert(rows, before_commit=lambda: _claim(live))
        except _CallerGaveUp:
            self._commit(live)  # again, without the ones that gave up
            return
        except Exception as exc:
            if len(live) > 1:  # one bad submission must not fail the others with it
                for one in live:
                    self._commit([one])
                return
            error = _commit_failed(exc)
            for _, fut in live:
                if fut.running() or fut.set_running_or_notify_cancel():
                    fut.set_exception(error)
            return
        self.committed += _logged_count(rows)
        for rows_, fut in live:
            if fut.running() or fut.set_running_or_notify_cancel():
                fut.set_result(_logged_count(rows_))

    def _insert(self, rows: list[Decision], before_commit: Callable[[], bool]) -> None:
        if self._sqlite_insert is None:
            try:
                with self.engine.begin() as conn:
                    if any(d.idempotency is not None for d in rows):
                        # a key another transaction holds uncommitted makes this insert
                        # wait for it: no longer than the writer waits for SQLite's lock
                        conn.exec_driver_sql(
                            f"SET LOCAL lock_timeout = '{int(SQLITE_LOCK_WAIT_S * 1000)}ms'"
                        )
                    to_log = _bind_keys(_SqlAlchemyKeyOps(conn), rows)
                    if to_log:
                        conn.execute(decisions.insert(), [d.row() for d in to_log])
                    if not before_commit():
                        raise _CallerGaveUp
            except BaseException:
                _forget_bindings(rows)
                raise
            return
        # SQLite with several uvicorn workers: each worker's writer competes for the one
        # write lock. SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries,
        # and every request waiting for that commit waited with it (p99 64 ms, max 0.85 s
        # at 2 workers x 8 requests). Instead: take the lock up front (BEGIN IMMEDIATE, so
        # nothing is written before it is held) and poll every 0.2 ms.
        deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
        dbapi = self._writer_conn.driver_connection
        while True:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not _sqlite_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)
        self._commit_sqlite(dbapi, rows, before_commit)

    # ------------------------------------------------------------------ reading
    def get(self, decision_id: str) -> Decision | None:
        """One decision by id (flushes queued writes first, so it sees its own answers).

        Raises :class:`DecisionLogUnavailable` when the database cannot answer now
        (locked past the busy timeout, down) or the flush does not finish in time."""
        with _unavailable_on_database_error("be read"):
            self.flush()
            with self.engine.connect() as conn:
                row = (
                    conn.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id))
                    .mappings()
                    .first()
                )
        return None if row is None else _decision(row)

    def iter_decisions(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Decision]:
        self.flush()
        query = sa.select(decisions).order_by(decisions.c.created_at, decisions.c.decision_id)
        if since is not None:
            query = query.where(decisions.c.created_at >= since)
        if until is not None:
            query = query.where(decisions.c.created_at < until)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield _decision(row)

    def count(self) -> int:
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
        with _unavailable_on_database_error("store the review"), self.engine.begin() as conn:
            conn.execute(reviews.insert(), [review])
        return review

    def reviews_of(self, decision_id: str) -> list[dict[str, Any]]:
        """The reviews of a decision, oldest first (:class:`DecisionLogUnavailable` when
        the database cannot answer now)."""
        with _unavailable_on_database_error("be read"), self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reviews)
                .where(reviews.c.decision_id == decision_id)
                .order_by(reviews.c.created_at, reviews.c.review_id)
            ).mappings()
            out = []
            for row in rows:
                review = dict(row)
                if review["created_at"].tzinfo is None:
                    review["created_at"] = review["created_at"].replace(tzinfo=UTC)
                out.append(review)
            return out

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
            return found[0] if found else None
        with _unavailable_on_database_error("be read"), self.engine.connect() as conn:
            row = conn.execute(_KEY_HELD, {"scope": scope, "key": key}).first()
        return None if row is None else (row[0], row[1])

    def _decision_for_key_direct(self, scope: str, key: str) -> list[tuple[str, str]] | None:
        """The key's binding read on the loops' connection ([] when there is none), or
        None when that cannot be done now without waiting: then the pooled path reads."""
        statements = self._sqlite_keys
        if statements is None or not self._loop_conn_lock.acquire(blocking=False):
            return None  # PostgreSQL, or another thread's loop is using the connection
        try:
            if self._loop_conn is None:
                return None  # closed: the pooled path says so
            dbapi = self._loop_conn.driver_connection
            if dbapi.in_transaction:  # never: commits finish under the lock
                return None
            params = statements.held.params({"scope": scope, "key": key})
            try:
                # fetchall: the statement runs to its end, so no read snapshot stays open
                rows = dbapi.execute(statements.held.sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if _sqlite_busy(exc):
                    return None
                raise _unavailable("be read", exc) from exc
            return [(row[0], row[1]) for row in rows]
        finally:
            self._loop_conn_lock.release()

    # ------------------------------------------------------------------ retention, audit
    def purge_older_than(self, days: int, now: datetime | None = None) -> int:
        """Delete decisions created more than ``days`` days ago; returns how many."""
        if days < 0:
            raise ValueError(f"days must be non-negative; got {days}")
        self.flush()
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        with self.engine.begin() as conn:
            result = conn.execute(decisions.delete().where(decisions.c.created_at < cutoff))
            conn.execute(reviews.delete().where(reviews.c.created_at < cutoff))
            conn.execute(idempotency_keys.delete().where(idempotency_keys.c.created_at < cutoff))
        return int(result.rowcount or 0)

    def export(
        self, path: Path | str, since: datetime | None = None, until: datetime | None = None
    ) -> int:
        """Write decisions as JSON lines (one decision per line) for an audit; returns count."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with path.open("w", encoding="utf-8") as fh:
            for decision in self.iter_decisions(since, until):
                fh.write(json.dumps(decision.to_dict(), ensure_ascii=False, sort_keys=True))
                fh.write("\n")
                n += 1
        return n


def _held(rows: Sequence[Decision]) -> dict[str, tuple[str, str]]:
    """decision id -> the binding that holds its key, for the rows that were not logged."""
    return {
        d.decision_id: d.idempotency.held_by
        for d in rows
        if d.idempotency is not None and d.idempotency.held_by is not None
    }


def _decision(row: Any) -> Decision:
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite drops the zone; we always store UTC
        created = created.replace(tzinfo=UTC)
    return Decision(
        decision_id=row["decision_id"],
        created_at=created,
        kind=row["kind"],
        customer_id=row["customer_id"],
        as_of=row["as_of"],
        model_version=row["model_version"],
        policy_version=row["policy_version"],
        inputs=row["inputs"],
        features=row["features"],
        outputs=row["outputs"],
    )

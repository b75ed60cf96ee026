"""The event store: validated, idempotent, all-or-nothing ingest and fast reads by customer.

One code path for both back ends (ARCHITECTURE.md, decision 6): an SQLite file (WAL) by
default, PostgreSQL by URL. :class:`EventStore` is the one object callers hold; it is
composed per responsibility:

- the tables (:mod:`features.tables`) and the connections (:mod:`features.db`);
- writes, :meth:`EventStore.ingest`: validation and the report (:mod:`features.ingest`),
  the checks against stored rows and the all-or-nothing insert
  (:mod:`features.ingest_store`);
- serving rows (:mod:`features.serving_store`);
- reads, here: :meth:`EventStore.read_frames` returns pandas frames for training and
  batch scoring; :meth:`EventStore.read_columns` is the request path: no pandas, no
  pandera, one parameterised query per table on the ``(customer_id, date, id)`` index,
  returning numpy arrays per column. Both decode the same SQL (dates come out of the
  database as integer days since 1970-01-01), so they agree by construction.

The names other modules have always imported from here (the report and error types,
``ServingRow``, ``public_url``, ``configure_sqlite``, ``create_tables``) still import from
here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa

from features.db import (
    SNAPSHOT_SQL_PG,
    SQLITE_IN_CHUNK,
    configure_sqlite,
    create_tables,
    gc_paused,
    public_url,
)
from features.ingest import IngestError, IngestRejected, IngestReport, TableCounts
from features.ingest_store import IngestMixin
from features.schemas import OPTIONAL_TABLES, TABLES
from features.serving_store import ServingRow, ServingRowsMixin
from features.tables import (
    CUSTOMER_VERSIONS,
    DATE,
    METADATA,
    NULLABLE_INT,
    SERVING_ROWS,
    SQL_TABLES,
    STR,
    TABLE_COLUMNS,
    canonical_select,
    read_order,
)

__all__ = [
    "CUSTOMER_VERSIONS",
    "SERVING_ROWS",
    "TABLE_COLUMNS",
    "EventStore",
    "IngestError",
    "IngestRejected",
    "IngestReport",
    "ServingRow",
    "StoreUnavailable",
    "TableCounts",
    "configure_sqlite",
    "create_tables",
    "public_url",
]

_STR_DTYPE: Final = pd.StringDtype(na_value=np.nan)  # pandas' default ``str``, as pandera yields
_FETCH_ROWS: Final = 100_000
# Every *known* customer's version; one ingested before versions existed is at 0.
_VERSIONS_SELECT: Final = (
    "SELECT c.customer_id, COALESCE(v.version, 0) FROM customers c "
    "LEFT JOIN customer_versions v ON v.customer_id = c.customer_id WHERE "
)
_VERSIONS_SQL_PG: Final = _VERSIONS_SELECT + "c.customer_id = ANY(%s)"


class StoreUnavailable(RuntimeError):
    """The store could not be read (down, locked, unreachable): the caller answers 503."""


class EventStore(IngestMixin, ServingRowsMixin):
    """The event tables in SQLite (``sqlite:///path.db``) or PostgreSQL
    (``postgresql+psycopg://user@host:port/db``).

    ``schema`` (PostgreSQL only) puts the tables in that schema (created by
    :meth:`create_schema`) via the connections' ``search_path``; tests use it for isolation.
    ``max_errors`` bounds the errors an ingest report lists (all are counted).
    Safe to share across threads: SQLAlchemy pools the connections, and the SQLite request
    path keeps one read-only connection per thread.
    """

    def __init__(self, url: str, schema: str | None = None, *, max_errors: int = 1000):
        self.max_errors = max_errors
        super().__init__(url, schema)
        self._select_sql = {t: canonical_select(t, self.dialect) for t in TABLES}
        self._absent: frozenset[str] | None = None

    # ------------------------------------------------------------------ admin

    def create_schema(self) -> None:
        """Create the schema (PostgreSQL), tables and indexes; idempotent, and safe when
        several processes create the same fresh store at once (:func:`create_tables`).

        This is also how a store made by an older tijdig grows: tables it lacks (such as
        ``customer_attributes``) are added, existing ones are left as they are."""
        create_tables(self.engine, METADATA, schema=self.schema)
        self._absent = None

    def _absent_tables(self) -> frozenset[str]:
        """The optional tables (:data:`features.schemas.OPTIONAL_TABLES`) this store lacks:
        made before them and not opened with :meth:`create_schema` since. Reads return
        no rows for them. Looked up once per store object."""
        if self._absent is None:
            inspector = sa.inspect(self.engine)
            self._absent = frozenset(
                t for t in OPTIONAL_TABLES if not inspector.has_table(t, schema=self.schema)
            )
        return self._absent

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        where = f", schema={self.schema!r}" if self.schema else ""
        return f"EventStore({public_url(self.engine.url)!r}{where})"

    # ------------------------------------------------------------------ small reads

    def count(self, table: str) -> int:
        """How many rows ``table`` holds."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        if table in self._absent_tables():
            return 0
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(SQL_TABLES[table])).scalar_one()
            )

    def known_customers(self, customer_ids: Sequence[str]) -> set[str]:
        """Those of ``customer_ids`` that the store has a customer row for."""
        with self.engine.connect() as conn:
            return self._stored_customers(conn, set(customer_ids))

    def customer_ids(self) -> list[str]:
        """Every stored customer id, sorted."""
        with self._raw(snapshot=False) as conn:
            cur = conn.cursor()
            cur.execute("SELECT customer_id FROM customers ORDER BY customer_id")
            return [r[0] for r in cur.fetchall()]

    def iter_customer_partitions(self, size: int) -> Iterator[list[str]]:
        """Sorted, disjoint lists of at most ``size`` customer ids covering the store."""
        if size < 1:
            raise ValueError("size must be >= 1")
        last: str | None = None
        p = self._param
        while True:
            with self._raw(snapshot=False) as conn:
                cur = conn.cursor()
                if last is None:
                    cur.execute(
                        f"SELECT customer_id FROM customers ORDER BY customer_id LIMIT {int(size)}"
                    )
                else:
                    cur.execute(
                        f"SELECT customer_id FROM customers WHERE customer_id > {p} "
                        f"ORDER BY customer_id LIMIT {int(size)}",
                        (last,),
                    )
                part = [r[0] for r in cur.fetchall()]
            if not part:
                return
            yield part
            if len(part) < size:
                return
            last = part[-1]

    # ------------------------------------------------------------------ bulk reads

    def read_frames(self, customer_ids: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
        """All event tables (for every customer, or for ``customer_ids``) as pandas frames.

        Columns in contract order; dates ``datetime64[ns]``; ints ``int64`` (``Int64`` where
        nullable); strings pandas ``str``. Rows sorted by customer, date, id. All tables
        come from one read transaction (one snapshot).
        """
        ids = None if customer_ids is None else sorted(set(customer_ids))
        out: dict[str, pd.DataFrame] = {}
        with gc_paused(), self._raw(snapshot=True) as conn:
            for table in TABLES:
                out[table] = _to_frame(table, self._read_raw(conn, table, ids))
        return out

    def _read_raw(self, conn: Any, table: str, ids: list[str] | None) -> dict[str, np.ndarray]:
        base = self._select_sql[table]
        order = read_order(table)
        parts: list[dict[str, np.ndarray]] = []
        if (ids is not None and not ids) or table in self._absent_tables():
            return _empty_raw(table)
        if self.dialect == "postgresql":
            return self._read_raw_pg_copy(conn, table, ids)
        cur = conn.cursor()
        chunks: Iterator[list[str] | None]
        if ids is None:
            chunks = iter([None])
        else:
            chunks = (ids[i : i + SQLITE_IN_CHUNK] for i in range(0, len(ids), SQLITE_IN_CHUNK))
        for chunk in chunks:
            if chunk is None:
                cur.execute(base + order)
            else:
                cur.execute(
                    base + " WHERE " + self._in_clause("customer_id", len(chunk)) + order, chunk
                )
            while rows := cur.fetchmany(_FETCH_ROWS):
                parts.append(_decode_columns(table, rows))
        cur.close()
        return _concat_raw(table, parts)

    def _read_raw_pg_copy(self, conn: Any, table: str, ids: list[str] | None) -> dict[str, Any]:
        """PostgreSQL bulk read: ``COPY (select) TO STDOUT`` as CSV, parsed by Arrow.

        No Python object per value (3-4x faster than fetching rows). String columns come
        back as Arrow arrays, which :func:`_to_frame` takes as they are.
        """
        import pyarrow as pa
        import pyarrow.csv as pcsv

        sql = self._select_sql[table]
        params: tuple[Any, ...] = ()
        if ids is not None:
            sql += " WHERE customer_id = ANY(%s)"
            params = (ids,)
        sql += read_order(table)
        buf = bytearray()
        with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            for data in copy:
                buf += data
        kinds = TABLE_COLUMNS[table]
        if not buf:
            return _empty_raw(table)
        types = {c: (pa.string() if k == STR else pa.int64()) for c, (k, _) in kinds.items()}
        arrow = pcsv.read_csv(
            pa.py_buffer(bytes(buf)),
            read_options=pcsv.ReadOptions(column_names=list(kinds)),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            # PostgreSQL's CSV: NULL is an empty unquoted field, '' is quoted.
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        raw: dict[str, Any] = {}
        for name, (kind, nullable) in kinds.items():
            col = arrow.column(name)
            if kind == STR:
                raw[name] = col
            else:
                raw[name] = col.to_numpy().astype(np.float64 if nullable else np.int64)
        return raw

    # ------------------------------------------------------------------ the request path

    def read_columns(self, customer_ids: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        """The request path: per table, column -> numpy array for a few customers.

        Dates ``datetime64[D]`` (NaT for null), ints ``int64``, nullable ints
        (``birth_year``, ``declared_net_income_cents``) ``float64`` with NaN, strings
        ``object`` (None for null). Rows sorted by customer, date, id, as in
        :meth:`read_frames`. No pandas, no pandera.
        """
        return self._read_columns(customer_ids, with_versions=False)[0]

    def _read_columns(
        self, customer_ids: Sequence[str], *, with_versions: bool
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {t: _to_request_arrays(t, _empty_raw(t)) for t in TABLES}, {}
        if self.dialect == "sqlite":
            return self._read_columns_sqlite(ids, with_versions)
        return self._read_columns_pg(ids, with_versions)

    def _request_sql(self, table: str, n: int) -> str:
        if n == 1:
            where = f" WHERE customer_id = {self._param}"
        elif self.dialect == "postgresql":
            where = " WHERE customer_id = ANY(%s)"
        else:
            where = " WHERE " + self._in_clause("customer_id", n)
        return self._select_sql[table] + where + read_order(table)

    def read_columns_versioned(
        self, customer_ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
        """:meth:`read_columns` plus each customer's version, from the same snapshot.

        What a serving row computed from these events must carry (see ``SERVING_ROWS``).
        """
        return self._read_columns(customer_ids, with_versions=True)

    def _read_columns_sqlite(
        self, ids: list[str], with_versions: bool
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
        absent = self._absent_tables()
        conn = self._fast_sqlite()
        out = {t: _to_request_arrays(t, _empty_raw(t)) for t in absent}
        conn.execute("BEGIN")  # one snapshot for all tables
        try:
            versions = self._versions(conn, ids) if with_versions else {}
            for i in range(0, len(ids), SQLITE_IN_CHUNK):
                chunk = ids[i : i + SQLITE_IN_CHUNK]
                for table in TABLES:
                    if table in absent:
                        continue
                    rows = conn.execute(self._request_sql(table, len(chunk)), chunk).fetchall()
                    raw = _decode_columns(table, rows)
                    if table in out:  # more than one chunk: rare, many customers
                        prev = out[table]
                        raw = {
                            c: np.concatenate([prev[c], a])
                            for c, a in _to_request_arrays(table, raw).items()
                        }
                        out[table] = raw
                    else:
                        out[table] = _to_request_arrays(table, raw)
        finally:
            conn.execute("COMMIT")
        return out, versions

    def _read_columns_pg(
        self, ids: list[str], with_versions: bool
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
        import psycopg

        params: tuple[Any, ...] = (ids[0],) if len(ids) == 1 else (ids,)
        versions: dict[str, int] = {}
        absent = self._absent_tables()
        present = [t for t in TABLES if t not in absent]
        for attempt in (1, 2):
            conn = self._fast_pg()
            try:
                curs = []
                # One round trip: the queries and the end of their read transaction. At
                # PostgreSQL's default READ COMMITTED every statement takes its own
                # snapshot, so an ingest committing between two of them returned old
                # events under the new version (a stale serving row stored as valid).
                # REPEATABLE READ gives the whole transaction the snapshot of its first
                # query; the versions are that first query, so even without it a race
                # could only pair new events with an older version (never served).
                with conn.pipeline():
                    conn.execute(SNAPSHOT_SQL_PG)
                    if with_versions:
                        vcur = conn.cursor()
                        vcur.execute(_VERSIONS_SQL_PG, (ids,), prepare=True)
                    for table in present:
                        cur = conn.cursor()
                        cur.execute(self._request_sql(table, len(ids)), params, prepare=True)
                        curs.append(cur)
                    conn.rollback()
                if with_versions:
                    versions = {str(c): int(v) for c, v in vcur.fetchall()}
                rows = [cur.fetchall() for cur in curs]
                break
            except psycopg.OperationalError:
                self._drop_fast_pg(conn)
                if attempt == 2:
                    raise
        out = {t: _to_request_arrays(t, _empty_raw(t)) for t in absent}
        out.update(
            (table, _to_request_arrays(table, _decode_columns(table, r)))
            for table, r in zip(present, rows, strict=True)
        )
        return out, versions

    # ------------------------------------------------------------------ versioned reads

    def _versions(self, conn: Any, ids: list[str]) -> dict[str, int]:
        """customer id -> version for the known customers among ``ids``."""
        cur = conn.cursor()
        found: dict[str, int] = {}
        if self.dialect == "postgresql":
            cur.execute(_VERSIONS_SQL_PG, (ids,))
            found = {str(c): int(v) for c, v in cur.fetchall()}
        else:
            for i in range(0, len(ids), SQLITE_IN_CHUNK):
                chunk = ids[i : i + SQLITE_IN_CHUNK]
                cur.execute(_VERSIONS_SELECT + self._in_clause("c.customer_id", len(chunk)), chunk)
                found.update({str(c): int(v) for c, v in cur.fetchall()})
        cur.close()
        return found

    def read_frames_versioned(
        self, customer_ids: Sequence[str]
    ) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
        """:meth:`read_frames` for ``customer_ids`` plus their versions, one snapshot."""
        ids = sorted(set(customer_ids))
        out: dict[str, pd.DataFrame] = {}
        with gc_paused(), self._raw(snapshot=True) as conn:
            versions = self._versions(conn, ids) if ids else {}
            for table in TABLES:
                out[table] = _to_frame(table, self._read_raw(conn, table, ids))
        return out, versions


# --------------------------------------------------------------------------- decoding


def _decode_columns(table: str, rows: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    """Rows of the canonical select -> column -> raw numpy array.

    str -> object (None for null); int -> int64; nullable int and date -> float64 (NaN for
    null; dates as days since 1970-01-01), non-null dates -> int64 days.
    """
    kinds = TABLE_COLUMNS[table]
    if not rows:
        cols: list[tuple[Any, ...]] = [() for _ in kinds]
    else:
        cols = list(zip(*rows, strict=True))
    out: dict[str, np.ndarray] = {}
    for (name, (kind, nullable)), values in zip(kinds.items(), cols, strict=True):
        if kind == STR:
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[name] = arr
        elif nullable:
            out[name] = np.array(values, dtype=np.float64)
        else:
            out[name] = np.array(values, dtype=np.int64)
    return out


def _days_to_datetime64(days: np.ndarray, unit: str) -> np.ndarray:
    if days.dtype == np.float64:
        mask = np.isnan(days)
        out = np.where(mask, 0, days).astype(np.int64).astype("datetime64[D]")
        out[mask] = np.datetime64("NaT")
    else:
        out = days.astype("datetime64[D]")
    return out if unit == "D" else out.astype(f"datetime64[{unit}]")


def _to_request_arrays(table: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    kinds = TABLE_COLUMNS[table]
    return {
        name: (_days_to_datetime64(arr, "D") if kinds[name][0] == DATE else arr)
        for name, arr in raw.items()
    }


def _to_frame(table: str, raw: dict[str, np.ndarray]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name, (kind, _nullable) in TABLE_COLUMNS[table].items():
        arr = raw[name]
        if kind == STR:
            data[name] = pd.array(arr, dtype=_STR_DTYPE)
        elif kind == DATE:
            data[name] = _days_to_datetime64(arr, "ns")
        elif kind == NULLABLE_INT:
            mask = np.isnan(arr)
            data[name] = pd.arrays.IntegerArray(np.where(mask, 0, arr).astype(np.int64), mask)
        else:
            data[name] = arr
    return pd.DataFrame(data)


def _empty_raw(table: str) -> dict[str, np.ndarray]:
    return _decode_columns(table, [])


def _concat_raw(table: str, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return _empty_raw(table)
    if len(parts) == 1:
        return parts[0]
    return {c: np.concatenate([p[c] for p in parts]) for c in TABLE_COLUMNS[table]}

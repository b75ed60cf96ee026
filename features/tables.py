"""The event store's tables as SQL: the event contract of :mod:`features.schemas` (the id
column is the primary key, dates are SQL ``DATE``, money is ``BIGINT`` cents), the customer
versions and the serving rows, and the canonical select every read decodes.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import sqlalchemy as sa

from features.schemas import TABLES

#: Column kinds, derived from the pandera schemas once.
STR, INT, NULLABLE_INT, DATE = "str", "int", "nullable_int", "date"

_EPOCH_JD: Final = 2440587.5  # julianday('1970-01-01')


def _column_kinds(table: str) -> dict[str, tuple[str, bool]]:
    """Column -> (kind, nullable) in contract order."""
    out: dict[str, tuple[str, bool]] = {}
    for name, col in TABLES[table][0].to_schema().columns.items():
        dtype = str(col.dtype).lower()
        if "datetime" in dtype:
            kind = DATE
        elif dtype.startswith("int"):
            kind = NULLABLE_INT if col.nullable else INT
        else:
            kind = STR
        out[name] = (kind, bool(col.nullable))
    return out


#: table -> column -> (kind, nullable), in contract order.
TABLE_COLUMNS: Final[dict[str, dict[str, tuple[str, bool]]]] = {t: _column_kinds(t) for t in TABLES}

METADATA: Final = sa.MetaData()


def _sql_type(column: str, kind: str) -> sa.types.TypeEngine[Any]:
    if kind == DATE:
        return sa.Date()
    if kind in (INT, NULLABLE_INT):
        return sa.BigInteger() if column.endswith("_cents") else sa.Integer()
    # Byte order ("C") on PostgreSQL, so ORDER BY agrees with SQLite and Python's sorted().
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _build_table(table: str) -> sa.Table:
    _, pk, date_col = TABLES[table]
    cols = [
        sa.Column(name, _sql_type(name, kind), primary_key=(name == pk), nullable=nullable)
        for name, (kind, nullable) in TABLE_COLUMNS[table].items()
    ]
    args: list[Any] = list(cols)
    if pk != "customer_id":
        # Serves lookups by customer, by customer and date, and the read order.
        args.append(sa.Index(f"ix_{table}_customer_date", "customer_id", date_col, pk))
    return sa.Table(table, METADATA, *args)


SQL_TABLES: Final[dict[str, sa.Table]] = {t: _build_table(t) for t in TABLES}

# --------------------------------------------------------------------------- serving rows
# Materialised serving rows (ARCHITECTURE.md, "online feature rows"): the features (and,
# per model version, the scores) of a customer as of a day, so a request reads one row
# instead of the customer's whole history. Validity is a version check, not a TTL:
# every ingest that stores an event of a customer bumps that customer's version in the
# same transaction, and a row is served only while it carries the current version. A
# row computed from a read that raced an ingest carries the old version and is never
# served, so no invalidation can be lost.

_ID_TYPE: Final = _sql_type("customer_id", STR)

CUSTOMER_VERSIONS: Final = sa.Table(
    "customer_versions",
    METADATA,
    sa.Column("customer_id", _ID_TYPE, primary_key=True),
    sa.Column("version", sa.BigInteger(), nullable=False),
)

SERVING_ROWS: Final = sa.Table(
    "serving_rows",
    METADATA,
    sa.Column("customer_id", _ID_TYPE, primary_key=True),
    sa.Column("as_of_day", sa.Integer(), primary_key=True),  # days since 1970-01-01
    sa.Column("feature_set", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger(), nullable=False),  # customer_versions at the read
    sa.Column("features", sa.LargeBinary(), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=True),
    sa.Column("scores", sa.LargeBinary(), nullable=True),
    sa.Index("ix_serving_rows_as_of_day", "as_of_day"),
)

# --------------------------------------------------------------------------- canonical SQL


def _days_sql(column: str, dialect: str) -> str:
    """``column`` (a DATE) as integer days since 1970-01-01 in ``dialect``'s SQL."""
    if dialect == "sqlite":
        return f"CAST(julianday({column}) - {_EPOCH_JD} AS INTEGER)"
    return f"({column} - DATE '1970-01-01')"


@functools.cache
def canonical_select(table: str, dialect: str) -> str:
    """``SELECT`` of ``table``'s columns in contract order, dates as integer days: the one
    form every read decodes and ingest compares stored rows in."""
    exprs = [
        _days_sql(c, dialect) if kind == DATE else c
        for c, (kind, _) in TABLE_COLUMNS[table].items()
    ]
    return f"SELECT {', '.join(exprs)} FROM {table}"


def read_order(table: str) -> str:
    """The ``ORDER BY`` of every read: customer, date, id (the index's order)."""
    _, pk, date_col = TABLES[table]
    if pk == "customer_id":
        return " ORDER BY customer_id"
    return f" ORDER BY customer_id, {date_col}, {pk}"

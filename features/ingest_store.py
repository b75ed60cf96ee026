"""Ingest into the event store: the checks against what is stored, and the write.

After :func:`features.ingest.validate_tables` has checked each table on its own, one write
transaction (one ingest at a time) checks the batch against the store: every
``customer_id`` known (in the batch or the store), every ``invoice_id`` known and of the
same customer, and no event that would *change* a stored one (events are immutable). Any
error rejects the whole batch and nothing is written. Otherwise all tables are inserted
with ``INSERT ... ON CONFLICT (id) DO NOTHING``, so re-sending a batch changes nothing,
and every customer with a new event gets a new version, which retires their serving rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from features.db import StoreConnections, gc_paused
from features.ingest import IngestErrors, IngestReport, finish_report, validate_tables
from features.schemas import TABLES
from features.tables import DATE, SQL_TABLES, STR, TABLE_COLUMNS, canonical_select

__all__ = ["IngestMixin"]

#: Tables whose rows point at an invoice (checked on ingest: it exists, same customer).
_INVOICE_CHILDREN: Final = ("payments", "debit_attempts", "collection_steps")


class IngestMixin(StoreConnections):
    """The ingest of :class:`features.store.EventStore`."""

    #: Errors listed in a report at most (all are counted).
    max_errors: int

    def ingest(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        on_stored: Callable[[dict[str, pd.DataFrame]], object] | None = None,
    ) -> IngestReport:
        """Validate and store a batch, all tables in one transaction; see the module doc.

        Returns the report when accepted; raises :class:`~features.ingest.IngestRejected`
        (with the report) when anything is wrong, having written nothing.
        ``on_stored`` hears the rows this ingest inserted (validated, duplicates left
        out) once they are committed, e.g. :func:`features.offline.write_offline`, so an
        offline copy gets each event once.
        """
        report = IngestReport()
        errors = IngestErrors(self.max_errors)
        validated, raw_frames = validate_tables(tables, report, errors)
        if not validated:
            return finish_report(report, errors)

        with gc_paused(), self._write_connection() as conn, conn.begin():
            self._lock_ingest(conn)
            self._check_references(conn, raw_frames, validated, errors)
            new_rows: dict[str, pd.DataFrame] = {}
            for table, df in validated.items():
                new_rows[table] = self._split_existing(conn, table, df, report, errors)
            if errors:
                # Raises inside the transaction, which rolls it back (nothing written yet).
                finish_report(report, errors)
            touched: set[str] = set()
            for table, df in new_rows.items():
                if len(df):
                    report.tables[table].inserted = self._insert(conn, table, df)
                    touched.update(str(c) for c in pd.unique(df["customer_id"].to_numpy(object)))
            self._bump_versions(conn, touched)
        if on_stored is not None:
            on_stored({t: df for t, df in new_rows.items() if len(df)})
        return finish_report(report, errors)

    def _lock_ingest(self, conn: sa.Connection) -> None:
        if self.dialect == "postgresql":
            # One ingest at a time per schema: the duplicate/conflict check and the insert
            # then see the same state.
            conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(hashtext('tijdig.ingest.' || current_schema()))"
            )

    def _stored_customers(self, conn: sa.Connection, customer_ids: set[str]) -> set[str]:
        """Those of ``customer_ids`` that have a customer row, seen from ``conn``."""
        select = "SELECT customer_id FROM customers"
        return set(self._lookup(conn, select, ["customer_id"], "customer_id", customer_ids))

    def _table_empty(self, conn: sa.Connection, table: str) -> bool:
        return conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first() is None

    def _check_references(
        self,
        conn: sa.Connection,
        raw_frames: dict[str, pd.DataFrame],
        validated: dict[str, pd.DataFrame],
        errors: IngestErrors,
    ) -> None:
        """Every row's customer exists, and every invoice a row points at exists and is
        the same customer's: in the batch or in the store."""
        batch_customers: set[str] = set()
        if "customers" in raw_frames and "customer_id" in raw_frames["customers"]:
            batch_customers = set(_str_list(raw_frames["customers"]["customer_id"]))
        wanted: set[str] = set()
        for table, df in validated.items():
            if table != "customers":
                wanted.update(df["customer_id"].unique().tolist())
        wanted -= batch_customers
        known = self._stored_customers(conn, wanted)
        unknown = wanted - known
        if unknown:
            for table, df in validated.items():
                if table == "customers":
                    continue
                bad = df["customer_id"].isin(unknown).to_numpy()
                for pos in np.flatnonzero(bad).tolist():
                    cid = df["customer_id"].iat[pos]
                    errors.add(
                        table,
                        int(pos),
                        "customer_id",
                        "customer_exists",
                        cid,
                        f"{table} row {pos}: customer_id {cid!r} is neither in this batch's "
                        "customers nor in the store",
                    )

        # Invoice references: the invoice exists (batch or store) and is the same customer's.
        if not any(t in validated for t in _INVOICE_CHILDREN):
            return
        inv_ids: list[str] = []
        inv_owners: list[str] = []
        if "invoices" in raw_frames and {"invoice_id", "customer_id"} <= set(
            raw_frames["invoices"].columns
        ):
            inv = raw_frames["invoices"].dropna(subset=["invoice_id", "customer_id"])
            inv_ids, inv_owners = _str_list(inv["invoice_id"]), _str_list(inv["customer_id"])
        wanted_inv: set[str] = set()
        for table in _INVOICE_CHILDREN:
            if table in validated:
                wanted_inv.update(validated[table]["invoice_id"].unique().tolist())
        wanted_inv.difference_update(inv_ids)
        inv_cols = ["invoice_id", "customer_id"]
        inv_select = "SELECT invoice_id, customer_id FROM invoices"
        for inv_id, row in self._lookup(
            conn, inv_select, inv_cols, "invoice_id", wanted_inv
        ).items():
            inv_ids.append(inv_id)
            inv_owners.append(row[1])
        index = pd.Index(inv_ids, dtype=object)
        if not index.is_unique:  # duplicate invoice ids in the batch: pandera reports them
            keep = ~index.duplicated()
            index = index[keep]
            inv_owners = [o for o, k in zip(inv_owners, keep.tolist(), strict=True) if k]
        owner_arr = np.array([*inv_owners, None], dtype=object)
        for table in _INVOICE_CHILDREN:
            if table not in validated:
                continue
            df = validated[table]
            at = index.get_indexer(pd.Index(df["invoice_id"].to_numpy(dtype=object)))
            missing = at < 0
            owner = owner_arr[at]  # -1 -> the trailing None
            mismatch = (~missing) & (owner != df["customer_id"].to_numpy(dtype=object))
            invoice_ids = df["invoice_id"].to_numpy(dtype=object)
            for pos in np.flatnonzero(missing).tolist():
                inv_id = invoice_ids[pos]
                errors.add(
                    table,
                    int(pos),
                    "invoice_id",
                    "invoice_exists",
                    inv_id,
                    f"{table} row {pos}: invoice_id {inv_id!r} is neither in this batch's "
                    "invoices nor in the store",
                )
            for pos in np.flatnonzero(mismatch).tolist():
                inv_id = invoice_ids[pos]
                errors.add(
                    table,
                    int(pos),
                    "invoice_id",
                    "invoice_of_customer",
                    inv_id,
                    f"{table} row {pos}: invoice {inv_id!r} belongs to customer "
                    f"{owner[pos]!r}, not to {df['customer_id'].iat[pos]!r}",
                )

    def _split_existing(
        self,
        conn: sa.Connection,
        table: str,
        df: pd.DataFrame,
        report: IngestReport,
        errors: IngestErrors,
    ) -> pd.DataFrame:
        """The rows to insert; counts duplicates, reports conflicts as errors."""
        pk = TABLES[table][1]
        cols = list(TABLE_COLUMNS[table])
        ki = cols.index(pk)
        if self._table_empty(conn, table):
            return df
        stored = self._lookup(
            conn,
            canonical_select(table, self.dialect),
            cols,
            pk,
            set(df[pk].to_numpy(dtype=object).tolist()),
        )
        if not stored:
            return df
        counts = report.tables[table]
        hit = df[pk].isin(list(stored)).to_numpy()
        hit_pos = np.flatnonzero(hit)
        for pos, row in zip(
            hit_pos.tolist(), _canonical_rows(table, df.iloc[hit_pos]), strict=True
        ):
            old = stored[row[ki]]
            if old == row:
                counts.duplicates += 1
            else:
                counts.conflicts += 1
                counts.conflict_ids.append(row[ki])
                diff = [c for c, a, b in zip(cols, old, row, strict=True) if a != b]
                detail = "; ".join(
                    f"{c}: stored {_show(table, c, a)}, sent {_show(table, c, b)}"
                    for c, a, b in zip(cols, old, row, strict=True)
                    if a != b
                )
                errors.add(
                    table,
                    pos,
                    ",".join(diff),
                    "immutable_event",
                    row[ki],
                    f"{table} row {pos}: {pk} {row[ki]!r} is already stored with different "
                    f"content ({detail}); events are immutable - send a new event with a new id",
                )
        return df.iloc[np.flatnonzero(~hit)]

    def _insert(self, conn: sa.Connection, table: str, df: pd.DataFrame) -> int:
        _, pk, date_col = TABLES[table]
        sql_table = SQL_TABLES[table]
        cols = list(TABLE_COLUMNS[table])
        # In read order: the indexes grow at their end and a customer's rows sit together.
        keys = ["customer_id"] if pk == "customer_id" else ["customer_id", date_col, pk]
        rows = _insert_rows(table, df.sort_values(keys, kind="stable"))
        dbapi: Any = conn.connection.driver_connection
        if self.dialect == "sqlite":
            stmt = sqlite_insert(sql_table).on_conflict_do_nothing(index_elements=[pk])
            sql = str(stmt.compile(dialect=self.engine.dialect))
            cur = dbapi.cursor()
            cur.executemany(sql, rows)
            n = cur.rowcount
            cur.close()
            return int(n) if n is not None and n >= 0 else len(rows)
        # PostgreSQL: COPY into a temporary stage, then one INSERT ... SELECT ... ON CONFLICT.
        stage = f"tijdig_stage_{table}"
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DROP"
        )
        conn.exec_driver_sql(f"TRUNCATE {stage}")
        cur = dbapi.cursor()
        with cur.copy(f"COPY {stage} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.close()
        stage_t = sa.table(stage, *[sa.column(c) for c in cols])
        pg_stmt = (
            pg_insert(sql_table)
            .from_select(cols, sa.select(stage_t))
            .on_conflict_do_nothing(index_elements=[pk])
        )
        return int(conn.execute(pg_stmt, execution_options={"preserve_rowcount": True}).rowcount)

    def _bump_versions(self, conn: sa.Connection, customer_ids: set[str]) -> None:
        """Inside the ingest transaction: every customer with a new event gets a new
        version, so their materialised rows stop being served."""
        if not customer_ids:
            return
        ids = sorted(customer_ids)
        dbapi: Any = conn.connection.driver_connection
        cur = dbapi.cursor()
        if self.dialect == "postgresql":
            cur.execute(
                "INSERT INTO customer_versions (customer_id, version) "
                "SELECT unnest(%s::text[]), 1 ON CONFLICT (customer_id) "
                "DO UPDATE SET version = customer_versions.version + 1",
                (ids,),
            )
        else:
            cur.executemany(
                "INSERT INTO customer_versions (customer_id, version) VALUES (?, 1) "
                "ON CONFLICT (customer_id) DO UPDATE SET version = version + 1",
                [(i,) for i in ids],
            )
        cur.close()

    # ------------------------------------------------------------------ ingest


def _str_list(s: pd.Series) -> list[str]:
    return [str(v) for v in s.dropna().to_numpy(dtype=object).tolist()]


def _show(table: str, column: str, value: Any) -> str:
    if value is not None and TABLE_COLUMNS[table][column][0] == DATE:
        return str(np.datetime64(int(value), "D"))
    return repr(value)


def _date_days(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def _py_columns(table: str, df: pd.DataFrame, *, dates_as: str) -> list[list[Any]]:
    """Validated frame -> one Python list per column (None for null).

    ``dates_as="days"``: int days since 1970 (the canonical select's form);
    ``"iso"``: 'YYYY-MM-DD' strings (what SQLAlchemy's DATE stores on SQLite).
    """
    out: list[list[Any]] = []
    for col, (kind, nullable) in TABLE_COLUMNS[table].items():
        s = df[col]
        mask = s.isna().to_numpy() if nullable else None
        if kind == DATE:
            d = _date_days(s)
            if dates_as == "iso":
                vals: list[Any] = np.datetime_as_string(d, unit="D").tolist()
            else:
                vals = d.astype(np.int64).tolist()
        elif kind == STR:
            vals = s.to_numpy(dtype=object).tolist()
        else:
            vals = s.to_numpy(dtype=np.int64, na_value=0).tolist()
        if mask is not None and mask.any():
            vals = [None if m else v for v, m in zip(vals, mask.tolist(), strict=True)]
        out.append(vals)
    return out


def _canonical_rows(table: str, df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return list(zip(*_py_columns(table, df, dates_as="days"), strict=True))


def _insert_rows(table: str, df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return list(zip(*_py_columns(table, df, dates_as="iso"), strict=True))

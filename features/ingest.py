"""Ingest validation: what a submitted batch must satisfy before anything is written,
and the report the caller gets back.

Every submitted table is validated with its pandera schema (lazy, so every error is
collected), after strict checks pandera does not make: dates written ``YYYY-MM-DD``,
integers exact (money is never rounded) and dates that are calendar days. Nothing here
touches the database; the checks against stored rows (references, immutability) and the
write are :class:`features.ingest_store.IngestMixin`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from features.schemas import TABLES, is_special_category, parse_date_strings
from features.tables import DATE, INT, NULLABLE_INT, TABLE_COLUMNS

__all__ = [
    "IngestError",
    "IngestErrors",
    "IngestRejected",
    "IngestReport",
    "TableCounts",
    "finish_report",
    "validate_tables",
]

# --------------------------------------------------------------------------- the report


@dataclass
class IngestError:
    """One thing wrong with a submitted batch."""

    table: str
    row: int | None  # 0-based position in the submitted table; None for table-level errors
    column: str | None
    check: str
    value: str | None  # repr of the failing value, truncated
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TableCounts:
    """What became of one table's submitted rows."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0  # same id, identical content: already stored, nothing to do
    conflicts: int = 0  # same id, different content: never applied (events are immutable)
    conflict_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    """The outcome of one ingest: counts per table, and the errors when rejected."""

    tables: dict[str, TableCounts] = field(
        default_factory=lambda: {t: TableCounts() for t in TABLES}
    )
    errors: list[IngestError] = field(default_factory=list)
    accepted: bool = False
    #: Errors found in total; ``errors`` keeps the first ``max_errors`` of them.
    error_count: int = 0

    @property
    def received(self) -> int:
        return sum(c.received for c in self.tables.values())

    @property
    def inserted(self) -> int:
        return sum(c.inserted for c in self.tables.values())

    @property
    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.tables.values())

    @property
    def conflicts(self) -> int:
        return sum(c.conflicts for c in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "received": self.received,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "tables": {t: c.to_dict() for t, c in self.tables.items()},
            "error_count": self.error_count,
            "errors_truncated": self.error_count > len(self.errors),
            "errors": [e.to_dict() for e in self.errors],
        }

    def summary(self) -> str:
        sent = {t: c.received for t, c in self.tables.items() if c.received}
        sent_txt = ", ".join(f"{t} {n:,}" for t, n in sent.items()) or "no rows"
        if self.accepted:
            return (
                f"Accepted: {self.received:,} rows received ({sent_txt}); "
                f"{self.inserted:,} inserted, {self.duplicates:,} already stored and skipped."
            )
        per_table: dict[str, int] = {}
        for e in self.errors:
            per_table[e.table] = per_table.get(e.table, 0) + 1
        where = ", ".join(f"{t} ({n})" for t, n in per_table.items())
        first = self.errors[0].message if self.errors else "unknown error"
        more = (
            f" (the first {len(self.errors):,} are listed)"
            if self.error_count > len(self.errors)
            else ""
        )
        conflicts = (
            f" {self.conflicts:,} rows would change stored events, which are immutable."
            if self.conflicts
            else ""
        )
        return (
            f"Rejected: {self.error_count:,} errors{more} in {where}; nothing was written "
            f"of the {self.received:,} rows received ({sent_txt}).{conflicts} First: {first}"
        )


class IngestRejected(Exception):
    """The batch had errors; nothing was written. ``.report`` says what and where."""

    def __init__(self, report: IngestReport):
        super().__init__(report.summary())
        self.report = report


def _short_repr(value: Any, limit: int = 80) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class IngestErrors:
    """Collects errors, keeping the first ``limit`` and counting all."""

    def __init__(self, limit: int):
        self.limit = limit
        self.items: list[IngestError] = []
        self.count = 0

    def add(
        self,
        table: str,
        row: int | None,
        column: str | None,
        check: str,
        value: Any,
        message: str,
    ) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(IngestError(table, row, column, check, _short_repr(value), message))

    def __bool__(self) -> bool:
        return self.count > 0


# --------------------------------------------------------------------------- validation

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def validate_tables(
    tables: Mapping[str, pd.DataFrame], report: IngestReport, errors: IngestErrors
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Check each submitted table on its own; count what was received in ``report`` and
    collect what is wrong in ``errors``.

    Returns ``(validated, parsed)``: the tables that passed, as pandera coerced them, and
    every non-empty table as submitted after date parsing (what the reference checks read
    the batch's own customers and invoices from, valid or not).
    """
    validated: dict[str, pd.DataFrame] = {}
    parsed: dict[str, pd.DataFrame] = {}
    for name in tables:
        if name not in TABLES:
            errors.add(
                name,
                None,
                None,
                "known_table",
                name,
                f"unknown table {name!r}; the event tables are: {', '.join(TABLES)}",
            )
    for table, (schema, _pk, _date) in TABLES.items():
        df = tables.get(table)
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            errors.add(
                table,
                None,
                None,
                "is_dataframe",
                type(df).__name__,
                f"{table}: expected a pandas DataFrame, got {type(df).__name__}",
            )
            continue
        report.tables[table].received = len(df)
        if len(df) == 0:
            continue
        df = df.reset_index(drop=True)  # pandera's index == position in the submission
        # (row, column) already reported here, so pandera's echo of them is dropped
        reported: set[tuple[int, str]] = set()
        df, refused = _refuse_special_category(table, df, errors)
        df = _parse_date_columns(table, df, errors, reported)
        parsed[table] = df
        _check_exact_ints(table, df, errors, reported)
        ok = not reported and not refused
        try:
            v = schema.validate(df, lazy=True)
        except pa_errors.SchemaErrors as exc:
            _collect_pandera(table, df, exc, errors, reported)
            continue
        if ok and _check_calendar_days(table, v, errors):
            validated[table] = v
    return validated, parsed


def finish_report(report: IngestReport, errors: IngestErrors) -> IngestReport:
    """``report`` with ``errors``: returned when there are none, else raised as
    :class:`IngestRejected` (with nothing counted as inserted)."""
    report.errors = errors.items
    report.error_count = errors.count
    if errors:
        for counts in report.tables.values():
            counts.inserted = 0
        raise IngestRejected(report)
    report.accepted = True
    return report


def _collect_pandera(
    table: str,
    df: pd.DataFrame,
    exc: pa_errors.SchemaErrors,
    errors: IngestErrors,
    reported: set[tuple[int, str]],
) -> None:
    """pandera's failure cases as errors; those about a (row, column) in ``reported`` (a
    value already reported more precisely), about such a column as a whole (its coercion,
    or a check that could not run after it) or a row check of such a row are dropped."""
    pk = TABLES[table][1]
    seen: set[tuple[Any, ...]] = set()
    bad_rows = {r for r, _ in reported}
    bad_cols = {c for _, c in reported}
    fc = exc.failure_cases
    for rec in fc.itertuples(index=False):
        ctx, col, check, case, idx = (
            rec.schema_context,
            rec.column,
            str(rec.check),
            rec.failure_case,
            rec.index,
        )
        row: int | None
        try:
            row = None if idx is None or pd.isna(idx) else int(idx)
        except (TypeError, ValueError):
            row = None
        if check in ("column_in_schema", "column_in_dataframe"):
            column, value = str(case), None
            what = "is not a column of" if check == "column_in_schema" else "is missing from"
            message = (
                f"{table}: column {case!r} {what} the contract ({', '.join(TABLE_COLUMNS[table])})"
            )
        elif ctx == "Column":
            column, value = str(col), case
            if (row, column) in reported or (row is None and column in bad_cols):
                continue
            where = f"row {row}" if row is not None else "column"
            message = f"{table} {where}, column {col}: failed {check} (value {_short_repr(case)})"
        else:  # a check over whole rows (one failure case per column: keep one per row)
            column = None
            if row in bad_rows:
                continue
            value = (
                df[pk].iat[row] if row is not None and pk in df.columns and row < len(df) else None
            )
            if row is None and isinstance(case, str) and "Error" in case:
                # A row check that could not run because a column failed to coerce: noise.
                continue
            message = f"{table} row {row}: {check}" + (
                f" ({pk} {value!r})" if value is not None else ""
            )
        key = (row, column, check)
        if key in seen:
            continue
        seen.add(key)
        errors.add(table, row, column, check, value, message)


def _refuse_special_category(
    table: str, df: pd.DataFrame, errors: IngestErrors
) -> tuple[pd.DataFrame, bool]:
    """Columns named like special-category data (:func:`features.schemas.is_special_category`)
    reported as such, with the reason, and left out of the further checks (the strict
    schema would only call them unknown). Whether any was found."""
    special = [c for c in df.columns if is_special_category(str(c))]
    for column in special:
        errors.add(
            table,
            None,
            str(column),
            "special_category",
            column,
            f"{table}: column {column!r} looks like special-category data (GDPR art. 9: "
            "sex, health, religion, ...); tijdig never stores it. Leave the column out.",
        )
    return (df.drop(columns=special), True) if special else (df, False)


def _parse_date_columns(
    table: str, df: pd.DataFrame, errors: IngestErrors, reported: set[tuple[int, str]]
) -> pd.DataFrame:
    """Text dates parsed strictly as ISO ``YYYY-MM-DD`` before pandera sees them (pandas
    would read ``05-02-2024`` month first, as 2 May); each that is not is reported."""
    for col, (kind, _) in TABLE_COLUMNS[table].items():
        if kind != DATE or col not in df.columns:
            continue
        res = parse_date_strings(df[col])
        if res is None:
            continue
        parsed, bad = res
        for pos in np.flatnonzero(bad).tolist():
            value = df[col].iat[pos]
            reported.add((int(pos), col))
            errors.add(
                table,
                int(pos),
                col,
                "date_format",
                value,
                f"{table} row {pos}, column {col}: {value!r} is not a date written YYYY-MM-DD "
                "(ISO 8601; storable years 1678-2261)",
            )
        df[col] = parsed  # df is ingest's own (reset_index made it): the caller's is untouched
    return df


def _check_exact_ints(
    table: str, df: pd.DataFrame, errors: IngestErrors, reported: set[tuple[int, str]]
) -> None:
    """pandera's coercion truncates 12.5 to 12 (from a float column, and from an object
    column of floats, numeric strings or Decimals alike) and takes ``True`` as 1: money
    must never be rounded silently, so every value of an integer column that does not
    already hold integers is checked exactly here, and each that is not a whole number
    (or is a boolean, or lies beyond the 64-bit integers the columns hold) is reported
    with its row. Values that are not numbers at all are left to pandera, which reports
    them as failing to coerce."""
    for col, (kind, _) in TABLE_COLUMNS[table].items():
        if kind not in (INT, NULLABLE_INT) or col not in df.columns:
            continue
        s = df[col]
        if pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            continue
        if pd.api.types.is_float_dtype(s.dtype):
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
            bad_pos = np.flatnonzero(~np.isnan(vals) & (vals != np.round(vals))).tolist()
            bad = [(pos, vals[pos], "is not a whole number") for pos in bad_pos]
        else:
            bad = []
            for pos, v in enumerate(s.to_numpy(dtype=object).tolist()):
                why = _not_an_int64(v)
                if why is not None:
                    bad.append((pos, v, why))
        for pos, v, why in bad:
            reported.add((int(pos), col))
            errors.add(
                table,
                int(pos),
                col,
                "integer",
                v,
                f"{table} row {pos}, column {col}: {v!r} {why} (integers are exact: "
                "money is integer cents)",
            )


_INT64_RANGE = "is beyond the 64-bit integer range"


def _not_an_int64(value: Any) -> str | None:
    """Why ``value`` may not be stored in an integer column, or None when it may (a
    whole number within 64 bits, or null) or is for pandera to report (not a number)."""
    if isinstance(value, bool | np.bool_):
        return "is a boolean, not a number"
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return None if _INT64_MIN <= value <= _INT64_MAX else _INT64_RANGE
    if isinstance(value, float | np.floating | Decimal | str):
        if isinstance(value, float | np.floating) and math.isnan(value):
            return None  # null: nullability is pandera's to check
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            return None  # not a number: pandera reports it failing to coerce
        if not d.is_finite() or d != d.to_integral_value():
            return "is not a whole number"
        return None if _INT64_MIN <= d <= _INT64_MAX else _INT64_RANGE
    return None  # anything else is pandera's to coerce or report


def _check_calendar_days(table: str, df: pd.DataFrame, errors: IngestErrors) -> bool:
    """Dates are calendar days (midnight); a time of day would be lost in a DATE column."""
    ok = True
    for col, (kind, _) in TABLE_COLUMNS[table].items():
        if kind != DATE:
            continue
        s = df[col]
        bad = (s.notna() & (s != s.dt.normalize())).to_numpy()
        for pos in np.flatnonzero(bad).tolist():
            ok = False
            errors.add(
                table,
                int(pos),
                col,
                "calendar_day",
                s.iat[pos],
                f"{table} row {pos}, column {col}: {s.iat[pos]} has a time of day; "
                "dates are calendar days",
            )
    return ok

"""Event tables on disk: a folder of ``<table>.parquet`` or ``<table>.csv`` files.

The folder is how batches travel outside the service (simulator output, exports, a
creditor's bulk upload). Reading keeps integers exact (never via float) and parses the
date columns; it does **not** validate: that is :meth:`features.store.EventStore.ingest`'s
job, which reports every error with its row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from features.schemas import TABLES, columns_of, date_columns_of, parse_date_strings

if TYPE_CHECKING:
    from features.store import EventStore

__all__ = ["FORMATS", "EventFrames", "export_store", "read_event_dir", "write_event_dir"]

Format = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")


def _int_columns(table: str) -> dict[str, bool]:
    """Integer column -> nullable."""
    schema = TABLES[table][0].to_schema()
    return {
        name: bool(col.nullable)
        for name, col in schema.columns.items()
        if str(col.dtype).lower().startswith("int")
    }


class EventFrames(dict[str, pd.DataFrame]):
    """``table -> frame`` for the seven event tables, plus ``.warnings``: files ignored."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], warnings: list[str]):
        super().__init__(frames)
        self.warnings = warnings


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    """Everything is read as text, then integers (exact, never via float) and dates (ISO
    ``YYYY-MM-DD`` only, never guessed) are converted; a column that does not convert
    stays text, so ingest reports its rows."""
    ints = _int_columns(table)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise ValueError(_csv_problem(path, exc)) from exc
    for c, nullable in ints.items():
        if c not in df.columns:
            continue
        try:
            col = pd.array(df[c].to_numpy(dtype=object), dtype="Int64")
        except (TypeError, ValueError, OverflowError):  # beyond 64 bits: ingest reports it
            continue
        df[c] = col.astype("int64") if not nullable and not col.isna().any() else col
    for c in date_columns_of(table):
        if c not in df.columns:
            continue
        parsed = parse_date_strings(df[c])
        if parsed is None:  # no text: an empty column
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        elif not parsed[1].any():
            df[c] = parsed[0]
        # else a value is not an ISO date: the column stays text and ingest reports its rows
    return df


#: files `tijdig import-statements` writes beside the event tables: the labels for
#: `tijdig train --labels` (with their sidecar) and side attributes; read by other
#: commands, so not worth a warning here
COMPANION_FILES = frozenset(
    f"{name}.{ext}" for name in ("labels", "side_attributes") for ext in (*FORMATS, "json")
)


_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _csv_problem(path: Path, exc: pd.errors.ParserError) -> str:
    """What is wrong with a CSV file pandas could not split into rows, naming file and line."""
    counted = _FIELD_COUNT.search(str(exc))
    if counted is None:
        return f"{path.name}: not a readable CSV file ({exc})"
    header, line, found = counted.groups()
    return (
        f"{path.name} line {line}: {found} fields, but the header names {header} columns "
        "(a value holding a comma must be quoted)"
    )


def read_event_dir(path: str | Path) -> EventFrames:
    """Read ``<table>.parquet`` / ``<table>.csv`` for every event table in ``path``.

    Returns a dict of all seven tables (a missing file gives an empty frame with the
    contract's columns) whose ``.warnings`` names the files ignored: not an event table
    (nor one of the :data:`COMPANION_FILES`), or a second format of a table already read
    (parquet wins). A CSV file whose rows do not split into its header's columns raises
    ``ValueError`` naming the file and line.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"not an event folder: {root}")
    frames: dict[str, pd.DataFrame] = {}
    warnings: list[str] = []
    for table in TABLES:
        pq, csv = root / f"{table}.parquet", root / f"{table}.csv"
        if pq.exists():
            frames[table] = pd.read_parquet(pq)
            if csv.exists():
                warnings.append(f"{csv.name}: ignored, {pq.name} is read instead")
        elif csv.exists():
            frames[table] = _read_csv(csv, table)
        else:
            frames[table] = _empty(table)
    expected = {f"{t}.{ext}" for t in TABLES for ext in FORMATS} | COMPANION_FILES
    for f in sorted(root.iterdir()):
        if f.is_file() and f.name not in expected and not f.name.startswith("."):
            warnings.append(f"{f.name}: ignored, not an event table ({', '.join(TABLES)})")
    return EventFrames(frames, warnings)


def _empty(table: str) -> pd.DataFrame:
    return TABLES[table][0].validate(pd.DataFrame({c: [] for c in columns_of(table)}))


def write_event_dir(
    frames: Mapping[str, pd.DataFrame], path: str | Path, fmt: Format = "parquet"
) -> list[Path]:
    """Write each event table in ``frames`` to ``path/<table>.<fmt>``; returns the files.

    CSV: dates as ``YYYY-MM-DD``, empty field for null, integers without decimals.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for table, df in frames.items():
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        out = root / f"{table}.{fmt}"
        tmp = out.with_name(out.name + ".tmp")
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, date_format="%Y-%m-%d")
        tmp.replace(out)
        written.append(out)
    return written


def export_store(
    store: EventStore,
    path: str | Path,
    fmt: Format = "parquet",
    customer_ids: list[str] | None = None,
) -> list[Path]:
    """Write the store's tables (all customers, or ``customer_ids``) as an event folder."""
    return write_event_dir(store.read_frames(customer_ids), path, fmt)

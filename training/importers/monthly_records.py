"""Import month-by-month records (one row per account and month) and customer attributes.

Bureaus and collection systems export payment history *long*: per account and month a
status code and perhaps the amount billed and paid. :func:`import_monthly_records` maps
such a table onto the same settlement rule as the wide importer
(:mod:`training.importers.settlement`), with three differences that real exports need:

* **each account starts at its first record** (and ends at its last): months before it do
  not exist for the account, so account age (``tenure_days``) is a live feature;
* **status only** is allowed: without a statement column each month with a record (and a
  balance) issues a statement of ``status_only_amount`` units, so amount features count
  months; without a paid column only the settlements the status implies are paid;
* **status codes mean what the mapping declares** (:mod:`training.importers.statuses`:
  presets ``months_behind`` and ``dpd_buckets``, or one's own codes).

Customer attributes come from a second table (:mod:`training.importers.attributes`): rows
with an effective date (the application, later updates) become the ``customer_attributes``
table, which the features use point in time. The mapping is JSON with
``"format": "long"`` (:class:`RecordsConfig`); ``training/importers/README.md`` documents
every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.schemas import TABLES, columns_of
from training.importers.attributes import AttributesConfig, customer_records
from training.importers.monthly_statements import MonthlyImport, SourceRejected
from training.importers.settlement import (
    UNKNOWN_BEHIND,
    MonthGrid,
    StatementRules,
    statement_events,
)
from training.importers.statuses import StatusVocabulary
from training.rejected import EXAMPLES, shown

LONG = "long"


@dataclass(frozen=True)
class RecordsConfig:
    """How a long monthly-record table (and an attributes table) map to events."""

    id_column: str
    month_column: str
    status_column: str
    status: StatusVocabulary
    statement_column: str | None = None
    paid_column: str | None = None
    months_relative_to: str | None = None  # "YYYY-MM": months are whole-number offsets
    status_only_amount: float = 1.0
    label_column: str | None = None  # in the attributes table, else in the records
    label_as_of: str | None = None  # default: the first day after the last month
    id_prefix: str = ""
    rules: StatementRules = field(default_factory=StatementRules)
    attributes: AttributesConfig | None = None
    sensitive_columns: tuple[str, ...] = ()
    side_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rules.due_days < 1 or self.rules.due_days > 27:
            raise ValueError(f"due_days must be between 1 and 27; got {self.rules.due_days}")
        if self.rules.cents_per_unit <= 0:
            raise ValueError(f"cents_per_unit must be positive; got {self.rules.cents_per_unit}")
        if self.status_only_amount <= 0:
            raise ValueError(f"status_only_amount must be positive; got {self.status_only_amount}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RecordsConfig:
        rec = raw.get("records")
        if not isinstance(rec, dict) or not {"id_column", "month_column", "status_column"} <= set(
            rec
        ):
            raise ValueError(
                'a long mapping needs "records" with id_column, month_column and status_column '
                "(statement_column, paid_column optional)"
            )
        if "status" not in raw:
            raise ValueError(
                'a long mapping needs "status": {"preset": "dpd_buckets" | "months_behind"} or '
                '{"codes": {...}} saying what each status code means'
            )
        attributes = raw.get("attributes")
        return cls(
            id_column=rec["id_column"],
            month_column=rec["month_column"],
            status_column=rec["status_column"],
            statement_column=rec.get("statement_column"),
            paid_column=rec.get("paid_column"),
            months_relative_to=rec.get("months_relative_to"),
            status=StatusVocabulary.from_dict(raw["status"]),
            status_only_amount=float(raw.get("status_only_amount", 1.0)),
            label_column=raw.get("label_column"),
            label_as_of=raw.get("label_as_of"),
            id_prefix=raw.get("id_prefix", ""),
            rules=StatementRules(
                int(raw.get("due_days", 20)),
                int(raw.get("paid_early_days", 5)),
                float(raw.get("cents_per_unit", 100.0)),
                raw.get("product", "other"),
                raw.get("collection_method", "transfer"),
            ),
            attributes=(
                AttributesConfig.from_dict(
                    {**attributes, "cents_per_unit": float(raw.get("cents_per_unit", 100.0))}
                )
                if attributes
                else None
            ),
            sensitive_columns=tuple(raw.get("sensitive_columns", ())),
            side_columns=tuple(raw.get("side_columns", ())),
        )

    @classmethod
    def from_file(cls, path: Path) -> RecordsConfig:
        import json

        return cls.from_dict(json.loads(Path(path).read_text()))


def is_long_mapping(raw: dict[str, Any]) -> bool:
    """Whether a mapping JSON describes month-by-month records (``"format": "long"``)."""
    return raw.get("format") == LONG


class RecordsRejected(SourceRejected):
    """Monthly records the importer cannot map without guessing."""

    what = "monthly records"


def _listed(rows: np.ndarray, ids: np.ndarray, values: pd.Series | None = None) -> str:
    shown_rows = ", ".join(
        f"row {r} ({ids[r]}" + ("" if values is None else f": {shown(values.iat[r])}") + ")"
        for r in rows[:EXAMPLES]
    )
    more = f" and {rows.size - EXAMPLES} more" if rows.size > EXAMPLES else ""
    return shown_rows + more


def _months(raw: pd.Series, config: RecordsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Month numbers (months since 1970-01) and a mask of unreadable values."""
    if config.months_relative_to:
        base = pd.Period(config.months_relative_to, "M").ordinal
        offset = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(offset) | (offset != np.round(offset))
        return np.where(bad, 0, offset + base).astype(np.int64), bad
    text = raw.astype("string").str.strip()
    ok = text.str.fullmatch(r"\d{4}-\d{2}(-\d{2})?").fillna(False).to_numpy(dtype=bool)
    stamps = pd.to_datetime(text.where(ok).str.slice(0, 7), format="%Y-%m", errors="coerce")
    bad = stamps.isna().to_numpy()
    years = stamps.dt.year.fillna(1970).to_numpy(np.int64)
    months = stamps.dt.month.fillna(1).to_numpy(np.int64)
    return (years - 1970) * 12 + months - 1, bad


def _numbers(raw: pd.Series, name: str, ids: np.ndarray, problems: list[str]) -> np.ndarray:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    missing = pd.isna(raw).to_numpy()
    for mask, what in ((missing, "missing"), (~missing & ~np.isfinite(values), "not a number")):
        if mask.any():
            rows = np.flatnonzero(mask)
            problems.append(
                f"column {name!r}: {rows.size} value(s) {what}, "
                + _listed(rows, ids, None if what == "missing" else raw)
            )
    return np.nan_to_num(values)


def import_monthly_records(
    records: pd.DataFrame,
    config: RecordsConfig,
    attributes: pd.DataFrame | None = None,
    *,
    allow_sensitive: bool = False,
) -> MonthlyImport:
    """Map month-by-month records (and attributes) to event frames and external labels.

    Every problem in the records is collected and raised at once as
    :class:`RecordsRejected` (columns, rows counted from 0, account ids and values).
    """
    cols = [config.id_column, config.month_column, config.status_column]
    cols += [c for c in (config.statement_column, config.paid_column) if c]
    label_in_records = bool(
        config.label_column
        and (attributes is None or config.label_column not in attributes.columns)
    )
    if label_in_records:
        cols.append(config.label_column)  # type: ignore[arg-type]
    missing = [c for c in cols if c not in records.columns]
    if missing:
        raise ValueError(
            f"the records lack mapped columns {missing} (found {list(records.columns)}); "
            "check the mapping's records section"
        )
    if config.attributes is not None and attributes is None:
        raise ValueError("the mapping has an attributes section: give the attributes table")
    records = records.reset_index(drop=True)
    raw_ids = records[config.id_column]
    problems: list[str] = []
    no_id = pd.isna(raw_ids).to_numpy()
    if no_id.any():
        problems.append(
            f"column {config.id_column!r}: {no_id.sum()} id(s) missing, rows "
            + ", ".join(str(r) for r in np.flatnonzero(no_id)[:EXAMPLES])
        )
    ids = np.array([f"{config.id_prefix}{_id_text(v)}" for v in raw_ids.tolist()], dtype=object)
    month, bad_month = _months(records[config.month_column], config)
    if bad_month.any():
        want = "a whole number" if config.months_relative_to else "a month written YYYY-MM"
        rows = np.flatnonzero(bad_month)
        problems.append(
            f"column {config.month_column!r}: {rows.size} value(s) not {want}, "
            + _listed(rows, ids, records[config.month_column])
        )
    behind, full, none_owed, unknown = config.status.decode(records[config.status_column])
    if unknown.any():
        rows = np.flatnonzero(unknown)
        found = sorted({shown(v) for v in records[config.status_column].iloc[rows].tolist()})
        problems.append(
            f"column {config.status_column!r}: {rows.size} status value(s) missing or not "
            f"declared (found {', '.join(found[:10])}; declared: {config.status.described()}), "
            + _listed(rows, ids, records[config.status_column])
        )
    bill = (
        _numbers(records[config.statement_column], config.statement_column, ids, problems)
        if config.statement_column
        else np.where(none_owed, 0.0, config.status_only_amount)
    )
    paid = (
        _numbers(records[config.paid_column], config.paid_column, ids, problems)
        if config.paid_column
        else np.zeros(len(records))
    )
    keyed = pd.DataFrame({"id": ids, "month": month})
    dup = keyed.duplicated(keep=False).to_numpy() & ~bad_month & ~no_id
    if dup.any():
        rows = np.flatnonzero(dup)
        problems.append(
            f"{rows.size} rows repeat an (account, month) pair, one record per account and "
            "month: " + _listed(rows, ids, records[config.month_column])
        )
    if problems:
        raise RecordsRejected(problems)

    account, first_row = np.unique(ids, return_index=True)
    order = np.argsort(first_row, kind="stable")  # accounts in the order they first appear
    account = account[order]
    pos = {a: i for i, a in enumerate(account)}
    cust = np.fromiter((pos[v] for v in ids), dtype=np.int64, count=len(ids))
    m0 = int(month.min())
    T = int(month.max()) - m0 + 1
    n = len(account)
    col = month - m0
    start = np.full(n, T, dtype=np.int64)
    np.minimum.at(start, cust, col)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, cust, col)
    count = np.bincount(cust, minlength=n)
    gaps = np.flatnonzero(count != last - start + 1)
    if gaps.size:
        raise RecordsRejected(
            [
                f"{gaps.size} accounts have months without a record between their first and "
                "last (one record per month; a month without a balance has a status meaning "
                "no_balance), e.g. "
                + ", ".join(
                    f"{account[a]} ({count[a]} records over {last[a] - start[a] + 1} months)"
                    for a in gaps[:EXAMPLES]
                )
            ]
        )
    grid = MonthGrid(
        ids=account,
        first_period=pd.Period(ordinal=m0, freq="M"),
        behind=np.full((n, T), UNKNOWN_BEHIND, dtype=np.int64),
        paid_full=np.zeros((n, T), dtype=bool),
        bill=np.zeros((n, T)),
        paid=np.zeros((n, T)),
        start=start,
    )
    grid.behind[cust, col] = behind
    grid.paid_full[cust, col] = full
    grid.bill[cust, col] = bill
    grid.paid[cust, col] = paid
    invoices, payments, report, _ = statement_events(grid, config.rules)

    last_period = pd.Period(ordinal=m0 + T - 1, freq="M")
    label_as_of = pd.Timestamp(config.label_as_of or (last_period + 1).to_timestamp())
    if label_as_of <= last_period.to_timestamp(how="end").normalize():
        raise ValueError(f"label_as_of {config.label_as_of} must be after the last record's month")
    first_month = m0 + start  # months since 1970-01
    first_day = pd.to_datetime(
        pd.DataFrame({"year": 1970 + first_month // 12, "month": first_month % 12 + 1, "day": 1})
    )
    customers, attribute_rows, side, attr_report = customer_records(
        account,
        np.asarray(first_day, dtype="datetime64[ns]"),
        attributes,
        config.attributes,
        id_prefix=config.id_prefix,
        sensitive=config.sensitive_columns,
        side_columns=config.side_columns,
        allow_sensitive=allow_sensitive,
    )
    frames = {
        "customers": customers,
        "customer_attributes": attribute_rows,
        "invoices": invoices,
        "payments": payments,
    }
    for table in TABLES:
        frames.setdefault(table, pd.DataFrame({c: [] for c in columns_of(table)}))
    labels = _labels(records, ids, account, attributes, config, label_as_of, label_in_records)
    report.update(customers=n, months=T, records=len(records), **attr_report)
    return MonthlyImport(frames=frames, labels=labels, side=side, report=report)


def _id_text(value: Any) -> str:
    if isinstance(value, float) and np.isfinite(value) and value == int(value):
        return str(int(value))  # an integer id read into a float column
    return str(value)


def _labels(
    records: pd.DataFrame,
    ids: np.ndarray,
    account: np.ndarray,
    attributes: pd.DataFrame | None,
    config: RecordsConfig,
    label_as_of: pd.Timestamp,
    in_records: bool,
) -> pd.DataFrame:
    """One label per account at ``label_as_of`` (empty frame without a label column)."""
    if not config.label_column:
        return pd.DataFrame({"customer_id": [], "as_of": [], "label": []})
    name = config.label_column
    if in_records:
        source, source_ids, what = records[name], ids, "records"
    else:
        assert attributes is not None and config.attributes is not None
        source = attributes[name]
        source_ids = np.array(
            [
                f"{config.id_prefix}{_id_text(v)}"
                for v in attributes[config.attributes.id_column].tolist()
            ],
            dtype=object,
        )
        what = "attributes"
    values = pd.to_numeric(source, errors="coerce")
    bad = ~values.isin([0, 1]).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise RecordsRejected(
            [
                f"column {name!r} ({what}): {rows.size} label(s) not 0 or 1, "
                + _listed(rows, source_ids, source)
            ]
        )
    per = pd.DataFrame({"customer_id": source_ids, "label": values.to_numpy(np.int64)})
    varying = per.groupby("customer_id")["label"].nunique()
    if (varying > 1).any():
        bad_ids = varying.index[varying > 1].tolist()
        raise RecordsRejected(
            [
                f"column {name!r}: {len(bad_ids)} accounts have more than one label, e.g. {bad_ids[:EXAMPLES]}"
            ]
        )
    label_of = per.drop_duplicates("customer_id").set_index("customer_id")["label"]
    have = np.isin(account, label_of.index.to_numpy())
    if not have.all():
        missing = account[~have]
        raise RecordsRejected(
            [
                f"column {name!r}: {missing.size} accounts have records but no label, e.g. {missing[:EXAMPLES].tolist()}"
            ]
        )
    return pd.DataFrame(
        {"customer_id": account, "as_of": label_as_of, "label": label_of.loc[account].to_numpy()}
    )

"""Import monthly-statement data (one row per account, one column group per month) as events.

Card issuers, lenders and utilities often export history as one wide row per account:
for each month a *statement amount*, the *amount paid* that month and a *delay status*
(how many months the account is behind). :func:`import_monthly_statements` turns such a
table into tijdig's event contract (:mod:`features.schemas`) plus an external-label frame
(``customer_id, as_of, label``), so the one feature definition
(:func:`features.build.build_features`) and tijdig's own training see real history.

The column mapping lives in a JSON config (:class:`MappingConfig`;
``training/importers/taiwan.json`` is the UCI Taiwan credit-card example); the README in
this folder documents every choice. In short, for month ``t`` (chronological, ``0..T-1``):

* **statement → invoice**: issued on the last day of month ``t`` for the statement amount
  (only when > 0), due ``due_days`` later (so month ``t``'s statement is due in ``t+1``).
* **delay status → settlement day**: the status ``d`` observed at the end of month ``t``
  says the account is ``d`` months behind, i.e. the statement issued ``d`` months earlier
  is still unpaid. Statement ``k`` is therefore still unpaid at the end of month ``t``
  when ``d_t >= t - k``; it is settled in the first month where that stops holding:
  before its due date (``paid_in_full`` status, ``paid_early_days`` early), on its due date
  (``on_time`` status, e.g. revolving credit with the minimum paid) or ``30 × j`` days
  after it when it was ``j`` months late. Still behind at the last month → open.
  A status that points before the first month creates a *carry-over* invoice for that
  earlier statement (amount: the first positive statement amount), so "6 months behind"
  stays 6 months behind.
* **amount paid → payments**: the real amounts, dated on the due date of the previous
  statement (or its earlier settlement day), allocated oldest-open-invoice first without
  settling an invoice before its status-derived day; what remains of a payment goes to
  the latest statement. A synthetic *settlement* payment (id suffix ``-s``) completes each
  invoice on its settlement day. Payment totals therefore equal the source's, plus the
  settlement remainders that the delay status implies.
* **static attributes → customer record**: declared income from a proxy column (the credit
  limit × a factor: tree models are scale invariant; the ratio features become
  utilisation), birth year from age, household type from a marital-status column **only
  when sensitive attributes are explicitly allowed** (otherwise ``household_default``).
  Columns the contract has no place for (sex, education) come back as ``side`` — for
  comparison experiments only, never ingested.
* **label → external label** at ``label_as_of`` (after every imported event).

Amounts are multiplied by ``cents_per_unit`` (NT$ → euro cents at ~40 NT$/€ for Taiwan)
and rounded, at least 1 cent.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.schemas import MAX_AMOUNT_CENTS, TABLES, columns_of
from training.importers.settlement import MonthGrid, StatementRules, statement_events
from training.rejected import EXAMPLES, RowsRejected, shown


@dataclass(frozen=True)
class MonthColumns:
    """The source columns of one statement month."""

    period: str  # "YYYY-MM"
    statement: str
    paid: str
    status: str


@dataclass(frozen=True)
class MappingConfig:
    """How a wide monthly-statement table maps to events. Load with :meth:`from_file`."""

    id_column: str
    label_column: str | None
    label_as_of: str
    months: tuple[MonthColumns, ...]
    paid_in_full_status: tuple[int, ...] = (-2, -1)
    on_time_status: tuple[int, ...] = (0,)
    max_months_late: int = 9
    due_days: int = 20
    paid_early_days: int = 5
    cents_per_unit: float = 100.0
    id_prefix: str = ""
    created_at: str | None = None
    declared_income_column: str | None = None
    declared_income_factor: float = 1.0
    age_column: str | None = None
    age_reference_year: int | None = None
    household_column: str | None = None
    household_map: dict[str, str] = field(default_factory=dict)
    household_default: str = "single"
    sensitive_columns: tuple[str, ...] = ()
    side_columns: tuple[str, ...] = ()
    product: str = "other"
    collection_method: str = "transfer"

    def __post_init__(self) -> None:
        if len(self.months) < 2:
            raise ValueError(
                f"months must list at least 2 statement months; got {len(self.months)}"
            )
        periods = [pd.Period(m.period, "M") for m in self.months]
        if any(b != a + 1 for a, b in itertools.pairwise(periods)):
            raise ValueError(
                f"months must be consecutive and chronological; got {[m.period for m in self.months]}"
            )
        if self.due_days < 1 or self.due_days > 27:
            raise ValueError(f"due_days must be between 1 and 27; got {self.due_days}")
        if self.cents_per_unit <= 0:
            raise ValueError(f"cents_per_unit must be positive; got {self.cents_per_unit}")
        if pd.Timestamp(self.label_as_of) <= periods[-1].to_timestamp(how="end").normalize():
            raise ValueError(f"label_as_of {self.label_as_of} must be after the last statement day")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MappingConfig:
        status = raw.get("status", {})
        customer = raw.get("customer", {})
        return cls(
            id_column=raw["id_column"],
            label_column=raw.get("label_column"),
            label_as_of=raw["label_as_of"],
            months=tuple(MonthColumns(**m) for m in raw["months"]),
            paid_in_full_status=tuple(status.get("paid_in_full", (-2, -1))),
            on_time_status=tuple(status.get("on_time", (0,))),
            max_months_late=int(status.get("max_months_late", 9)),
            due_days=int(raw.get("due_days", 20)),
            paid_early_days=int(raw.get("paid_early_days", 5)),
            cents_per_unit=float(raw.get("cents_per_unit", 100.0)),
            id_prefix=raw.get("id_prefix", ""),
            created_at=customer.get("created_at"),
            declared_income_column=customer.get("declared_income_column"),
            declared_income_factor=float(customer.get("declared_income_factor", 1.0)),
            age_column=customer.get("age_column"),
            age_reference_year=customer.get("age_reference_year"),
            household_column=customer.get("household_column"),
            household_map={str(k): v for k, v in customer.get("household_map", {}).items()},
            household_default=customer.get("household_default", "single"),
            sensitive_columns=tuple(raw.get("sensitive_columns", ())),
            side_columns=tuple(raw.get("side_columns", ())),
            product=raw.get("product", "other"),
            collection_method=raw.get("collection_method", "transfer"),
        )

    @classmethod
    def from_file(cls, path: Path | str) -> MappingConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @property
    def rules(self) -> StatementRules:
        """How this mapping's statements become invoices."""
        return StatementRules(
            self.due_days,
            self.paid_early_days,
            self.cents_per_unit,
            self.product,
            self.collection_method,
        )

    def required_columns(self, allow_sensitive: bool) -> list[str]:
        cols = [self.id_column]
        for m in self.months:
            cols += [m.statement, m.paid, m.status]
        for c in (self.declared_income_column, self.age_column):
            if c:
                cols.append(c)
        if self.label_column:
            cols.append(self.label_column)
        if allow_sensitive and self.household_column:
            cols.append(self.household_column)
        return cols


@dataclass
class MonthlyImport:
    """The import result: event frames (contract columns), labels and side attributes."""

    frames: dict[str, pd.DataFrame]
    labels: pd.DataFrame  # customer_id, as_of, label
    side: pd.DataFrame  # customer_id + side columns (never ingested)
    report: dict[str, Any]
    #: what the labels mean (``horizon_days``, ``definition``), written beside them as
    #: ``labels.json`` for ``tijdig train --labels`` (:mod:`training.label_definition`)
    label_sidecar: dict[str, Any] | None = None

    @property
    def has_labels(self) -> bool:
        return len(self.labels) > 0

    def write(self, directory: Path, fmt: str = "parquet") -> list[Path]:
        """Event tables as ``<table>.<fmt>``, plus ``labels.<fmt>`` when there are labels
        (with ``labels.json`` when their meaning is stated) and ``side_attributes.<fmt>``
        when there are side columns. Returns the extra files written."""
        import json

        from features.io import write_event_dir

        directory.mkdir(parents=True, exist_ok=True)
        write_event_dir(self.frames, directory, fmt=fmt)  # type: ignore[arg-type]
        written = []
        for name, df in (("labels", self.labels), ("side_attributes", self.side)):
            if (name == "side_attributes" and df.shape[1] <= 1) or (
                name == "labels" and not self.has_labels
            ):
                continue
            written.append(directory / f"{name}.{fmt}")
            if fmt == "csv":
                df.to_csv(written[-1], index=False)
            else:
                df.to_parquet(written[-1], index=False)
        if self.has_labels and self.label_sidecar:
            written.append(directory / "labels.json")
            written[-1].write_text(json.dumps(self.label_sidecar, indent=1) + "\n")
        return written


class SourceRejected(RowsRejected):
    """Source values the importer cannot map without guessing: every column with example
    rows and their account ids and values."""

    what = "monthly statements"


def _account_ids(raw: pd.Series, config: MappingConfig) -> np.ndarray:
    """The customer ids the accounts become (``id_prefix`` + the id as written), checked
    on what is stored: a missing id would become "nan", a float column "1.0", and ids
    1 and "1" the same customer. Each is reported with its rows."""
    problems = []
    missing = np.flatnonzero(pd.isna(raw).to_numpy())
    if missing.size:
        problems.append(
            f"column {config.id_column!r}: {missing.size} id(s) missing, rows "
            + ", ".join(str(r) for r in missing[:EXAMPLES])
        )
    text = []
    for v in raw.tolist():
        if isinstance(v, float) and np.isfinite(v) and v == int(v):
            v = int(v)  # an integer id read into a float column (a gap elsewhere in it)
        text.append(f"{config.id_prefix}{v}")
    ids = np.array(text, dtype=object)
    dup = pd.Series(ids).duplicated(keep=False).to_numpy() & ~pd.isna(raw).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        problems.append(
            f"column {config.id_column!r}: {rows.size} rows share an id, e.g. "
            + ", ".join(f"row {r} ({shown(raw.iat[r])} → {ids[r]})" for r in rows[:EXAMPLES])
        )
    if problems:
        raise SourceRejected(problems)
    return ids


def _check_values(source: pd.DataFrame, config: MappingConfig) -> None:
    """Every mapped status, amount and label value is a number; statuses and labels whole.

    A missing delay status would otherwise become a huge negative integer (settling every
    open statement), a missing label -9.2e18 and a missing amount "no statement" or "no
    payment"; so each such value is reported instead of imported.
    """
    whole = [m.status for m in config.months]
    if config.label_column:
        whole.append(config.label_column)
    amounts = [c for m in config.months for c in (m.statement, m.paid)]
    ids = source[config.id_column].to_numpy(dtype=object)
    problems = []
    for col in dict.fromkeys([*whole, *amounts]):
        raw = source[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
        missing = pd.isna(raw).to_numpy()
        not_number = ~missing & ~np.isfinite(values)
        fraction = np.isfinite(values) & (values != np.round(values)) if col in whole else None
        for mask, what in (
            (missing, "missing"),
            (not_number, "not a finite number"),
            (fraction, "not a whole number"),
        ):
            if mask is None or not mask.any():
                continue
            rows = np.flatnonzero(mask)
            listed = ", ".join(
                f"row {r} ({config.id_column} {ids[r]}"
                + ("" if what == "missing" else f": {shown(raw.iat[r])}")
                + ")"
                for r in rows[:EXAMPLES]
            )
            more = f" and {rows.size - EXAMPLES} more" if rows.size > EXAMPLES else ""
            problems.append(f"column {col!r}: {rows.size} value(s) {what}, {listed}{more}")
    if problems:
        raise SourceRejected(problems)


def import_monthly_statements(
    source: pd.DataFrame, config: MappingConfig, *, allow_sensitive: bool = False
) -> MonthlyImport:
    """Map a wide monthly-statement table to event frames and external labels.

    ``allow_sensitive=False`` (the default) never reads ``config.sensitive_columns``:
    household type then is ``household_default`` and side attributes leave them out.
    """
    missing = [c for c in config.required_columns(allow_sensitive) if c not in source.columns]
    if missing:
        raise ValueError(f"the source lacks mapped columns {missing}; check the mapping config")
    n = len(source)
    ids = _account_ids(source[config.id_column], config)
    _check_values(source, config)
    status = np.stack(
        [pd.to_numeric(source[m.status]).to_numpy(np.int64) for m in config.months], axis=1
    )
    grid = MonthGrid(
        ids=ids,
        first_period=pd.Period(config.months[0].period, "M"),
        behind=np.minimum(status, config.max_months_late),
        paid_full=np.isin(status, config.paid_in_full_status),
        bill=np.stack(
            [pd.to_numeric(source[m.statement]).to_numpy(np.float64) for m in config.months],
            axis=1,
        ),
        paid=np.stack(
            [pd.to_numeric(source[m.paid]).to_numpy(np.float64) for m in config.months], axis=1
        ),
        start=np.zeros(n, dtype=np.int64),
    )
    invoices, payments, report, first_issue = statement_events(grid, config.rules)

    customers = pd.DataFrame({"customer_id": ids})
    customers["household_type"] = config.household_default
    if allow_sensitive and config.household_column:
        mapped = source[config.household_column].astype(str).map(config.household_map)
        customers["household_type"] = mapped.fillna(config.household_default).to_numpy()
    if config.age_column and config.age_reference_year:
        age = pd.to_numeric(source[config.age_column], errors="coerce")
        customers["birth_year"] = (config.age_reference_year - age).round().astype("Int64")
    else:
        customers["birth_year"] = pd.array([pd.NA] * n, dtype="Int64")
    if config.declared_income_column:
        value = pd.to_numeric(source[config.declared_income_column], errors="coerce").to_numpy(
            np.float64
        )
        cents = np.clip(
            np.rint(value * config.declared_income_factor * config.cents_per_unit),
            0,
            MAX_AMOUNT_CENTS,
        )
        customers["declared_net_income_cents"] = pd.array(
            [pd.NA if c != c else int(c) for c in cents], dtype="Int64"
        )
    else:
        customers["declared_net_income_cents"] = pd.array([pd.NA] * n, dtype="Int64")
    created = (
        pd.Timestamp(config.created_at) if config.created_at else first_issue - pd.Timedelta(days=1)
    )
    customers["created_at"] = created
    customers = customers[columns_of("customers")]

    frames = {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
    }
    for table in TABLES:
        if table not in frames:
            frames[table] = pd.DataFrame({c: [] for c in columns_of(table)})

    if config.label_column:
        labels = pd.DataFrame(
            {
                "customer_id": ids,
                "as_of": pd.Timestamp(config.label_as_of),
                "label": pd.to_numeric(source[config.label_column]).to_numpy(np.int64),
            }
        )
    else:
        labels = pd.DataFrame({"customer_id": [], "as_of": [], "label": []})
    side_cols = [
        c
        for c in config.side_columns
        if c in source.columns and (allow_sensitive or c not in config.sensitive_columns)
    ]
    side = pd.DataFrame({"customer_id": ids, **{c: source[c].to_numpy() for c in side_cols}})
    report["customers"] = n
    return MonthlyImport(frames=frames, labels=labels, side=side, report=report)

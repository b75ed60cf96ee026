"""Customer attributes with an effective date → the customer record of the event contract.

A creditor's application file holds per account its age or birth date, declared income,
household and employment, and the day they were given (the application date). The
contract's customer record (:class:`features.schemas.CustomerSchema`) is known to the
features only from its ``created_at`` on (``features/build.py``: unknown before it), so
``created_at`` is the attributes' effective date: a snapshot before it sees no age, income
or household, one after it does. Without an effective date the record starts at the first
day of the account's first month.

Attributes the contract has no column for (employment, education) come back as *side*
columns, for comparison experiments only, never ingested. Special-category columns — those
listed in ``sensitive_columns`` and those named like
:data:`features.schemas.SPECIAL_CATEGORY_FIELDS` (``CODE_GENDER``, ``religion``) — are
read only with ``allow_sensitive``; otherwise the household falls back to its default and
the side table leaves them out, and the report names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.schemas import MAX_AMOUNT_CENTS, SPECIAL_CATEGORY_FIELDS, columns_of
from training.rejected import EXAMPLES, RowsRejected, shown


class AttributesRejected(RowsRejected):
    """Attribute rows the importer cannot map without guessing."""

    what = "customer attributes"


@dataclass(frozen=True)
class AttributesConfig:
    """Which attribute columns mean what (every key optional except ``id_column``)."""

    id_column: str
    effective_date_column: str | None = None
    effective_date: str | None = None  # one day for every row
    birth_date_column: str | None = None
    birth_year_column: str | None = None
    age_column: str | None = None  # age in years on the effective date
    declared_income_column: str | None = None
    declared_income_factor: float = 1.0  # source unit per month → units (then cents_per_unit)
    household_column: str | None = None
    household_map: dict[str, str] = field(default_factory=dict)
    household_default: str = "single"
    cents_per_unit: float = 100.0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AttributesConfig:
        if "id_column" not in raw:
            raise ValueError("attributes need an id_column naming the account id column")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown attributes keys {unknown}; known: {sorted(known)}")
        values = dict(raw)
        values["household_map"] = {str(k): v for k, v in raw.get("household_map", {}).items()}
        return cls(**values)

    def mapped_columns(self) -> list[str]:
        return [
            c
            for c in (
                self.effective_date_column,
                self.birth_date_column,
                self.birth_year_column,
                self.age_column,
                self.declared_income_column,
                self.household_column,
            )
            if c
        ]


def is_special_category(column: str, declared: tuple[str, ...] = ()) -> bool:
    """Whether ``column`` is declared sensitive or named like special-category data."""
    if column in declared:
        return True
    name = re.sub(r"[^a-z0-9]+", "_", column.lower())
    return any(re.search(rf"(^|_){word}(_|$)", name) for word in SPECIAL_CATEGORY_FIELDS)


def _dates(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    text = raw.astype("string").str.strip()
    ok = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(dtype=bool)
    stamps = pd.to_datetime(text.where(ok), format="%Y-%m-%d", errors="coerce")
    return stamps.to_numpy(dtype="datetime64[ns]"), ~ok & ~pd.isna(raw).to_numpy()


def customer_records(
    account: np.ndarray,
    first_day: np.ndarray,
    attributes: pd.DataFrame | None,
    config: AttributesConfig | None,
    *,
    id_prefix: str,
    sensitive: tuple[str, ...],
    side_columns: tuple[str, ...],
    allow_sensitive: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Customer records for ``account`` (contract columns), side columns and a report.

    ``first_day`` is each account's first record month's first day (the record's
    ``created_at`` when no effective date is given).
    """
    n = len(account)
    customers = pd.DataFrame(
        {
            "customer_id": account,
            "household_type": config.household_default if config else "single",
            "birth_year": pd.array([pd.NA] * n, dtype="Int64"),
            "declared_net_income_cents": pd.array([pd.NA] * n, dtype="Int64"),
            "created_at": first_day,
        }
    )
    side = pd.DataFrame({"customer_id": account})
    if attributes is None or config is None:
        return customers[columns_of("customers")], side, {}
    missing = [c for c in [config.id_column, *config.mapped_columns()] if c not in attributes]
    if missing:
        raise ValueError(
            f"the attributes lack mapped columns {missing} (found {list(attributes.columns)})"
        )
    attributes = attributes.reset_index(drop=True)
    ids = np.array(
        [f"{id_prefix}{_id_text(v)}" for v in attributes[config.id_column].tolist()], dtype=object
    )
    problems = []
    repeated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(repeated)
        problems.append(
            f"column {config.id_column!r}: {rows.size} rows share an account (one row per "
            "account: the attributes as given on its effective date), e.g. "
            + ", ".join(f"row {r} ({ids[r]})" for r in rows[:EXAMPLES])
        )
    read = {
        c: allow_sensitive or not is_special_category(c, sensitive) for c in config.mapped_columns()
    }
    not_read = sorted(c for c, ok in read.items() if not ok)
    created = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    if config.effective_date_column:
        created, bad = _dates(attributes[config.effective_date_column])
        bad |= np.isnat(created)  # a record known from no day would be a guess
        _report_bad(
            problems, attributes, config.effective_date_column, ids, bad, "a date YYYY-MM-DD"
        )
    elif config.effective_date:
        created[:] = np.datetime64(pd.Timestamp(config.effective_date), "ns")
    birth_year = np.full(len(ids), np.nan)
    if config.birth_date_column and read[config.birth_date_column]:
        born, bad = _dates(attributes[config.birth_date_column])
        _report_bad(problems, attributes, config.birth_date_column, ids, bad, "YYYY-MM-DD")
        birth_year = pd.DatetimeIndex(born).year.to_numpy(np.float64)
    elif config.birth_year_column and read[config.birth_year_column]:
        birth_year = _whole(problems, attributes, config.birth_year_column, ids)
    elif config.age_column and read[config.age_column]:
        age = _whole(problems, attributes, config.age_column, ids)
        # age on the effective date, else on the first day of the account's first month
        first_of = pd.Series(first_day, index=account).reindex(ids).to_numpy("datetime64[ns]")
        on = np.where(np.isnat(created), first_of, created)
        birth_year = pd.DatetimeIndex(on).year.to_numpy(np.float64) - age
    income = np.full(len(ids), np.nan)
    if config.declared_income_column and read[config.declared_income_column]:
        value = pd.to_numeric(attributes[config.declared_income_column], errors="coerce")
        income = np.clip(
            np.rint(
                value.to_numpy(np.float64) * config.declared_income_factor * config.cents_per_unit
            ),
            0,
            MAX_AMOUNT_CENTS,
        )
    if problems:
        raise AttributesRejected(problems)
    found = pd.DataFrame(
        {"birth_year": birth_year, "income": income, "created": created}, index=ids
    )
    have = np.isin(account, ids)
    at = found.reindex(account)
    customers["birth_year"] = pd.array(
        [pd.NA if v != v else round(v) for v in at["birth_year"]], dtype="Int64"
    )
    customers["declared_net_income_cents"] = pd.array(
        [pd.NA if v != v else int(v) for v in at["income"]], dtype="Int64"
    )
    effective = at["created"].to_numpy(dtype="datetime64[ns]")
    customers["created_at"] = np.where(np.isnat(effective), first_day, effective)
    if config.household_column and read[config.household_column]:
        mapped = attributes[config.household_column].astype(str).map(config.household_map)
        hh = pd.Series(mapped.to_numpy(), index=ids).reindex(account)
        customers["household_type"] = hh.fillna(config.household_default).to_numpy()
    side_cols = [
        c
        for c in side_columns
        if c in attributes.columns and (allow_sensitive or not is_special_category(c, sensitive))
    ]
    not_read += sorted(c for c in side_columns if c not in side_cols and c in attributes.columns)
    for c in side_cols:
        side[c] = pd.Series(attributes[c].to_numpy(), index=ids).reindex(account).to_numpy()
    report: dict[str, Any] = {
        "accounts_with_attributes": int(have.sum()),
        "attributes_without_records": int((~np.isin(ids, account)).sum()),
    }
    if not_read:
        report["special_category_not_read"] = sorted(set(not_read))
    return customers[columns_of("customers")], side, report


def _id_text(value: Any) -> str:
    if isinstance(value, float) and np.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def _whole(problems: list[str], frame: pd.DataFrame, column: str, ids: np.ndarray) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    bad = ~pd.isna(frame[column]).to_numpy() & ~np.isfinite(values)
    _report_bad(problems, frame, column, ids, bad, "a number")
    return values


def _report_bad(
    problems: list[str],
    frame: pd.DataFrame,
    column: str,
    ids: np.ndarray,
    bad: np.ndarray,
    want: str,
) -> None:
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    listed = ", ".join(
        f"row {r} ({ids[r]}: {shown(frame[column].iat[r])})" for r in rows[:EXAMPLES]
    )
    more = f" and {rows.size - EXAMPLES} more" if rows.size > EXAMPLES else ""
    problems.append(f"column {column!r}: {rows.size} value(s) not {want}, {listed}{more}")

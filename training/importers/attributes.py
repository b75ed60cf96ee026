"""Customer attributes with an effective date → the ``customer_attributes`` table.

A creditor's application file holds per account its age or birth date, declared income,
household and employment, and the day they were given (the application date); later
rows of the same account are updates (a new income, a new job). Each row becomes a row of
the contract's ``customer_attributes`` table (:class:`features.schemas.CustomerAttributeSchema`),
known to the features from the day after its ``effective_date``: a snapshot before the
application sees no age, income, household or employment, one after the update sees the
update. Without an effective date a row is effective on the first day of the account's
first month. The customer record itself starts at the account's earliest effective date
(else its first month) and carries only the household default.

Attributes the contract has no column for (education) come back as *side* columns, for
comparison experiments only, never ingested. Special-category columns — those listed in
``sensitive_columns`` and those named like :data:`features.schemas.SPECIAL_CATEGORY_FIELDS`
(``CODE_GENDER``, ``religion``) — are read only with ``allow_sensitive``; otherwise the
household falls back to its default and the side table leaves them out, and the report
names them. Ingest refuses such columns whatever the import did.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.schemas import MAX_AMOUNT_CENTS, EmploymentStatus, columns_of, is_special_category
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
    employment_column: str | None = None
    employment_map: dict[str, str] = field(default_factory=dict)  # source code → status
    application_date_column: str | None = None
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
        values["employment_map"] = {str(k): v for k, v in raw.get("employment_map", {}).items()}
        statuses = {e.value for e in EmploymentStatus}
        wrong = sorted({v for v in values["employment_map"].values() if v not in statuses})
        if wrong:
            raise ValueError(f"employment_map values {wrong} are not among {sorted(statuses)}")
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
                self.employment_column,
                self.application_date_column,
            )
            if c
        ]


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
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Customer records for ``account``, their ``customer_attributes`` rows (contract
    columns both), side columns and a report.

    ``first_day`` is each account's first record month's first day. Rows of accounts
    without records are left out (counted in the report); every other problem is raised
    at once as :class:`AttributesRejected`, naming rows, accounts and values.
    """
    customers = pd.DataFrame(
        {
            "customer_id": account,
            "household_type": config.household_default if config else "single",
            "birth_year": pd.array([pd.NA] * len(account), dtype="Int64"),
            "declared_net_income_cents": pd.array([pd.NA] * len(account), dtype="Int64"),
            "created_at": first_day,
        }
    )
    side = pd.DataFrame({"customer_id": account})
    no_rows = pd.DataFrame({c: [] for c in columns_of("customer_attributes")})
    if attributes is None or config is None:
        return customers[columns_of("customers")], no_rows, side, {}
    missing = [c for c in [config.id_column, *config.mapped_columns()] if c not in attributes]
    if missing:
        raise ValueError(
            f"the attributes lack mapped columns {missing} (found {list(attributes.columns)})"
        )
    attributes = attributes.reset_index(drop=True)
    ids = np.array(
        [f"{id_prefix}{_id_text(v)}" for v in attributes[config.id_column].tolist()], dtype=object
    )
    problems: list[str] = []
    read = {
        c: allow_sensitive or not is_special_category(c, sensitive) for c in config.mapped_columns()
    }
    not_read = sorted(c for c, ok in read.items() if not ok)
    first_of = pd.Series(first_day, index=account).reindex(ids).to_numpy("datetime64[ns]")
    effective = first_of.copy()  # NaT for accounts without records (left out below)
    if config.effective_date_column:
        effective, bad = _dates(attributes[config.effective_date_column])
        bad |= np.isnat(effective)  # a row known from no day would be a guess
        _report_bad(
            problems, attributes, config.effective_date_column, ids, bad, "a date YYYY-MM-DD"
        )
    elif config.effective_date:
        effective[:] = np.datetime64(pd.Timestamp(config.effective_date), "ns")
    keyed = pd.DataFrame({"id": ids, "day": effective})
    repeated = keyed.duplicated(keep=False).to_numpy() & ~np.isnat(effective)
    if repeated.any():
        twice = np.flatnonzero(repeated)
        problems.append(
            f"{twice.size} rows give an account two rows for one effective date (one row per "
            "account and day: the attributes as stated that day), e.g. "
            + ", ".join(f"row {r} ({ids[r]})" for r in twice[:EXAMPLES])
        )
    birth_year = np.full(len(ids), np.nan)
    if config.birth_date_column and read[config.birth_date_column]:
        born, bad = _dates(attributes[config.birth_date_column])
        _report_bad(problems, attributes, config.birth_date_column, ids, bad, "YYYY-MM-DD")
        birth_year = pd.DatetimeIndex(born).year.to_numpy(np.float64)
    elif config.birth_year_column and read[config.birth_year_column]:
        birth_year = _whole(problems, attributes, config.birth_year_column, ids)
    elif config.age_column and read[config.age_column]:
        age = _whole(problems, attributes, config.age_column, ids)
        birth_year = pd.DatetimeIndex(effective).year.to_numpy(np.float64) - age  # on the day
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
    household = np.full(len(ids), None, dtype=object)
    if config.household_column and read[config.household_column]:
        mapped = attributes[config.household_column].astype(str).map(config.household_map)
        household = mapped.astype(object).where(mapped.notna(), None).to_numpy(dtype=object)
    employment = np.full(len(ids), None, dtype=object)
    if config.employment_column and read[config.employment_column]:
        employment = _employment(problems, attributes, config, ids)
    applied = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    if config.application_date_column and read[config.application_date_column]:
        applied, bad = _dates(attributes[config.application_date_column])
        _report_bad(problems, attributes, config.application_date_column, ids, bad, "YYYY-MM-DD")
        _report_bad(
            problems,
            attributes,
            config.application_date_column,
            ids,
            ~np.isnat(applied) & ~np.isnat(effective) & (applied > effective),
            "on or before the row's effective date",
        )
    if problems:
        raise AttributesRejected(problems)

    have = np.isin(ids, account)
    day_text = np.datetime_as_string(effective.astype("datetime64[D]"), unit="D")
    rows = pd.DataFrame(
        {
            "attribute_id": [_attribute_id(i, d) for i, d in zip(ids, day_text, strict=True)],
            "customer_id": ids,
            "effective_date": effective,
            "birth_year": pd.array(
                [pd.NA if v != v else round(v) for v in birth_year], dtype="Int64"
            ),
            "declared_net_income_cents": pd.array(
                [pd.NA if v != v else int(v) for v in income], dtype="Int64"
            ),
            "household_type": household,
            "employment": employment,
            "application_date": applied,
        }
    )[have]
    rows = rows.sort_values(["customer_id", "effective_date"], kind="stable")
    # the relationship starts at the account's first statement of attributes, if any
    earliest = rows.groupby("customer_id")["effective_date"].min().reindex(account)
    start = earliest.to_numpy(dtype="datetime64[ns]")
    customers["created_at"] = np.where(np.isnat(start), first_day, start)
    latest = rows.drop_duplicates("customer_id", keep="last").index  # one side row per account
    side_cols = [
        c
        for c in side_columns
        if c in attributes.columns and (allow_sensitive or not is_special_category(c, sensitive))
    ]
    not_read += sorted(c for c in side_columns if c not in side_cols and c in attributes.columns)
    for c in side_cols:
        values = pd.Series(attributes[c].to_numpy()[latest], index=ids[latest])
        side[c] = values.reindex(account).to_numpy()
    report: dict[str, Any] = {
        "accounts_with_attributes": int(np.isin(account, ids).sum()),
        "attribute_rows": len(rows),
        "attributes_without_records": int((~have).sum()),
    }
    if not_read:
        report["special_category_not_read"] = sorted(set(not_read))
    return customers[columns_of("customers")], rows.reset_index(drop=True), side, report


def _attribute_id(customer_id: str, day: str) -> str:
    """``<customer>@<day>``: stable, so re-importing a file changes nothing; a hash when
    that would pass the contract's 64 characters."""
    text = f"{customer_id}@{day}"
    return text if len(text) <= 64 else "attr-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def _employment(
    problems: list[str], frame: pd.DataFrame, config: AttributesConfig, ids: np.ndarray
) -> np.ndarray:
    """Employment statuses: source codes through ``employment_map`` (a status named as it
    is needs no entry); a code that is neither is refused, a missing one is not stated."""
    assert config.employment_column is not None
    raw = frame[config.employment_column]
    statuses = {e.value for e in EmploymentStatus}
    text = raw.astype(str).str.strip()
    mapped = text.map(lambda v: config.employment_map.get(v, v if v in statuses else None))
    given = ~pd.isna(raw).to_numpy()
    bad = given & mapped.isna().to_numpy()
    _report_bad(
        problems,
        frame,
        config.employment_column,
        ids,
        bad,
        f"an employment status ({', '.join(sorted(statuses))}) or a code of employment_map",
    )
    out = mapped.to_numpy(dtype=object)
    out[~given | bad] = None
    return out


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

"""The event contract: the tables creditor systems send to tijdig, and their pandera schemas.

Events are the source of truth (ARCHITECTURE.md, decision 1). Every row has a stable id,
so ingesting a batch twice changes nothing. Money is **integer euro cents** (never float),
dates are calendar days (``datetime64`` at midnight, no time zone): an event dated ``d``
is known from ``d + 1`` on, so a feature ``as_of`` a day sees only events dated before it.

The tables:

============================  =============================================================
``customers``                 one row per customer: household type, birth year, declared income
``invoices``                  what the creditor billed: issue date, due date, amount, product
``payments``                  money received against an invoice (any method)
``debit_attempts``            SEPA direct-debit attempts with result and reason code
``collection_steps``          dunning steps reached: reminder, 14-day letter, agency, bailiff
``arrangements``              payment plans: start, monthly amount, term, outcome
``income_receipts``           income seen on the customer's account (open banking), by source
``account_balances``          end-of-day account balance seen through open banking (PSD2 AIS)
``customer_attributes``       what the customer stated, as of an effective date: birth year,
                              declared income, household, employment, application date;
                              several dated rows per customer (:class:`CustomerAttributeSchema`)
============================  =============================================================
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera import extensions
from pandera.typing import Series


class HouseholdType(StrEnum):
    """Household types that the Dutch affordability norms distinguish (DOMAIN.md §2)."""

    SINGLE = "single"
    SINGLE_PARENT = "single_parent"
    COUPLE = "couple"
    COUPLE_WITH_CHILDREN = "couple_with_children"
    PENSIONER_SINGLE = "pensioner_single"
    PENSIONER_COUPLE = "pensioner_couple"


class Product(StrEnum):
    """What an invoice is for. ``bnpl`` invoices are pay-later orders."""

    PREMIUM = "premium"
    ENERGY = "energy"
    TELECOM = "telecom"
    BNPL = "bnpl"
    OTHER = "other"


class CollectionMethod(StrEnum):
    DIRECT_DEBIT = "direct_debit"
    TRANSFER = "transfer"


class PaymentMethod(StrEnum):
    DIRECT_DEBIT = "direct_debit"
    TRANSFER = "transfer"
    ARRANGEMENT = "arrangement"
    AGENCY = "agency"


class DebitResult(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    REVERSED = "reversed"  # refunded by the customer afterwards (MD06)


class SepaReasonCode(StrEnum):
    """SEPA R-transaction reason codes (DOMAIN.md §7)."""

    AM04 = "AM04"  # insufficient funds
    MS03 = "MS03"  # reason not specified (often used instead of AM04)
    MD06 = "MD06"  # refund requested by the debtor
    MS02 = "MS02"  # refused by the debtor
    AC04 = "AC04"  # account closed
    AC06 = "AC06"  # account blocked
    MD07 = "MD07"  # debtor deceased
    MD01 = "MD01"  # no valid mandate


class CollectionStep(StrEnum):
    """Dunning steps in the order a claim walks them (DOMAIN.md §6)."""

    REMINDER = "reminder"
    FOURTEEN_DAY_LETTER = "fourteen_day_letter"  # the second reminder, the legal 14-day letter
    AGENCY = "agency"
    BAILIFF = "bailiff"


class ArrangementOutcome(StrEnum):
    ACTIVE = "active"
    KEPT = "kept"
    BROKEN = "broken"


class IncomeSource(StrEnum):
    SALARY = "salary"
    BENEFIT = "benefit"
    PENSION = "pension"
    ALLOWANCE = "allowance"  # toeslagen
    OTHER = "other"


class EmploymentStatus(StrEnum):
    """What the customer stated about their work (an application form's usual choices).

    The feature ``employment_status`` is this enum's position (0 = employed ... 5 =
    unemployed): documented in ``docs/customer-attributes.md``.
    """

    EMPLOYED = "employed"
    SELF_EMPLOYED = "self_employed"
    RETIRED = "retired"
    STUDENT = "student"
    OTHER = "other"
    UNEMPLOYED = "unemployed"


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


# Ids are opaque strings chosen by the sender; bounded so that a bad column (a whole
# document pasted into an id) is rejected instead of stored.
_ID_LENGTH = {"min_value": 1, "max_value": 64}
MAX_AMOUNT_CENTS: Final = 100_000_000  # EUR 1,000,000: larger single events are input errors
EARLIEST_DATE: Final = pd.Timestamp("1990-01-01")


#: Control characters (C0 and DEL) have no place in an id: a NUL cannot even be stored by
#: PostgreSQL (SQLite would keep it), and a tab or newline breaks every export and log line.
CONTROL_CHARACTERS: Final = r"[\x00-\x1f\x7f]"


def _no_control_characters(s: pd.Series) -> pd.Series:
    return ~s.str.contains(CONTROL_CHARACTERS, regex=True, na=False)


if not hasattr(pa.Check, "no_control_characters"):  # registered once per process
    _no_control_characters.__name__ = "no_control_characters"
    extensions.register_check_method(statistics=[])(_no_control_characters)


def _id_field(*, unique: bool = False) -> Any:
    """An id column: 1-64 characters, none of them a control character (every other
    text column is an enum, whose ``isin`` refuses those too)."""
    return pa.Field(unique=unique, str_length=_ID_LENGTH, no_control_characters={})


#: Names of special-category or proxy data (GDPR art. 9, CCD2): refused as request fields
#: (``service.schemas.bnpl``) and never read from a creditor's files without
#: ``--allow-sensitive`` (``training.importers.attributes``).
SPECIAL_CATEGORY_FIELDS = frozenset(
    {
        "sex",
        "gender",
        "ethnicity",
        "race",
        "religion",
        "health",
        "disability",
        "sexual_orientation",
        "political_opinion",
        "trade_union",
        "biometric",
        "genetic",
        "marital_status",
        "nationality",
    }
)


def is_special_category(column: str, declared: tuple[str, ...] = ()) -> bool:
    """Whether ``column`` is declared sensitive or named like special-category data
    (``CODE_GENDER``, ``religion``, ``Marital Status``): words of
    :data:`SPECIAL_CATEGORY_FIELDS` in the name, case and separators ignored."""
    if column in declared:
        return True
    name = re.sub(r"[^a-z0-9]+", "_", str(column).lower())
    return any(re.search(rf"(^|_){word}(_|$)", name) for word in SPECIAL_CATEGORY_FIELDS)


class _Base(pa.DataFrameModel):
    class Config:
        strict = True  # unknown columns are an error: a typo must not silently drop data
        coerce = True


class CustomerSchema(_Base):
    customer_id: Series[str] = _id_field(unique=True)
    household_type: Series[str] = pa.Field(isin=_values(HouseholdType))
    birth_year: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1900, le=2030)
    declared_net_income_cents: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=0, le=MAX_AMOUNT_CENTS
    )
    created_at: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)


class InvoiceSchema(_Base):
    invoice_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    issue_date: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    due_date: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    amount_cents: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT_CENTS)
    product: Series[str] = pa.Field(isin=_values(Product))
    collection_method: Series[str] = pa.Field(isin=_values(CollectionMethod))

    @pa.dataframe_check(error="due_date must not be before issue_date")
    def due_after_issue(cls, df: pd.DataFrame) -> pd.Series:
        return df["due_date"] >= df["issue_date"]


class PaymentSchema(_Base):
    payment_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    invoice_id: Series[str] = _id_field()
    paid_at: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    amount_cents: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT_CENTS)
    method: Series[str] = pa.Field(isin=_values(PaymentMethod))


class DebitAttemptSchema(_Base):
    attempt_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    invoice_id: Series[str] = _id_field()
    attempted_at: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    amount_cents: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT_CENTS)
    result: Series[str] = pa.Field(isin=_values(DebitResult))
    reason_code: Series[str] = pa.Field(nullable=True, isin=_values(SepaReasonCode))

    @pa.dataframe_check(error="a failed or reversed debit needs a reason_code; a success has none")
    def reason_matches_result(cls, df: pd.DataFrame) -> pd.Series:
        has_reason = df["reason_code"].notna()
        return has_reason == (df["result"] != DebitResult.SUCCESS.value)


class CollectionStepSchema(_Base):
    step_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    invoice_id: Series[str] = _id_field()
    step_date: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    step: Series[str] = pa.Field(isin=_values(CollectionStep))
    cost_cents: Series[int] = pa.Field(ge=0, le=MAX_AMOUNT_CENTS)


class ArrangementSchema(_Base):
    arrangement_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    start_date: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    debt_cents: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT_CENTS)
    monthly_amount_cents: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT_CENTS)
    term_months: Series[int] = pa.Field(ge=1, le=120)
    outcome: Series[str] = pa.Field(isin=_values(ArrangementOutcome))
    # The day the outcome became known (kept: last instalment; broken: the missed one).
    end_date: Series[pd.Timestamp] = pa.Field(nullable=True, ge=EARLIEST_DATE)

    @pa.dataframe_check(
        error="a kept or broken arrangement needs an end_date on or after start_date"
    )
    def ended_has_end_date(cls, df: pd.DataFrame) -> pd.Series:
        active = df["outcome"] == ArrangementOutcome.ACTIVE.value
        ok_end = df["end_date"].notna() & (df["end_date"] >= df["start_date"])
        return active | ok_end


class IncomeReceiptSchema(_Base):
    receipt_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    received_at: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    amount_cents: Series[int] = pa.Field(gt=0, le=MAX_AMOUNT_CENTS)
    source: Series[str] = pa.Field(isin=_values(IncomeSource))


class AccountBalanceSchema(_Base):
    """Balances the customer shares through open banking (PSD2 account information).

    Negative = overdrawn. Observations are typically daily or weekly; any cadence works,
    features use what was observed in each window.
    """

    balance_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    observed_at: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    balance_cents: Series[int] = pa.Field(ge=-MAX_AMOUNT_CENTS, le=MAX_AMOUNT_CENTS)


class CustomerAttributeSchema(_Base):
    """What the customer stated, known from the day after ``effective_date`` on.

    A customer may have many rows (an application, then updates): a feature ``as_of`` a day
    uses, per column, the value of the latest row dated before it that gives one (a null
    means "not stated in this row", never "no longer true"); rows dated on or after
    ``as_of`` are not seen. Without any row the ``customers`` record's values apply, as
    before this table existed. ``application_date`` is the day the customer applied, on
    or before the row's ``effective_date`` (a row cannot know a later application).
    No column holds special-category data (GDPR art. 9): ingest refuses such columns.
    """

    attribute_id: Series[str] = _id_field(unique=True)
    customer_id: Series[str] = _id_field()
    effective_date: Series[pd.Timestamp] = pa.Field(ge=EARLIEST_DATE)
    birth_year: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1900, le=2030)
    declared_net_income_cents: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=0, le=MAX_AMOUNT_CENTS
    )
    household_type: Series[str] = pa.Field(nullable=True, isin=_values(HouseholdType))
    employment: Series[str] = pa.Field(nullable=True, isin=_values(EmploymentStatus))
    application_date: Series[pd.Timestamp] = pa.Field(nullable=True, ge=EARLIEST_DATE)

    @pa.dataframe_check(error="application_date must not be after effective_date")
    def applied_before_effective(cls, df: pd.DataFrame) -> pd.Series:
        return df["application_date"].isna() | (df["application_date"] <= df["effective_date"])

    @pa.dataframe_check(error="one row per customer and effective_date")
    def one_row_per_customer_day(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated(["customer_id", "effective_date"], keep=False)


#: Table name -> (schema, primary key column, date column used for point-in-time reads).
TABLES: Final[dict[str, tuple[type[_Base], str, str]]] = {
    "customers": (CustomerSchema, "customer_id", "created_at"),
    "invoices": (InvoiceSchema, "invoice_id", "issue_date"),
    "payments": (PaymentSchema, "payment_id", "paid_at"),
    "debit_attempts": (DebitAttemptSchema, "attempt_id", "attempted_at"),
    "collection_steps": (CollectionStepSchema, "step_id", "step_date"),
    "arrangements": (ArrangementSchema, "arrangement_id", "start_date"),
    "income_receipts": (IncomeReceiptSchema, "receipt_id", "received_at"),
    "account_balances": (AccountBalanceSchema, "balance_id", "observed_at"),
    "customer_attributes": (CustomerAttributeSchema, "attribute_id", "effective_date"),
}

#: Tables a store created before them may lack: reads find no rows there (the schema
#: grows by ``create_all``, which adds them on the next ``create_schema``).
OPTIONAL_TABLES: Final = frozenset({"customer_attributes"})

TABLE_NAMES: Final = tuple(TABLES)


def columns_of(table: str) -> list[str]:
    """The column names of ``table`` in contract order."""
    schema = TABLES[table][0]
    return list(schema.to_schema().columns)


def date_columns_of(table: str) -> list[str]:
    """The calendar-day columns of ``table``."""
    schema = TABLES[table][0].to_schema()
    return [name for name, col in schema.columns.items() if "datetime" in str(col.dtype).lower()]


#: A date as text: ISO 8601, ``YYYY-MM-DD``, optionally with a time and a UTC offset (a
#: time other than midnight UTC is then rejected as not a calendar day). Anything else
#: (``05-02-2024``, ``05/02/2024``, ``20240205``) is refused instead of guessed: pandas
#: would read ``05-02-2024`` month first, as 2 May.
ISO_DATE_PATTERN: Final = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_NS_MIN, _NS_MAX = pd.Timestamp.min, pd.Timestamp.max


def parse_date_strings(s: pd.Series) -> tuple[pd.Series, np.ndarray] | None:
    """Parse the text values of a date column strictly as ISO dates.

    Returns None when ``s`` holds no text. Otherwise ``(parsed, bad)``: each string parsed
    as :data:`ISO_DATE_PATTERN` (an offset converted to UTC, then dropped), other values
    kept as they are; ``bad`` marks the positions of strings that are not such a date (or
    fall outside 1677-2262), which become NaT. ``parsed`` is ``datetime64[ns]`` when every
    value was text or null, else ``object``.
    """
    if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
        return None  # datetimes, numbers: not text, pandera's to coerce
    vals = s.to_numpy(dtype=object)
    is_str = np.fromiter((isinstance(v, str) for v in vals), dtype=bool, count=len(vals))
    if not is_str.any():
        return None
    strs = vals[is_str]
    text = strs.astype(str)  # fixed-width unicode: vectorised checks below
    n = len(text)
    parsed = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    # The usual plain YYYY-MM-DD (a CSV has millions): checked char by char, parsed fast.
    plain = np.char.str_len(text) == 10
    if plain.any():
        ten = text if plain.all() and text.dtype == np.dtype("U10") else text[plain].astype("U10")
        chars = ten.view(np.uint32).reshape(-1, 10)
        digits = chars[:, [0, 1, 2, 3, 5, 6, 8, 9]]
        shape_ok = (
            ((digits >= ord("0")) & (digits <= ord("9"))).all(axis=1)
            & (chars[:, 4] == ord("-"))
            & (chars[:, 7] == ord("-"))
        )
        days = pd.to_datetime(
            pd.Series(strs[plain], dtype=object).where(shape_ok), format="%Y-%m-%d", errors="coerce"
        )
        parsed[plain] = _in_ns_range(days)
    if not plain.all():  # with a time and perhaps an offset, or not a date at all
        other = pd.Series(strs[~plain], dtype=object)
        shape_ok = other.str.fullmatch(ISO_DATE_PATTERN).to_numpy(dtype=bool)
        stamps = pd.to_datetime(other.where(shape_ok), format="ISO8601", utc=True, errors="coerce")
        parsed[~plain] = _in_ns_range(stamps.dt.tz_localize(None))
    ok = ~np.isnat(parsed)
    bad = np.zeros(len(vals), dtype=bool)
    bad[is_str] = ~ok
    nulls = pd.isna(vals) & ~is_str
    if (is_str | nulls).all():
        out = np.full(len(vals), np.datetime64("NaT"), dtype="datetime64[ns]")
        out[is_str] = parsed
        return pd.Series(out, index=s.index, name=s.name), bad
    mixed = vals.copy()
    mixed[is_str] = [pd.Timestamp(v) for v in parsed]
    return pd.Series(mixed, index=s.index, name=s.name, dtype=object), bad


def _in_ns_range(stamps: pd.Series) -> np.ndarray:
    """``datetime64[ns]`` values, NaT where out of its range (1677-2262), never wrapped."""
    in_range = ((stamps >= _NS_MIN) & (stamps <= _NS_MAX)).to_numpy(dtype=bool)
    return stamps.where(in_range).to_numpy(dtype="datetime64[ns]")

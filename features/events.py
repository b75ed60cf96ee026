"""Columnar, in-memory form of a batch of customers' events, ready for feature computation.

:class:`EventArrays` is what :func:`features.build.build_features` reads. It is built
either from pandas frames (training, batch scoring) or from the plain numpy columns the
event store returns for a few customers (the request path) — the same object either way,
so there is one feature definition for online and offline.

All dates become integer **days since 1970-01-01**; all money stays in integer cents
until features turn it into euros. Each event row carries ``cust``: the position of its
customer in :attr:`EventArrays.customer_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features import schemas

#: "Never happened": a day later than any real date, so ``day < as_of`` is always False.
NEVER = np.int64(10**7)

_EPOCH = np.datetime64("1970-01-01", "D")

HOUSEHOLD_CODES = {h.value: i for i, h in enumerate(schemas.HouseholdType)}
PRODUCT_CODES = {p.value: i for i, p in enumerate(schemas.Product)}
STEP_CODES = {s.value: i + 1 for i, s in enumerate(schemas.CollectionStep)}  # 0 = no step
OUTCOME_CODES = {o.value: i for i, o in enumerate(schemas.ArrangementOutcome)}
SOURCE_CODES = {s.value: i for i, s in enumerate(schemas.IncomeSource)}
RESULT_CODES = {r.value: i for i, r in enumerate(schemas.DebitResult)}
EMPLOYMENT_CODES = {e.value: i for i, e in enumerate(schemas.EmploymentStatus)}
INSUFFICIENT_FUNDS_CODES = frozenset({"AM04", "MS03"})


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def to_day(value: date | np.datetime64 | pd.Timestamp | str) -> int:
    """A calendar day as days since 1970-01-01."""
    if type(value) is date:  # the request path: plain arithmetic, no pandas (~50x faster)
        return value.toordinal() - _EPOCH_ORDINAL
    return int((np.datetime64(pd.Timestamp(value).date(), "D") - _EPOCH).astype(np.int64))


def from_day(day: int) -> date:
    """Inverse of :func:`to_day`."""
    return date.fromordinal(int(day) + _EPOCH_ORDINAL)


def month_of(days: np.ndarray | int) -> np.ndarray:
    """Months since 1970-01 of each day (days since 1970-01-01)."""
    return (_EPOCH + np.asarray(days, dtype=np.int64)).astype("datetime64[M]").astype(np.int64)


def day_of_month(days: np.ndarray | int) -> np.ndarray:
    """Day of the month (1..31) of each day (days since 1970-01-01)."""
    d = np.asarray(days, dtype=np.int64)
    if d.size > 64:
        # A batch's days span a few years: compute each distinct day of the span once and
        # look the rows up (numpy's calendar conversion costs ~50 ns a row).
        low, high = int(d.min()), int(d.max())
        if high - low < d.size:
            return _day_of_month(np.arange(low, high + 1))[d - low]
    return _day_of_month(d)


def _day_of_month(d: np.ndarray) -> np.ndarray:
    dt = _EPOCH + d
    return (dt - dt.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1


def day_in_month(months: np.ndarray | int, dom: np.ndarray | int) -> np.ndarray:
    """The day ``dom`` of each month (months since 1970-01), clipped to the month's length
    (the 31st in February is the 28th or 29th), as days since 1970-01-01."""
    m = np.asarray(months, dtype=np.int64)
    start = (m.astype("datetime64[M]").astype("datetime64[D]") - _EPOCH).astype(np.int64)
    end = ((m + 1).astype("datetime64[M]").astype("datetime64[D]") - _EPOCH).astype(np.int64)
    return start + np.minimum(np.asarray(dom, dtype=np.int64), end - start) - 1


def _days(values: Any) -> np.ndarray:
    """Dates (datetime64 of any unit, NaT allowed) -> int64 days, NaT -> NEVER."""
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.datetime64):
        arr = pd.to_datetime(pd.Series(arr)).to_numpy()
    arr = arr.astype("datetime64[D]", copy=False)
    out = arr.view(np.int64).copy()  # a day's number is its days since 1970-01-01
    out[np.isnat(arr)] = NEVER
    return out


#: The columns :meth:`EventArrays.from_columns` reads, per table: what a batch reader
#: needs to load (the offline copy skips the rest, e.g. the event ids).
COLUMNS_USED: Mapping[str, tuple[str, ...]] = {
    "customers": (
        "customer_id",
        "household_type",
        "birth_year",
        "declared_net_income_cents",
        "created_at",
    ),
    "invoices": ("customer_id", "invoice_id", "issue_date", "due_date", "amount_cents", "product"),
    "payments": ("customer_id", "invoice_id", "paid_at", "amount_cents"),
    "debit_attempts": ("customer_id", "attempted_at", "amount_cents", "result", "reason_code"),
    "collection_steps": ("customer_id", "invoice_id", "step_date", "step", "cost_cents"),
    "arrangements": (
        "customer_id",
        "start_date",
        "end_date",
        "monthly_amount_cents",
        "debt_cents",
        "outcome",
    ),
    "income_receipts": ("customer_id", "received_at", "amount_cents", "source"),
    "account_balances": ("customer_id", "observed_at", "balance_cents"),
    "customer_attributes": (
        "customer_id",
        "attribute_id",
        "effective_date",
        "birth_year",
        "declared_net_income_cents",
        "household_type",
        "employment",
        "application_date",
    ),
}


def _is_arrow(values: Any) -> bool:
    """A pyarrow array (the offline batch path) rather than numpy (the request path)."""
    return type(values).__module__.startswith("pyarrow")


def _lookup(values: Any, keys: Any, codes: np.ndarray | None = None) -> np.ndarray:
    """Position of each value in ``keys`` (or ``codes[position]``), -1 where absent.

    The batch path: Arrow strings are looked up in one vectorised hash join, without a
    Python object per value; numpy input goes through a dict, as :func:`_codes` does.
    ``keys`` are unique (ids, enum values).
    """
    import pyarrow as pa

    if not _is_arrow(values) and not _is_arrow(keys):
        index = {k: i for i, k in enumerate(keys)}
        arr = np.asarray(values, dtype=object)
        pos = np.fromiter((index.get(v, -1) for v in arr), dtype=np.int64, count=arr.size)
    else:
        value_set = keys if _is_arrow(keys) else pa.array(list(keys), pa.string())
        if not _is_arrow(values):
            values = pa.array(values, pa.string())
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if len(chunks) > 1 and not any(pa.types.is_dictionary(c.type) for c in chunks):
            # index_in hashes the value set on every call: one call for all the chunks
            # (an invoice set of 310,000 ids costs 56 ms to hash).
            chunks = [pa.chunked_array(chunks).combine_chunks()]
        parts = [np.zeros(0, dtype=np.int64)]
        for chunk in chunks:
            if pa.types.is_dictionary(chunk.type):
                # Look up each distinct value once, then spread by the indices.
                found = _arrow_index_in(chunk.dictionary, value_set)
                if not found.size:
                    parts.append(np.full(len(chunk), -1, dtype=np.int64))
                elif chunk.indices.null_count:
                    null = chunk.indices.is_null().to_numpy(zero_copy_only=False)
                    at = chunk.indices.fill_null(0).to_numpy(zero_copy_only=False)
                    parts.append(np.where(null, -1, found[at]))
                else:
                    parts.append(found[chunk.indices.to_numpy(zero_copy_only=False)])
            else:
                parts.append(_arrow_index_in(chunk, value_set))
        pos = np.concatenate(parts)
    if codes is None:
        return pos
    return np.append(codes, -1)[pos]


def _arrow_index_in(values: Any, value_set: Any) -> np.ndarray:
    import pyarrow.compute as pc

    found = pc.index_in(values, value_set=value_set).fill_null(-1)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)


def _codes(values: Any, mapping: Mapping[str, int]) -> np.ndarray:
    if _is_arrow(values):
        return _lookup(values, list(mapping), np.fromiter(mapping.values(), dtype=np.int64))
    arr = np.asarray(values, dtype=object)
    return np.fromiter((mapping.get(v, -1) for v in arr), dtype=np.int64, count=arr.size)


def _take(values: Any, keep: np.ndarray) -> Any:
    """``values[keep]`` for numpy or Arrow columns (Arrow stays Arrow)."""
    if _is_arrow(values):
        import pyarrow as pa

        return values if bool(keep.all()) else values.filter(pa.array(keep))
    return np.asarray(values)[keep]


def _floats(values: Any) -> np.ndarray:
    """Nullable numbers (pandas ``Int64``, object with None, or float) -> float64 with NaN."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiu":
        return arr.astype(np.float64)
    return np.fromiter(
        (np.nan if v is None or v is pd.NA or v != v else float(v) for v in arr),
        dtype=np.float64,
        count=arr.size,
    )


@dataclass(frozen=True)
class Table:
    """One event table as aligned numpy columns (all the same length)."""

    cols: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __len__(self) -> int:
        return len(self.cols["cust"])


@dataclass(frozen=True)
class EventArrays:
    """The events of a batch of customers, as integer-day numpy columns.

    Build with :meth:`from_columns` (store fast path) or :meth:`from_frames` (pandas).
    """

    customer_ids: np.ndarray  # object array of ids, the batch order
    customers: Table
    invoices: Table
    payments: Table
    debits: Table
    steps: Table
    arrangements: Table
    income: Table
    balances: Table
    #: ``customer_attributes`` rows, sorted by customer, effective day and id (so a later
    #: position is a later statement); codes -1 and NaN where a row leaves a column out.
    attributes: Table

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_frames(
        cls, frames: Mapping[str, pd.DataFrame], customer_ids: Sequence[str] | None = None
    ) -> EventArrays:
        """Build from event-table frames (columns as in :mod:`features.schemas`)."""
        columns: dict[str, dict[str, np.ndarray]] = {}
        for table in schemas.TABLE_NAMES:
            frame = frames.get(table)
            names = schemas.columns_of(table)
            if frame is None:
                frame = pd.DataFrame({c: [] for c in names})
            columns[table] = {c: frame[c].to_numpy() for c in names if c in frame.columns}
        return cls.from_columns(columns, customer_ids)

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Mapping[str, np.ndarray]],
        customer_ids: Sequence[str] | None = None,
    ) -> EventArrays:
        """Build from per-table column arrays (the event store's ``read_columns`` format).

        ``customer_ids`` fixes the batch order; by default it is the order of the
        ``customers`` table. Events of customers outside the batch are dropped.
        """
        cust_table = columns.get("customers", {})
        ids = (
            np.asarray(list(customer_ids), dtype=object)
            if customer_ids is not None
            else np.asarray(cust_table.get("customer_id", []), dtype=object)
        )
        position: dict[Any, int] = {}
        id_set: Any = None

        def table(name: str) -> tuple[dict[str, Any], np.ndarray]:
            nonlocal id_set
            cols = columns.get(name, {})
            raw: Any = cols.get("customer_id", [])
            if _is_arrow(raw):
                if id_set is None:  # the batch's ids as Arrow once, not once per table
                    import pyarrow as pa

                    id_set = pa.array(ids.tolist(), pa.string())
                cust = _lookup(raw, id_set)
            else:
                if not position and len(ids):
                    position.update((cid, i) for i, cid in enumerate(ids.tolist()))
                cid = np.asarray(raw, dtype=object)
                cust = np.fromiter(
                    (position.get(c, -1) for c in cid), dtype=np.int64, count=cid.size
                )
            keep = cust >= 0
            return {k: _take(v, keep) for k, v in cols.items()}, cust[keep]

        c, c_cust = table("customers")
        n = len(ids)
        household = np.full(n, -1, dtype=np.int64)
        birth_year = np.full(n, np.nan)
        declared = np.full(n, np.nan)
        created = np.full(n, NEVER, dtype=np.int64)
        if len(c_cust):
            household[c_cust] = _codes(c["household_type"], HOUSEHOLD_CODES)
            birth_year[c_cust] = _floats(c["birth_year"])
            declared[c_cust] = _floats(c["declared_net_income_cents"])
            created[c_cust] = _days(c["created_at"])
        customers = Table(
            {
                "cust": np.arange(n, dtype=np.int64),
                "household": household,
                "birth_year": birth_year,
                "declared_income_cents": declared,
                "created_day": created,
            }
        )

        inv, inv_cust = table("invoices")
        inv_ids = inv.get("invoice_id", [])
        inv_pos = {} if _is_arrow(inv_ids) else {iid: i for i, iid in enumerate(inv_ids)}
        inv_amount = np.asarray(inv.get("amount_cents", []), dtype=np.int64)

        def invoice_of(*columns: Any) -> list[np.ndarray]:
            if any(_is_arrow(v) for v in (inv_ids, *columns)):
                # One hash table of the invoice ids for all the columns (the batch path).
                import pyarrow as pa

                chunks = [
                    c
                    for v in columns
                    for c in (
                        v.chunks
                        if isinstance(v, pa.ChunkedArray)
                        else [v if _is_arrow(v) else pa.array(v, pa.string())]
                    )
                ]
                both = _lookup(pa.chunked_array(chunks, pa.string()), inv_ids)
                return np.split(both, np.cumsum([len(v) for v in columns])[:-1].tolist())
            return [
                np.fromiter(
                    (inv_pos.get(i, -1) for i in np.asarray(v, dtype=object)),
                    dtype=np.int64,
                    count=len(v),
                )
                for v in columns
            ]

        pay, pay_cust = table("payments")
        st, st_cust = table("collection_steps")
        pay_inv, st_inv = invoice_of(pay.get("invoice_id", []), st.get("invoice_id", []))
        pay_day = _days(pay.get("paid_at", []))
        pay_amount = np.asarray(pay.get("amount_cents", []), dtype=np.int64)

        invoices = Table(
            {
                "cust": inv_cust,
                "issue_day": _days(inv.get("issue_date", [])),
                "due_day": _days(inv.get("due_date", [])),
                "amount_cents": inv_amount,
                "product": _codes(inv.get("product", []), PRODUCT_CODES),
                "settled_day": _settled_days(
                    len(inv_cust), inv_amount, pay_inv, pay_day, pay_amount
                ),
            }
        )
        payments = Table(
            {"cust": pay_cust, "invoice": pay_inv, "day": pay_day, "amount_cents": pay_amount}
        )

        deb, deb_cust = table("debit_attempts")
        reason = deb.get("reason_code", [])
        debits = Table(
            {
                "cust": deb_cust,
                "day": _days(deb.get("attempted_at", [])),
                "amount_cents": np.asarray(deb.get("amount_cents", []), dtype=np.int64),
                "result": _codes(deb.get("result", []), RESULT_CODES),
                "insufficient_funds": _insufficient_funds(reason),
            }
        )

        steps = Table(
            {
                "cust": st_cust,
                "invoice": st_inv,
                "day": _days(st.get("step_date", [])),
                "step": _codes(st.get("step", []), STEP_CODES),
                "cost_cents": np.asarray(st.get("cost_cents", []), dtype=np.int64),
            }
        )

        arr, arr_cust = table("arrangements")
        arrangements = Table(
            {
                "cust": arr_cust,
                "start_day": _days(arr.get("start_date", [])),
                "end_day": _days(arr.get("end_date", [])),
                "monthly_cents": np.asarray(arr.get("monthly_amount_cents", []), dtype=np.int64),
                "debt_cents": np.asarray(arr.get("debt_cents", []), dtype=np.int64),
                "outcome": _codes(arr.get("outcome", []), OUTCOME_CODES),
            }
        )

        inc, inc_cust = table("income_receipts")
        income = Table(
            {
                "cust": inc_cust,
                "day": _days(inc.get("received_at", [])),
                "amount_cents": np.asarray(inc.get("amount_cents", []), dtype=np.int64),
                "source": _codes(inc.get("source", []), SOURCE_CODES),
            }
        )
        bal, bal_cust = table("account_balances")
        balances = Table(
            {
                "cust": bal_cust,
                "day": _days(bal.get("observed_at", [])),
                "balance_cents": np.asarray(bal.get("balance_cents", []), dtype=np.int64),
            }
        )
        att, att_cust = table("customer_attributes")
        attributes = _attribute_table(att, att_cust)
        return cls(
            ids,
            customers,
            invoices,
            payments,
            debits,
            steps,
            arrangements,
            income,
            balances,
            attributes,
        )


def _insufficient_funds(reason: Any) -> np.ndarray:
    """True where a debit's reason code says insufficient funds (null: False)."""
    if _is_arrow(reason):
        return _lookup(reason, sorted(INSUFFICIENT_FUNDS_CODES)) >= 0
    arr = np.asarray(reason, dtype=object)
    return np.fromiter((r in INSUFFICIENT_FUNDS_CODES for r in arr), dtype=bool, count=arr.size)


def _attribute_table(cols: Mapping[str, np.ndarray], cust: np.ndarray) -> Table:
    """The attribute rows in statement order: customer, effective day, id."""
    day = _days(cols.get("effective_date", []))
    ids = np.asarray(cols.get("attribute_id", []), dtype=object)
    order = np.argsort(ids, kind="stable") if ids.size else np.zeros(0, dtype=np.int64)
    order = order[np.argsort(day[order], kind="stable")]
    order = order[np.argsort(cust[order], kind="stable")]
    n = cust.size

    def column(name: str) -> np.ndarray:
        return np.asarray(cols[name])[order] if name in cols else np.full(n, None, dtype=object)

    return Table(
        {
            "cust": cust[order],
            "day": day[order],
            "birth_year": _floats(column("birth_year")),
            "declared_income_cents": _floats(column("declared_net_income_cents")),
            "household": _codes(column("household_type"), HOUSEHOLD_CODES),
            "employment": _codes(column("employment"), EMPLOYMENT_CODES),
            "application_day": _days(column("application_date")),
        }
    )


def _settled_days(
    n_invoices: int,
    amount: np.ndarray,
    pay_invoice: np.ndarray,
    pay_day: np.ndarray,
    pay_amount: np.ndarray,
) -> np.ndarray:
    """The day each invoice's payments first add up to its amount (``NEVER`` if not yet).

    A fact about the past: an invoice counts as paid ``as_of`` a day only when this day
    is before it, so using it is free of leakage.
    """
    settled = np.full(n_invoices, NEVER, dtype=np.int64)
    ok = pay_invoice >= 0
    if n_invoices == 0 or not ok.any():
        return settled
    inv, day, amt = pay_invoice[ok], pay_day[ok], pay_amount[ok]
    # By invoice, then day, ties in input order (lexsort's permutation exactly). Payments
    # come sorted by customer and day, so a stable sort by invoice alone is usually that
    # permutation already, at a fraction of lexsort's cost; where it is not, lexsort.
    order = np.argsort(inv, kind="stable")
    inv, day, amt = inv[order], day[order], amt[order]
    if bool(np.any((inv[1:] == inv[:-1]) & (day[1:] < day[:-1]))):
        order = np.lexsort((day, inv))
        inv, day, amt = pay_invoice[ok][order], pay_day[ok][order], pay_amount[ok][order]
    cum = np.cumsum(amt)
    # subtract the running total before each invoice's first payment
    first = np.r_[True, inv[1:] != inv[:-1]]
    starts = np.flatnonzero(first)
    offsets = np.repeat(cum[starts] - amt[starts], np.diff(np.r_[starts, len(inv)]))
    within = cum - offsets
    reached = within >= amount[inv]
    np.minimum.at(settled, inv[reached], day[reached])
    return settled

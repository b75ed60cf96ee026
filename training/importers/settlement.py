"""Monthly statement histories → invoices and payments: the one settlement rule that both
monthly importers share (wide tables, :mod:`training.importers.monthly_statements`; month-by-
month records, :mod:`training.importers.monthly_records`).

The input is a grid of accounts × consecutive months (``0..T-1``): per cell the months the
account is behind at the end of that month, whether it was paid in full, the statement
amount (0 = no statement) and the amount paid. Each account starts at its own month
``start[i]``: before it the account did not exist. Cells where nothing is known (before
the start, after the last record) hold :data:`UNKNOWN_BEHIND`, which keeps every open
statement open. The rules are those of ``training/importers/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schemas import MAX_AMOUNT_CENTS, columns_of

DAYS_PER_MONTH_LATE = 30
#: "months behind" of a month without a record: larger than any statement's age, so a
#: statement open before it stays open (nothing is known to have been paid).
UNKNOWN_BEHIND = 1_000_000


@dataclass(frozen=True)
class StatementRules:
    """How statements become invoices: due day, early settlement, currency, attributes."""

    due_days: int = 20
    paid_early_days: int = 5
    cents_per_unit: float = 100.0
    product: str = "other"
    collection_method: str = "transfer"


@dataclass
class MonthGrid:
    """Accounts × months, as :func:`statement_events` reads them."""

    ids: np.ndarray  # customer ids (object)
    first_period: pd.Period  # month 0
    behind: np.ndarray  # (n, T) int64 months behind at month end (UNKNOWN_BEHIND: no record)
    paid_full: np.ndarray  # (n, T) bool: paid in full (previous statement settled early)
    bill: np.ndarray  # (n, T) float64 statement amount, 0 = no statement
    paid: np.ndarray  # (n, T) float64 amount paid in the month
    start: np.ndarray  # (n,) int64 the account's first month

    @property
    def shape(self) -> tuple[int, int]:
        n, months = self.behind.shape
        return n, months


def cents(values: np.ndarray, per_unit: float) -> np.ndarray:
    """Source amounts → whole cents, at least 1 and at most the contract's maximum."""
    out = np.rint(np.asarray(values, dtype=np.float64) * per_unit).astype(np.int64)
    return np.clip(out, 1, MAX_AMOUNT_CENTS)


def statement_events(
    grid: MonthGrid, rules: StatementRules
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int], pd.Timestamp]:
    """Invoices and payments of ``grid`` (contract columns), a report of counts, and the
    issue day of the earliest statement (carry-overs included)."""
    n, T = grid.shape
    rows = np.arange(n)
    behind, bill = grid.behind, grid.bill
    start = grid.start
    first_status = behind[rows, start] if n else np.zeros(0, dtype=np.int64)
    # statement k (k < start: a carry-over the first status points back to)
    K = int(max(0, (first_status - start).max())) if n else 0
    ks = list(range(-K, T))
    issue = {k: (grid.first_period + k).to_timestamp(how="end").normalize() for k in ks}
    due = {k: issue[k] + pd.Timedelta(days=rules.due_days) for k in ks}

    first_positive = np.where(bill > 0, bill, np.nan)
    carry_amount = pd.DataFrame(first_positive).bfill(axis=1).iloc[:, 0].to_numpy()

    never = np.datetime64("NaT", "ns")
    settle_of: dict[int, np.ndarray] = {}
    exists_of: dict[int, np.ndarray] = {}
    amount_of: dict[int, np.ndarray] = {}
    inv_rows: list[pd.DataFrame] = []
    for k in ks:
        own = (k >= start) & (bill[:, max(k, 0)] > 0) if k >= 0 else np.zeros(n, dtype=bool)
        carry = (k < start) & (first_status >= start - k) & np.isfinite(carry_amount)
        exists = own | carry
        amount = np.where(own, bill[:, max(k, 0)], np.where(carry, np.nan_to_num(carry_amount), 0))
        settle = np.full(n, never, dtype="datetime64[ns]")
        undecided = exists.copy()
        for t in range(max(k + 1, 0), T):
            j = t - k
            still = behind[:, t] >= j
            stop = undecided & ~still
            if j == 1:
                early = stop & grid.paid_full[:, t]
                settle[early] = np.datetime64(
                    due[k] - pd.Timedelta(days=rules.paid_early_days), "ns"
                )
                settle[stop & ~grid.paid_full[:, t]] = np.datetime64(due[k], "ns")
            else:
                settle[stop] = np.datetime64(
                    due[k] + pd.Timedelta(days=DAYS_PER_MONTH_LATE * (j - 1)), "ns"
                )
            undecided &= still
        settle_of[k], exists_of[k] = settle, exists
        amount_of[k] = cents(amount, rules.cents_per_unit)
        idx = np.flatnonzero(exists)
        inv_rows.append(
            pd.DataFrame(
                {
                    "invoice_id": [f"{cid}-{k + K:02d}" for cid in grid.ids[idx]],
                    "customer_id": grid.ids[idx],
                    "issue_date": np.full(idx.size, np.datetime64(issue[k], "ns")),
                    "due_date": np.full(idx.size, np.datetime64(due[k], "ns")),
                    "amount_cents": amount_of[k][idx],
                    "product": rules.product,
                    "collection_method": rules.collection_method,
                }
            )
        )
    invoices = pd.concat(inv_rows, ignore_index=True)[columns_of("invoices")]
    payments, report = _payments(grid, ks, K, issue, exists_of, amount_of, settle_of, rules)
    report.update(
        invoices=len(invoices),
        carry_over_invoices=int(sum((exists_of[k] & (k < start)).sum() for k in ks)),
        open_invoices=int(sum((exists_of[k] & np.isnat(settle_of[k])).sum() for k in ks)),
    )
    return invoices, payments, report, issue[ks[0]]


def _payments(
    grid: MonthGrid,
    ks: list[int],
    K: int,
    issue: dict[int, pd.Timestamp],
    exists_of: dict[int, np.ndarray],
    amount_of: dict[int, np.ndarray],
    settle_of: dict[int, np.ndarray],
    rules: StatementRules,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Real payments (allocated oldest open first) and settlement remainders, per customer.

    The amount paid in month ``t`` is dated on the due day of statement ``t-1`` (its
    settlement day when that was earlier). It never settles an invoice before the
    status-derived day; what cannot go to an open invoice goes to the latest statement
    already settled by then (so it changes no settlement day), else it is dropped. Each settled invoice gets a remainder payment on its settlement day.
    """
    ids, paid = grid.ids, grid.paid
    n, T = paid.shape
    pay_cents = np.where(paid > 0, cents(paid, rules.cents_per_unit), 0)
    day0 = np.datetime64("1970-01-01", "D")

    def day(ts: pd.Timestamp) -> int:
        return int((np.datetime64(ts.date(), "D") - day0).astype(np.int64))

    issue_day = {k: day(issue[k]) for k in ks}
    first = grid.first_period
    prev_due_day = [
        day((first + t - 1).to_timestamp(how="end").normalize() + pd.Timedelta(days=rules.due_days))
        for t in range(T)
    ]
    settle_day = {
        k: np.where(np.isnat(s), -1, (s.astype("datetime64[D]") - day0).astype(np.int64))
        for k, s in settle_of.items()
    }
    out_id: list[str] = []
    out_cust: list[str] = []
    out_inv: list[str] = []
    out_day: list[int] = []
    out_amt: list[int] = []
    dropped = 0
    for i in range(n):
        cid = ids[i]
        inv = [k for k in ks if exists_of[k][i]]
        if not inv:
            dropped += int((pay_cents[i] > 0).sum())
            continue
        amount = {k: int(amount_of[k][i]) for k in inv}
        settle = {k: int(settle_day[k][i]) for k in inv}  # -1 = open
        got = dict.fromkeys(inv, 0)
        seq = 0
        for t in range(T):
            left = int(pay_cents[i, t])
            if left <= 0:
                continue
            prev = t - 1
            x = prev_due_day[t]
            if prev in settle and 0 <= settle[prev] < x:
                x = settle[prev]
            for k in inv:  # oldest first
                if left == 0:
                    break
                if issue_day[k] >= x or (0 <= settle[k] < x):
                    continue
                room = amount[k] - got[k] - (0 if settle[k] == x else 1)
                take = min(left, max(room, 0))
                if take > 0:
                    got[k] += take
                    left -= take
                    out_id.append(f"{cid}-p{t:02d}{seq}")
                    out_cust.append(cid)
                    out_inv.append(f"{cid}-{k + K:02d}")
                    out_day.append(x)
                    out_amt.append(take)
                    seq += 1
            if left > 0:  # overpayment: to the latest statement already settled by then
                latest = [k for k in inv if issue_day[k] < x and 0 <= settle[k] <= x]
                if not latest:
                    dropped += 1
                    continue
                k = latest[-1]
                got[k] += left
                out_id.append(f"{cid}-p{t:02d}{seq}")
                out_cust.append(cid)
                out_inv.append(f"{cid}-{k + K:02d}")
                out_day.append(x)
                out_amt.append(min(left, MAX_AMOUNT_CENTS))
                seq += 1
        for k in inv:
            if settle[k] >= 0 and got[k] < amount[k]:
                out_id.append(f"{cid}-{k + K:02d}-s")
                out_cust.append(cid)
                out_inv.append(f"{cid}-{k + K:02d}")
                out_day.append(settle[k])
                out_amt.append(amount[k] - got[k])
    payments = pd.DataFrame(
        {
            "payment_id": out_id,
            "customer_id": out_cust,
            "invoice_id": out_inv,
            "paid_at": (day0 + np.asarray(out_day, dtype="timedelta64[D]")).astype(
                "datetime64[ns]"
            ),
            "amount_cents": np.asarray(out_amt, dtype=np.int64),
            "method": "transfer",
        }
    )
    return payments[columns_of("payments")], {"payments_dropped": dropped}

"""Hand-made, valid event rows for the API tests (JSON-ready: ISO dates, integer cents).

``customer_events("C1", risky=True)`` gives one customer's rows for all seven tables —
the body of ``POST /v1/events`` — and :func:`frames` turns them into the DataFrames
``EventStore.ingest`` takes. Ids derive from the customer id, so re-sending is idempotent.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from features.schemas import TABLE_NAMES, columns_of

Rows = dict[str, list[dict[str, Any]]]


def _d(day: date) -> str:
    return day.isoformat()


def customer_events(
    customer_id: str, *, risky: bool = False, start: date = date(2025, 1, 1)
) -> Rows:
    """Twelve monthly invoices; a risky customer pays late, misses debits and gets reminders."""
    c = customer_id
    rows: Rows = {t: [] for t in TABLE_NAMES}
    rows["customers"].append(
        {
            "customer_id": c,
            "household_type": "single_parent" if risky else "couple",
            "birth_year": 1985,
            "declared_net_income_cents": 150_000 if risky else 320_000,
            "created_at": _d(start - timedelta(days=400)),
        }
    )
    for m in range(12):
        issue = start + timedelta(days=30 * m)
        due = issue + timedelta(days=14)
        inv = f"{c}-inv-{m}"
        amount = 9_500 + 100 * m
        rows["invoices"].append(
            {
                "invoice_id": inv,
                "customer_id": c,
                "issue_date": _d(issue),
                "due_date": _d(due),
                "amount_cents": amount,
                "product": "energy",
                "collection_method": "direct_debit",
            }
        )
        failed = risky and m % 2 == 0
        rows["debit_attempts"].append(
            {
                "attempt_id": f"{c}-att-{m}",
                "customer_id": c,
                "invoice_id": inv,
                "attempted_at": _d(due),
                "amount_cents": amount,
                "result": "failed" if failed else "success",
                "reason_code": "AM04" if failed else None,
            }
        )
        if risky and m >= 10:
            continue  # the last two invoices stay unpaid
        paid = due + timedelta(days=25 if failed else 0)
        rows["payments"].append(
            {
                "payment_id": f"{c}-pay-{m}",
                "customer_id": c,
                "invoice_id": inv,
                "paid_at": _d(paid),
                "amount_cents": amount,
                "method": "transfer" if failed else "direct_debit",
            }
        )
        if failed:
            rows["collection_steps"].append(
                {
                    "step_id": f"{c}-step-{m}",
                    "customer_id": c,
                    "invoice_id": inv,
                    "step_date": _d(due + timedelta(days=10)),
                    "step": "reminder",
                    "cost_cents": 0,
                }
            )
    for m in range(12):
        rows["income_receipts"].append(
            {
                "receipt_id": f"{c}-inc-{m}",
                "customer_id": c,
                "received_at": _d(start + timedelta(days=30 * m + 24)),
                "amount_cents": (140_000 if m < 8 else 90_000) if risky else 320_000,
                "source": "benefit" if risky else "salary",
            }
        )
    for w in range(26):
        rows["account_balances"].append(
            {
                "balance_id": f"{c}-bal-{w}",
                "customer_id": c,
                "observed_at": _d(start + timedelta(days=7 * w + 6)),
                "balance_cents": (-20_000 + 500 * w) if risky else 150_000 + 1000 * w,
            }
        )
    if risky:
        rows["arrangements"].append(
            {
                "arrangement_id": f"{c}-arr-0",
                "customer_id": c,
                "start_date": _d(start + timedelta(days=100)),
                "debt_cents": 30_000,
                "monthly_amount_cents": 5_000,
                "term_months": 6,
                "outcome": "broken",
                "end_date": _d(start + timedelta(days=160)),
            }
        )
    return rows


def batch(customers: dict[str, bool]) -> Rows:
    """Rows of several customers: ``{customer_id: risky}``."""
    out: Rows = {t: [] for t in TABLE_NAMES}
    for cid, risky in customers.items():
        for table, rows in customer_events(cid, risky=risky).items():
            out[table].extend(rows)
    return out


def frames(rows: Rows) -> dict[str, pd.DataFrame]:
    """Rows -> one DataFrame per non-empty table, contract column order."""
    return {t: pd.DataFrame(r, columns=columns_of(t)) for t, r in rows.items() if r}

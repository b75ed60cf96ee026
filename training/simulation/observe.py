"""What a creditor could observe mid-simulation: the events so far, as :class:`EventArrays`.

A policy that must not peek at the hidden truth (e.g. tijdig's plan policy in
``training/studies/plan_eval.py``) calls ``request.observed()`` for the raw events logged so far
and turns the rows of the requested customers into the same columnar form the service
builds from the event store, so the same ``build_features`` applies.
"""

from __future__ import annotations

import numpy as np

from features.events import EventArrays
from training.simulation.engine import RawEvents
from training.simulation.population import HOUSEHOLDS, PopulationState

_PAY_METHODS = np.array(["direct_debit", "transfer", "arrangement", "agency"], dtype=object)
_RESULTS = np.array(["success", "failed", "reversed"], dtype=object)
_REASONS = np.array(["AM04", "MS03", "MD06"], dtype=object)
_STEPS = np.array(["reminder", "fourteen_day_letter", "agency", "bailiff"], dtype=object)
_OUTCOMES = np.array(["active", "kept", "broken"], dtype=object)
_SOURCES = np.array(["salary", "benefit", "pension", "allowance"], dtype=object)


def observed_event_arrays(
    pop: PopulationState, raw: RawEvents, customers: np.ndarray
) -> EventArrays:
    """The events of ``customers`` (population indices) in ``raw``, in that batch order."""
    cal = pop.calendar
    dt = cal.to_datetime64
    customers = np.asarray(customers, dtype=np.int64)
    ids = pop.customer_ids[customers]
    wanted = np.zeros(pop.n, bool)
    wanted[customers] = True
    cid = pop.customer_ids

    inv_keep = np.flatnonzero(wanted[raw.inv_cust])
    inv_id = np.arange(len(raw.inv_cust)).astype(object)  # invoice position as its id

    def by_invoice(log: dict[str, np.ndarray]) -> np.ndarray:
        return (
            np.flatnonzero(wanted[raw.inv_cust[log["inv"]]])
            if len(log["inv"])
            else np.zeros(0, np.int64)
        )

    p, d, s = raw.payments, raw.debits, raw.steps
    pk, dk, sk = by_invoice(p), by_invoice(d), by_invoice(s)
    a = raw.arrangements
    ak = np.flatnonzero(wanted[a["cust"]]) if len(a["cust"]) else np.zeros(0, np.int64)
    r, b = raw.receipts, raw.balances
    rk = np.flatnonzero(wanted[r["cust"]]) if len(r["cust"]) else np.zeros(0, np.int64)
    bk = np.flatnonzero(wanted[b["cust"]]) if len(b["cust"]) else np.zeros(0, np.int64)
    end = a["end"][ak]
    end_dt = dt(np.maximum(end, 0)).copy()
    end_dt[end < 0] = np.datetime64("NaT")
    declared = pop.declared_income[customers].astype(float)
    columns = {
        "customers": {
            "customer_id": ids,
            "household_type": np.array(HOUSEHOLDS, dtype=object)[pop.household[customers]],
            "birth_year": pop.birth_year[customers].astype(float),
            "declared_net_income_cents": np.where(declared >= 0, declared, np.nan),
            "created_at": dt(pop.created_day[customers]),
        },
        "invoices": {
            "invoice_id": inv_id[inv_keep],
            "customer_id": cid[raw.inv_cust[inv_keep]],
            "issue_date": dt(raw.inv_issue[inv_keep]),
            "due_date": dt(raw.inv_due[inv_keep]),
            "amount_cents": raw.inv_amount[inv_keep],
            "product": np.where(raw.inv_product[inv_keep] == 3, "bnpl", "other").astype(object),
        },
        "payments": {
            "customer_id": cid[raw.inv_cust[p["inv"][pk]]],
            "invoice_id": inv_id[p["inv"][pk]],
            "paid_at": dt(p["day"][pk]),
            "amount_cents": p["amount"][pk],
            "method": _PAY_METHODS[p["method"][pk]],
        },
        "debit_attempts": {
            "customer_id": cid[raw.inv_cust[d["inv"][dk]]],
            "attempted_at": dt(d["day"][dk]),
            "amount_cents": d["amount"][dk],
            "result": _RESULTS[d["result"][dk]],
            "reason_code": np.where(
                d["reason"][dk] >= 0, _REASONS[np.maximum(d["reason"][dk], 0)], None
            ),
        },
        "collection_steps": {
            "customer_id": cid[raw.inv_cust[s["inv"][sk]]],
            "invoice_id": inv_id[s["inv"][sk]],
            "step_date": dt(s["day"][sk]),
            "step": _STEPS[s["step"][sk]],
            "cost_cents": s["cost"][sk],
        },
        "arrangements": {
            "customer_id": cid[a["cust"][ak]],
            "start_date": dt(a["start"][ak]),
            "end_date": end_dt,
            "monthly_amount_cents": a["monthly"][ak],
            "debt_cents": a["debt"][ak],
            "outcome": _OUTCOMES[a["outcome"][ak]],
        },
        "income_receipts": {
            "customer_id": cid[r["cust"][rk]],
            "received_at": dt(r["day"][rk]),
            "amount_cents": r["amount"][rk],
            "source": _SOURCES[r["source"][rk]],
        },
        "account_balances": {
            "customer_id": cid[b["cust"][bk]],
            "observed_at": dt(b["day"][bk]),
            "balance_cents": b["balance"][bk],
        },
    }
    return EventArrays.from_columns(columns, ids)

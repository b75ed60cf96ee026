"""Headline rates of a simulation (to check realism; not the product's label code)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.simulation.result import SimulationResult

NEVER = 1 << 40


def settled_days(result: SimulationResult) -> pd.Series:
    """Per invoice id: the day (Timestamp) its payments first add up to its amount, NaT if never."""
    inv = result.tables["invoices"][["invoice_id", "amount_cents"]]
    pay = result.tables["payments"].sort_values(["invoice_id", "paid_at"], kind="stable")
    pay = pay.assign(cum=pay.groupby("invoice_id")["amount_cents"].cumsum())
    pay = pay.merge(inv, on="invoice_id")
    first = pay[pay["cum"] >= pay["amount_cents_y"]].groupby("invoice_id")["paid_at"].min()
    return first.reindex(inv["invoice_id"]).rename("settled_at")


def label_rates(
    result: SimulationResult, *, dpd: int = 30, horizon: int = 90, min_tenure: int = 90
) -> pd.Series:
    """Per month start: share of eligible customers with an invoice reaching ``dpd`` days
    past due unpaid within ``horizon`` days (same rule as ``features.labels``)."""
    t = result.tables
    start, end = result.config.period()
    origin = pd.Timestamp(start)
    inv = t["invoices"]
    cust_index = pd.Index(t["customers"]["customer_id"])
    c = cust_index.get_indexer(inv["customer_id"])
    due = (inv["due_date"] - origin).dt.days.to_numpy()
    settled = settled_days(result)
    s = ((settled - origin).dt.days).fillna(NEVER).to_numpy(dtype=np.int64)
    crossing = due + dpd
    crossing = np.where(s > crossing, crossing, NEVER)
    created = (t["customers"]["created_at"] - origin).dt.days.to_numpy()
    n = len(cust_index)
    out = {}
    for month_start in pd.date_range(start, end, freq="MS", inclusive="left"):
        a = (month_start - origin).days
        if a + horizon > (pd.Timestamp(end) - origin).days:
            break
        y = np.bincount(c[(crossing >= a) & (crossing < a + horizon)], minlength=n) > 0
        already = np.bincount(c[(crossing < a) & (s >= a)], minlength=n) > 0
        eligible = (a - created >= min_tenure) & ~already
        if eligible.sum():
            out[month_start] = float(y[eligible].mean())
    return pd.Series(out, name="label_rate", dtype=float)


def summary(result: SimulationResult) -> dict[str, float]:
    t = result.tables
    end = result.config.period()[1]
    inv = t["invoices"]
    settled = settled_days(result).to_numpy()
    mature = (inv["due_date"] + pd.Timedelta(days=30) < pd.Timestamp(end)).to_numpy()
    due = inv["due_date"].to_numpy()
    late = np.isnat(settled) | (settled > due)
    dd = t["debit_attempts"]
    arr = t["arrangements"]
    ended = arr[arr["outcome"] != "active"]
    customers_with_30dpd = np.isnat(settled) | (settled > due + np.timedelta64(30, "D"))
    trouble = inv.loc[mature & customers_with_30dpd, "customer_id"].nunique() / len(t["customers"])
    rates = label_rates(result)
    return {
        "invoices": float(len(inv)),
        "share_paid_late": float(late[mature].mean()),
        "share_30dpd": float(customers_with_30dpd[mature].mean()),
        "failed_debit_rate": float((dd["result"] == "failed").mean()),
        "first_attempt_failed_rate": float(
            (dd.drop_duplicates("invoice_id")["result"] == "failed").mean()
        ),
        "reversed_debit_rate": float((dd["result"] == "reversed").mean()),
        "arrangements": float(len(arr)),
        "arrangement_keep_rate": float((ended["outcome"] == "kept").mean())
        if len(ended)
        else float("nan"),
        "label_rate_mean": float(rates.mean()),
        "label_rate_min": float(rates.min()),
        "label_rate_max": float(rates.max()),
        "customers_ever_30dpd": float(trouble),
        "bnpl_share_of_invoices": float((inv["product"] == "bnpl").mean()),
    }

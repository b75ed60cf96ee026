"""The bookkeeping of the plan evidence (:mod:`training.studies.plan_eval`): who is in the
cohort and what followed on the debt each policy answered for.

The cohort is every customer's FIRST arrangement request (a plan or a referral) that lies
at least :data:`HORIZON_MONTHS` months before the end of the data. Per request, on the
debt it covered (the customer's invoices overdue and not fully paid on the request day):
the principal repaid by any route within 12 and 24 months, the collection costs charged
on it after the request day within 24 months (WIK, bailiff: what escalation put on top of
the principal), and whether it reached a bailiff. A plan counts as kept at 24 months when
it was completed or is still on schedule then (not broken before the window's end).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.simulation.policy import ArrangementAnswer, ArrangementRequest

HORIZON_MONTHS = 24  # the objective's horizon (plan policy horizon_months)
EARLY_MONTHS = 12  # the principal repaid by then is reported too


@dataclass
class RecordedPolicy:
    """An arrangement policy that records every request and its answer (0 = referral),
    with the policy's ``last_details`` (one row per request) when it keeps them."""

    policy: Callable[[ArrangementRequest], ArrangementAnswer | np.ndarray]

    def __post_init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def __call__(self, request: ArrangementRequest) -> ArrangementAnswer | np.ndarray:
        answer = self.policy(request)
        full = ArrangementAnswer.of(answer)
        part = pd.DataFrame(
            {
                "customer_id": np.asarray(request.customer_id),
                "start_date": pd.Timestamp(request.day),
                "debt_cents": np.asarray(request.debt_cents, dtype=np.int64),
                "monthly_cents": full.monthly_cents,
                "referral": full.monthly_cents <= 0,
                "pause_max_months": full.pause_max_months,
            }
        )
        details = getattr(self.policy, "last_details", None)
        if details is not None:
            part = pd.concat([part, details.reset_index(drop=True)], axis=1)
        self._parts.append(part)
        return answer

    def requests(self) -> pd.DataFrame:
        return pd.concat(self._parts, ignore_index=True) if self._parts else pd.DataFrame()


def debt_outcomes(tables: dict[str, pd.DataFrame], starts: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``starts`` (``key``, ``customer_id``, ``start_date``, ``end_12m``,
    ``end_24m``): on the debt it covered, the principal repaid in [start, end_12m) and
    [start, end_24m) by any route, and after the start day, before end_24m, the collection
    costs charged and whether a bailiff step was taken."""
    inv = tables["invoices"][["invoice_id", "customer_id", "due_date", "amount_cents"]]
    pay = tables["payments"][["invoice_id", "paid_at", "amount_cents"]]
    steps = tables["collection_steps"][["invoice_id", "step_date", "step", "cost_cents"]]
    windows = ["key", "customer_id", "start_date", "end_12m", "end_24m"]
    pairs = starts[windows].merge(inv, on="customer_id")
    pairs = pairs[pairs["due_date"] < pairs["start_date"]]
    pp = pairs.drop(columns=["customer_id", "due_date"]).merge(
        pay, on="invoice_id", how="left", suffixes=("", "_paid")
    )
    paid, at = pp["amount_cents_paid"], pp["paid_at"]
    after = at >= pp["start_date"]
    pp["before"] = np.where(at < pp["start_date"], paid, 0)
    pp["by_12m"] = np.where(after & (at < pp["end_12m"]), paid, 0)
    pp["by_24m"] = np.where(after & (at < pp["end_24m"]), paid, 0)
    per_inv = pp.groupby(["key", "invoice_id"]).agg(
        amount=("amount_cents", "first"),
        before=("before", "sum"),
        by_12m=("by_12m", "sum"),
        by_24m=("by_24m", "sum"),
        start_date=("start_date", "first"),
        end_24m=("end_24m", "first"),
    )
    per_inv = per_inv[per_inv["before"] < per_inv["amount"]]
    owed = per_inv["amount"] - per_inv["before"]
    out = pd.DataFrame(index=pd.Index(starts["key"], name="key"))
    out["covered_cents"] = owed.groupby("key").sum()
    for window in ("12m", "24m"):
        repaid = per_inv[f"by_{window}"].clip(upper=owed)
        out[f"repaid_{window}_cents"] = repaid.groupby("key").sum()
    covered = per_inv.reset_index()[["key", "invoice_id", "start_date", "end_24m"]]
    cs = covered.merge(steps, on="invoice_id")
    # after the decision day: the step that led to the request was charged either way
    cs = cs[(cs["step_date"] > cs["start_date"]) & (cs["step_date"] < cs["end_24m"])]
    out["costs_24m_cents"] = cs.groupby("key")["cost_cents"].sum()
    out["bailiff_24m"] = cs[cs["step"] == "bailiff"].groupby("key").size()
    out = out.fillna(0).astype(np.int64)
    out["bailiff_24m"] = out["bailiff_24m"] > 0
    return out


def first_request_cohort(
    tables: dict[str, pd.DataFrame], requests: pd.DataFrame, data_end: pd.Timestamp
) -> pd.DataFrame:
    """Each customer's FIRST arrangement request with what followed on its debt (module
    doc); ``observable`` where its 24 months end by ``data_end`` (exclusive)."""
    first = (
        requests.sort_values(["customer_id", "start_date"], kind="stable")
        .groupby("customer_id", as_index=False)
        .head(1)
        .reset_index(drop=True)
    )
    first["key"] = np.arange(len(first))
    first["end_12m"] = first["start_date"] + pd.DateOffset(months=EARLY_MONTHS)
    first["end_24m"] = first["start_date"] + pd.DateOffset(months=HORIZON_MONTHS)
    first["observable"] = first["end_24m"] <= data_end
    arr = tables["arrangements"][
        ["arrangement_id", "customer_id", "start_date", "outcome", "end_date", "term_months"]
    ]
    first = first.merge(arr, on=["customer_id", "start_date"], how="left")
    plan = ~first["referral"]
    broken_in = (first["outcome"] == "broken") & (first["end_date"] < first["end_24m"])
    first["kept_24m"] = np.where(plan, ~broken_in, np.nan)
    done = debt_outcomes(tables, first)
    return first.join(done, on="key")


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole else float("nan")


def summarise_cohort(cohort: pd.DataFrame, pauses: pd.DataFrame | None = None) -> dict[str, Any]:
    """The figures of one policy on the observable cohort (euros; shares of the cohort or,
    for plans kept, of the plans). ``pauses``: the run's paused plans."""
    o = cohort[cohort["observable"]]
    plans, refs = o[~o["referral"]], o[o["referral"]]
    n = len(o)
    debt = float(o["covered_cents"].sum())
    out: dict[str, Any] = {
        "customers": n,
        "debt_eur": round(debt / 100, 2),
        "plans": len(plans),
        "referrals": len(refs),
        "referral_share": _share(len(refs), n),
        "plans_kept_24m": int(plans["kept_24m"].sum()),
        "plans_kept_share_24m": _share(float(plans["kept_24m"].sum()), len(plans)),
        "principal_repaid_12m_eur": round(float(o["repaid_12m_cents"].sum()) / 100, 2),
        "principal_repaid_24m_eur": round(float(o["repaid_24m_cents"].sum()) / 100, 2),
        "principal_repaid_share_12m": _share(float(o["repaid_12m_cents"].sum()), debt),
        "principal_repaid_share_24m": _share(float(o["repaid_24m_cents"].sum()), debt),
        "collection_costs_24m_eur": round(float(o["costs_24m_cents"].sum()) / 100, 2),
        "collection_costs_share_of_debt": _share(float(o["costs_24m_cents"].sum()), debt),
        "customers_reaching_bailiff_24m": int(o["bailiff_24m"].sum()),
        "bailiff_share_24m": _share(float(o["bailiff_24m"].sum()), n),
        "plans_mean_monthly_eur": round(float(plans["monthly_cents"].mean()) / 100, 2)
        if len(plans)
        else float("nan"),
        "plans_mean_term_months": float(plans["term_months"].mean())
        if len(plans)
        else float("nan"),
        "plans_with_pause": int((plans["pause_max_months"] > 0).sum()),
    }
    if pauses is not None:
        paused = plans["arrangement_id"].isin(pauses["arrangement_id"])
        out["plans_paused"] = int(paused.sum())
        out["plans_paused_kept_24m"] = int(plans.loc[paused, "kept_24m"].sum())
    if "referral_reason" in o:
        out["referral_reasons"] = (
            refs["referral_reason"].fillna("none").str.split(";").explode().value_counts()
        ).to_dict()
        out["referrals_without_reason"] = int(refs["referral_reason"].fillna("").eq("").sum())
    return out


def same_cohort(cohorts: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Whether every policy's observable cohort holds the same first requests: the same
    customers, on the same day, for the same debt (with per-customer random streams a
    customer's history up to the first request does not depend on the policy)."""

    def keys(frame: pd.DataFrame) -> set[tuple[str, pd.Timestamp, int]]:
        o = frame[frame["observable"]]
        return set(zip(o["customer_id"], o["start_date"], o["debt_cents"], strict=True))

    names = list(cohorts)
    reference = keys(cohorts[names[0]])
    differ = {name: len(keys(cohorts[name]) ^ reference) for name in names[1:]}
    return {
        "identical": not any(differ.values()),
        "customers": len(reference),
        "compared_with": names[0],
        "requests_differing": differ,
    }

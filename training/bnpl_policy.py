"""The bundle's pay-later policy, chosen at training from the store's own orders.

The policy file (``models/config/bnpl_policy.json``) states a rule (``operating_point``),
not a cut-off to trust: training replays the pay-later orders of the out-of-time
validation period with the candidate model and lets the rule pick the cut-off and the
variant (arrears as a hard rule or a model input; sticky declines or none) from the
trade-off curve (:func:`training.bnpl_replay.choose_policy`, the code bnpl-eval runs).
The chosen policy goes into the bundle; the curve, the chosen point and the rules-only
point into its metadata, the training report and MLflow.

The orders: every pay-later invoice the store holds (the orders its creditor lent)
issued on or after the first validation date and at least
:data:`~training.bnpl_replay.MATURED_DAYS` before the store's last invoice, so whether it
reached an agency is known. Each is decided on its features as of the order day (point
in time), with the decline memory of the replay's own answers; the orders of the
:data:`MEMORY_WARMUP_DAYS` before the period are decided first and not counted, so the
memory is filled when the counting starts. Above :data:`MAX_ORDERS` orders a share of
the customers (by a hash of their id, so a customer's orders stay together) is replayed.

Without orders with a known outcome (a store without pay-later, e.g. an import of card
data) or with too few of them to rank (:data:`MIN_ORDERS`), the file's policy stays, and
the report says why.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.events import PRODUCT_CODES, STEP_CODES, EventArrays, from_day, to_day
from models.bnpl import BnplPolicy
from training.bnpl_replay import MATURED_DAYS, choose_policy, evaluate_policy, order_inputs

#: fewer counted orders than this, or fewer than MIN_AT_AGENCY of them at an agency: the
#: curve cannot rank cut-offs, and the file's policy stays. With k orders at an agency the
#: agency rate's relative standard error is about 1/sqrt(k): ±10 % at 100, small enough to
#: rank points the goal's 30 % apart; the default world's one validation month has ~19
#: (±23 %), where the choice would be noise
MIN_ORDERS = 200
MIN_AT_AGENCY = 100
#: orders (counted and warm-up) above which a share of the customers is replayed
MAX_ORDERS = 40_000
#: days of orders decided before the period to fill the decline memory (its sticky window)
MEMORY_WARMUP_DAYS = 90


@dataclass
class BnplPolicyFit:
    """The policy for the bundle and what training reports of its choice."""

    policy: BnplPolicy
    #: ``source`` ("chosen" or "policy file"), ``reason`` when the file's policy stayed,
    #: the period, orders, sample share, rules-only point, chosen point, curve, variants
    report: dict[str, Any]

    @property
    def chosen(self) -> bool:
        return self.report["source"] == "chosen"


def store_orders(events: EventArrays, first_day: int) -> pd.DataFrame:
    """The pay-later orders in ``events`` (its invoices of product bnpl) issued on or
    after day ``first_day`` whose outcome is known (issued at least ``MATURED_DAYS``
    before the last invoice), one row each: ``cust`` (position in ``events``),
    ``issue_date``, ``amount_cents``, ``collection`` (reached an agency or bailiff),
    ``lost_cents`` (unpaid at the end), ``matured`` (all True)."""
    inv = events.invoices
    if len(inv["cust"]) == 0:
        return _orders_frame(np.zeros(0, np.int64), np.zeros(0, np.int64), events)
    last = int(inv["issue_day"].max())
    rows = np.flatnonzero(
        (inv["product"] == PRODUCT_CODES["bnpl"])
        & (inv["issue_day"] >= first_day)
        & (inv["issue_day"] <= last - MATURED_DAYS)
    )
    return _orders_frame(rows, inv["issue_day"][rows], events)


def _orders_frame(rows: np.ndarray, days: np.ndarray, events: EventArrays) -> pd.DataFrame:
    inv, steps, pay = events.invoices, events.steps, events.payments
    handed = np.isin(steps["step"], [STEP_CODES["agency"], STEP_CODES["bailiff"]])
    at_agency = np.zeros(len(inv["cust"]), dtype=bool)
    at_agency[steps["invoice"][handed & (steps["invoice"] >= 0)]] = True
    paid = np.zeros(len(inv["cust"]), dtype=np.int64)
    linked = pay["invoice"] >= 0
    np.add.at(paid, pay["invoice"][linked], pay["amount_cents"][linked])
    amount = inv["amount_cents"][rows]
    order = np.lexsort((inv["cust"][rows], days))  # day by day, as the replay decides
    rows, days, amount = rows[order], days[order], amount[order]
    return pd.DataFrame(
        {
            "cust": inv["cust"][rows],
            "issue_date": pd.to_datetime([from_day(int(d)) for d in days]),
            "issue_day": days,
            "amount_cents": amount,
            "collection": at_agency[rows],
            "lost_cents": np.clip(amount - paid[rows], 0, None),
            "matured": np.ones(len(rows), dtype=bool),
        }
    )


def customer_sample(ids: np.ndarray, share: float) -> np.ndarray:
    """Which customers (``ids``) a replay of ``share`` of them keeps: a stable hash of the
    id, so the same customers are kept on every run and all of a customer's orders stay."""
    if share >= 1:
        return np.ones(len(ids), dtype=bool)
    buckets = np.fromiter((zlib.crc32(str(i).encode()) % 10_000 for i in ids), np.int64, len(ids))
    return buckets < share * 10_000


def choose_bundle_policy(
    events: EventArrays,
    predict: Callable[[np.ndarray], np.ndarray],
    policy: BnplPolicy,
    validation_dates: list[str],
    *,
    max_orders: int = MAX_ORDERS,
    log: Callable[[str], None] = lambda text: None,
) -> BnplPolicyFit:
    """``policy`` with the cut-off and variant its ``operating_point`` rule picks on the
    store's pay-later orders from the first of ``validation_dates`` (ISO dates, the
    out-of-time split's), decided with ``predict`` (the candidate's calibrated
    probability); or ``policy`` unchanged, with the reason, when the rule has nothing to
    go on. Module doc for the protocol."""
    started = time.perf_counter()
    if not policy.operating_point:
        return _kept(policy, "the policy file states no operating_point rule", started)
    if not validation_dates:
        return _kept(policy, "no out-of-time validation period", started)
    first = to_day(date.fromisoformat(validation_dates[0]))
    orders = store_orders(events, first - MEMORY_WARMUP_DAYS)
    counted = orders["issue_day"].to_numpy() >= first
    period = {
        "from": validation_dates[0],
        "to": str(orders["issue_date"].max().date()) if counted.any() else None,
        "memory_warmup_days": MEMORY_WARMUP_DAYS,
    }
    n_at_agency = int(orders["collection"].to_numpy()[counted].sum())
    if counted.sum() < MIN_ORDERS or n_at_agency < MIN_AT_AGENCY:
        reason = (
            f"{int(counted.sum()):,} pay-later orders with a known outcome in the validation "
            f"period ({n_at_agency} reached an agency); the rule needs at least {MIN_ORDERS:,} "
            f"and {MIN_AT_AGENCY}"
        )
        return _kept(policy, reason, started, period=period)
    share = min(1.0, max_orders / len(orders))
    if share < 1:
        keep = customer_sample(events.customer_ids[orders["cust"].to_numpy()], share)
        orders, counted = orders[keep].reset_index(drop=True), counted[keep]
    cust = orders["cust"].to_numpy()
    log(f"pay-later: {int(counted.sum()):,} orders from {validation_dates[0]}; features as of each")
    X, cases = order_inputs(events, cust, orders["issue_day"].to_numpy())
    p = np.asarray(predict(X), dtype=np.float64)
    birth_years = events.customers["birth_year"][cust]

    def replay(candidate: BnplPolicy, **kw: Any) -> dict[str, float]:
        return evaluate_policy(
            candidate, orders, X, p, cases, birth_years, cust=cust, counted=counted, **kw
        )

    choice = choose_policy(policy, replay, log)
    report = {
        "source": "chosen",
        "rule": {k: v for k, v in policy.operating_point.items() if not k.startswith("_")},
        "period": period,
        "orders": int(counted.sum()),
        "orders_at_agency": int(orders["collection"].to_numpy()[counted].sum()),
        "customers": len(np.unique(cust[counted])),
        "customer_share": share,
        "rules_only": choice.rules_only,
        "chosen": choice.chosen,
        "curve": choice.curve,
        "variants": {name: v["chosen"] for name, v in choice.variants.items()},
        "policy_file_cutoff": policy.risk_cutoff,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return BnplPolicyFit(choice.policy, report)


def _kept(
    policy: BnplPolicy, reason: str, started: float, period: dict[str, Any] | None = None
) -> BnplPolicyFit:
    return BnplPolicyFit(
        replace(policy),
        {
            "source": "policy file",
            "reason": f"kept the policy file's defaults: {reason}",
            "period": period,
            "policy_file_cutoff": policy.risk_cutoff,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


def summary_line(report: dict[str, Any]) -> str:
    """One line for the training report: the chosen point beside the rules alone (with the
    counts of approved orders at an agency, so a choice resting on a handful reads as
    one), or why the file's policy stayed."""
    if report["source"] != "chosen":
        return f"pay-later policy: {report['reason']}"
    c, r = report["chosen"], report["rules_only"]
    meets = "meets the rule" if c["meets_rule"] else "no cut-off meets the rule"
    sample = (
        f", {report['customer_share']:.0%} of customers" if report["customer_share"] < 1 else ""
    )
    return (
        f"pay-later policy: cut-off {c['cutoff']:g}, {c['variant']} ({meets}; file "
        f"{report['policy_file_cutoff']:g}): approval {c['approval_rate']:.1%}, orders at an "
        f"agency {c['collection_rate_approved']:.2%} ({c['approved_to_collection']:.0f}) vs "
        f"rules alone {r['approval_rate']:.1%}, {r['collection_rate_approved']:.2%} "
        f"({r['approved_to_collection']:.0f}); {report['orders']:,} orders from "
        f"{report['period']['from']} ({report['orders_at_agency']:,} at an agency){sample}"
    )

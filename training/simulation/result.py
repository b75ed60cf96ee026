"""Turning the engine's integer-coded events into the contract tables, and back from disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.schemas import OPTIONAL_TABLES, TABLES
from training.simulation.config import BEHAVIOURS, SimulationConfig
from training.simulation.engine import RawEvents, run
from training.simulation.policy import CollectionPolicy
from training.simulation.population import (
    HOUSEHOLDS,
    METHODS,
    PATTERNS,
    PRODUCTS,
    SOURCES,
    PopulationState,
    build_population,
)

TRUTH_DIR = "truth"

_PAY_METHODS = np.array(["direct_debit", "transfer", "arrangement", "agency"], dtype=object)
_RESULTS = np.array(["success", "failed", "reversed"], dtype=object)
_REASONS = np.array(["AM04", "MS03", "MD06"], dtype=object)
_STEPS = np.array(["reminder", "fourteen_day_letter", "agency", "bailiff"], dtype=object)
_OUTCOMES = np.array(["active", "kept", "broken"], dtype=object)
_SOURCES_RECEIPT = np.array(["salary", "benefit", "pension", "allowance"], dtype=object)
_INV_PRODUCTS = np.array([*PRODUCTS, "bnpl"], dtype=object)


def _ids(prefix: str, k: int, width: int = 8) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, k + 1)], dtype=object)


def _str(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")


@dataclass
class SimulationResult:
    config: SimulationConfig
    tables: dict[str, pd.DataFrame]
    truth_customers: pd.DataFrame
    truth_monthly: pd.DataFrame
    policy_name: str = "current_practice"
    elapsed_seconds: float | None = field(default=None, compare=False)
    #: the plans the customer paused (:func:`build_plan_pauses`); not written to disk
    plan_pauses: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)

    def write(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables.items():
            df.to_parquet(directory / f"{name}.parquet", index=False)
        # hidden truth in its own folder: the event folder stays ingestible as it is
        (directory / TRUTH_DIR).mkdir(parents=True, exist_ok=True)
        self.truth_customers.to_parquet(
            directory / TRUTH_DIR / "truth_customers.parquet", index=False
        )
        self.truth_monthly.to_parquet(directory / TRUTH_DIR / "truth_monthly.parquet", index=False)
        meta = {"config": self.config.to_dict(), "policy": self.policy_name}
        (directory / TRUTH_DIR / "simulation.json").write_text(
            json.dumps(meta, indent=2), encoding="utf-8"
        )

    @classmethod
    def read(cls, directory: Path) -> SimulationResult:
        directory = Path(directory)
        meta = json.loads((directory / TRUTH_DIR / "simulation.json").read_text(encoding="utf-8"))
        tables: dict[str, pd.DataFrame] = {}
        for name, (schema, _, _) in TABLES.items():
            path = directory / f"{name}.parquet"
            if name in OPTIONAL_TABLES and not path.is_file():
                continue  # a world written before the table; the simulator makes no rows
            df = pd.read_parquet(path)
            tables[name] = schema.validate(df)
        return cls(
            config=SimulationConfig.from_dict(meta["config"]),
            tables=tables,
            truth_customers=pd.read_parquet(directory / TRUTH_DIR / "truth_customers.parquet"),
            truth_monthly=pd.read_parquet(directory / TRUTH_DIR / "truth_monthly.parquet"),
            policy_name=meta.get("policy", "current_practice"),
        )


def build_tables(pop: PopulationState, raw: RawEvents) -> dict[str, pd.DataFrame]:
    cal = pop.calendar
    cid = pop.customer_ids
    dt = cal.to_datetime64
    customers = pd.DataFrame(
        {
            "customer_id": _str(cid),
            "household_type": _str(np.array(HOUSEHOLDS, dtype=object)[pop.household]),
            "birth_year": pd.array(pop.birth_year, dtype="Int64"),
            "declared_net_income_cents": pd.array(
                [int(v) if v >= 0 else pd.NA for v in pop.declared_income], dtype="Int64"
            ),
            "created_at": dt(pop.created_day),
        }
    )
    n_inv = len(raw.inv_cust)
    inv_ids = _ids("INV-", n_inv)
    invoices = pd.DataFrame(
        {
            "invoice_id": _str(inv_ids),
            "customer_id": _str(cid[raw.inv_cust]),
            "issue_date": dt(raw.inv_issue),
            "due_date": dt(raw.inv_due),
            "amount_cents": raw.inv_amount.astype(np.int64),
            "product": _str(_INV_PRODUCTS[raw.inv_product]),
            "collection_method": _str(np.array(METHODS, dtype=object)[raw.inv_method]),
        }
    )
    p = raw.payments
    payments = pd.DataFrame(
        {
            "payment_id": _str(_ids("PAY-", len(p["inv"]))),
            "customer_id": _str(cid[raw.inv_cust[p["inv"]]]),
            "invoice_id": _str(inv_ids[p["inv"]]),
            "paid_at": dt(p["day"]),
            "amount_cents": p["amount"].astype(np.int64),
            "method": _str(_PAY_METHODS[p["method"]]),
        }
    )
    b = raw.debits
    reason = np.where(b["reason"] >= 0, _REASONS[np.maximum(b["reason"], 0)], None)
    debits = pd.DataFrame(
        {
            "attempt_id": _str(_ids("DDA-", len(b["inv"]))),
            "customer_id": _str(cid[raw.inv_cust[b["inv"]]]),
            "invoice_id": _str(inv_ids[b["inv"]]),
            "attempted_at": dt(b["day"]),
            "amount_cents": b["amount"].astype(np.int64),
            "result": _str(_RESULTS[b["result"]]),
            "reason_code": pd.Series(reason, dtype="str"),
        }
    )
    debits.loc[b["reason"] < 0, "reason_code"] = None
    s = raw.steps
    steps = pd.DataFrame(
        {
            "step_id": _str(_ids("STP-", len(s["inv"]))),
            "customer_id": _str(cid[raw.inv_cust[s["inv"]]]),
            "invoice_id": _str(inv_ids[s["inv"]]),
            "step_date": dt(s["day"]),
            "step": _str(_STEPS[s["step"]]),
            "cost_cents": s["cost"].astype(np.int64),
        }
    )
    a = raw.arrangements
    end = dt(np.maximum(a["end"], 0)).copy()
    end[a["end"] < 0] = np.datetime64("NaT")
    arrangements = pd.DataFrame(
        {
            "arrangement_id": _str(_ids("ARR-", len(a["cust"]))),
            "customer_id": _str(cid[a["cust"]]),
            "start_date": dt(a["start"]),
            "debt_cents": a["debt"].astype(np.int64),
            "monthly_amount_cents": a["monthly"].astype(np.int64),
            "term_months": a["term"].astype(np.int64),
            "outcome": _str(_OUTCOMES[a["outcome"]]),
            "end_date": end,
        }
    )
    r = raw.receipts
    receipts = pd.DataFrame(
        {
            "receipt_id": _str(_ids("INC-", len(r["cust"]))),
            "customer_id": _str(cid[r["cust"]]),
            "received_at": dt(r["day"]),
            "amount_cents": r["amount"].astype(np.int64),
            "source": _str(_SOURCES_RECEIPT[r["source"]]),
        }
    )
    b = raw.balances
    balances = pd.DataFrame(
        {
            "balance_id": _str(_ids("BAL-", len(b["cust"]))),
            "customer_id": _str(cid[b["cust"]]),
            "observed_at": dt(b["day"]),
            "balance_cents": b["balance"].astype(np.int64),
        }
    )
    return {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
        "debit_attempts": debits,
        "collection_steps": steps,
        "arrangements": arrangements,
        "income_receipts": receipts,
        "account_balances": balances,
    }


def build_truth(pop: PopulationState, raw: RawEvents) -> tuple[pd.DataFrame, pd.DataFrame]:
    cal = pop.calendar
    truth_customers = pd.DataFrame(
        {
            "customer_id": _str(pop.customer_ids),
            "household_type": _str(np.array(HOUSEHOLDS, dtype=object)[pop.household]),
            "age": pop.age,
            "income_source": _str(np.array(SOURCES, dtype=object)[pop.source]),
            "pay_pattern": _str(np.array(PATTERNS, dtype=object)[pop.pattern]),
            "pay_day_of_month": pop.pay_day_of_month,
            "net_income_cents": pop.net_income,
            "allowance_cents": pop.allowance,
            "fixed_costs_cents": pop.fixed_costs,
            "living_costs_cents": pop.living_costs,
            "free_room_cents": pop.free_room,
            "buffer_cents": pop.buffer,
            "overdraft_limit_cents": pop.overdraft,
            "behaviour": _str(np.array(BEHAVIOURS, dtype=object)[pop.behaviour]),
            "has_open_banking": pop.has_open_banking,
            "creditor_debit_day": raw.debit_day_used,
            "current_practice_debit_day": pop.debit_day,
            "collection_method": _str(np.array(METHODS, dtype=object)[pop.method]),
            "product": _str(np.array(PRODUCTS, dtype=object)[pop.product]),
            "invoice_amount_cents": pop.base_invoice_amount,
            "bnpl_orders_per_month": pop.bnpl_rate,
            "created_at": cal.to_datetime64(pop.created_day),
        }
    )
    t = raw.truth_monthly
    month_start = (
        (np.datetime64(cal.start, "M") + t["month"])
        .astype("datetime64[D]")
        .astype("datetime64[ns]")
    )
    truth_monthly = pd.DataFrame(
        {
            "customer_id": _str(pop.customer_ids[t["cust"]]),
            "month_start": month_start,
            "balance_cents": t["balance"].astype(np.int64),
            "monthly_income_cents": t["income"].astype(np.int64),
            "unemployed": t["unemployed"].astype(bool),
            "income_cut": t["income_cut"].astype(bool),
            "in_shock": t["in_shock"].astype(bool),
            "free_room_cents": t["free_room"].astype(np.int64),
            "is_customer": pop.created_day[t["cust"]]
            <= (month_start - np.datetime64(cal.start, "D"))
            .astype("timedelta64[D]")
            .astype(np.int64),
        }
    )
    truth_monthly = truth_monthly.sort_values(
        ["customer_id", "month_start"], kind="stable"
    ).reset_index(drop=True)
    return truth_customers, truth_monthly


def build_plan_pauses(pop: PopulationState, raw: RawEvents) -> pd.DataFrame:
    """One row per plan the customer paused: its id (as in the ``arrangements`` table), the
    day of its latest pause and how many pauses it took. A pause is no event of the
    contract tables; the simulation keeps it beside them."""
    a = raw.arrangements
    taken = np.flatnonzero(a["pauses"] > 0) if len(a["cust"]) else np.zeros(0, np.int64)
    return pd.DataFrame(
        {
            "arrangement_id": _str(_ids("ARR-", len(a["cust"]))[taken]),
            "customer_id": _str(pop.customer_ids[a["cust"][taken]]),
            "paused_on": pop.calendar.to_datetime64(a["paused_on"][taken]),
            "pauses": a["pauses"][taken].astype(np.int64),
        }
    )


def simulate(
    config: SimulationConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    policy: CollectionPolicy | None = None,
    population: PopulationState | None = None,
) -> SimulationResult:
    """Simulate ``config`` under ``policy`` (default: current practice).

    ``population`` (from :func:`build_population`) may be passed to reuse the same
    customers; it must have been built from the same ``config``.
    """
    import time

    t0 = time.perf_counter()
    policy = policy or CollectionPolicy.current_practice()
    pop = population if population is not None else build_population(config)
    if pop.config != config:
        raise ValueError("population was built from another config")
    raw = run(pop, policy, progress)
    tables = build_tables(pop, raw)
    if config.validate:
        tables = {name: TABLES[name][0].validate(df) for name, df in tables.items()}
    truth_customers, truth_monthly = build_truth(pop, raw)
    return SimulationResult(
        config=config,
        tables=tables,
        truth_customers=truth_customers,
        truth_monthly=truth_monthly,
        policy_name=policy.name,
        elapsed_seconds=time.perf_counter() - t0,
        plan_pauses=build_plan_pauses(pop, raw),
    )


def comparable(result: SimulationResult) -> dict[str, pd.DataFrame]:
    """The event tables and the monthly hidden state, each row named by its customer.

    Row ids (``invoice_id``, ``payment_id`` ...) number rows over all customers, so one
    customer's extra invoice renumbers everyone's; an invoice is named instead by its
    customer and its place in that customer's history.
    """
    invoices = result.tables["invoices"]
    place = invoices.groupby("customer_id").cumcount().astype(str)
    local_name = dict(
        zip(invoices["invoice_id"], invoices["customer_id"] + "#" + place, strict=True)
    )
    out = {}
    for name, df in {**result.tables, "truth_monthly": result.truth_monthly}.items():
        row_ids = [c for c in df.columns if c.endswith("_id") and c != "customer_id"]
        named = df.drop(columns=[c for c in row_ids if c != "invoice_id"])
        if "invoice_id" in named:
            named = named.assign(invoice_id=named["invoice_id"].map(local_name))
        out[name] = named
    return out


def customers_changed(a: SimulationResult, b: SimulationResult) -> set[str]:
    """Customers with at least one row in one run that is not in the other (any event
    table or the monthly hidden state): what a counterfactual run changed, by customer."""
    changed: set[str] = set()
    for name, left in comparable(a).items():
        right = comparable(b)[name]
        both = left.merge(right, how="outer", on=list(left.columns), indicator=True)
        changed |= set(both.loc[both["_merge"] != "both", "customer_id"])
    return changed

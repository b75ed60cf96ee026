"""Shared fixtures: event-store databases on SQLite and PostgreSQL.

``store_url`` / ``store`` are parametrised over ``sqlite`` and ``postgresql``; a test that
uses them runs once per back end. PostgreSQL comes from ``TIJDIG_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); when no server answers within
~2 s the PostgreSQL variants are skipped with the reason, never passed silently. Each
PostgreSQL test gets its own schema (tests run in parallel under pytest-xdist), dropped
afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import pytest

pytest_plugins = ["tests.fixtures.simulated", "tests.fixtures.backends"]

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_test_url() -> str:
    return os.environ.get("TIJDIG_TEST_PG_URL", DEFAULT_PG_URL)


def _libpq_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def _pg_unreachable_reason() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per worker)."""
    url = pg_test_url()
    try:
        import psycopg

        with psycopg.connect(_libpq_conninfo(url), connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        from sqlalchemy.engine import make_url

        shown = make_url(url).render_as_string(hide_password=True)
        return f"PostgreSQL not reachable at {shown}: {type(exc).__name__}: {exc}".strip()
    return None


@dataclass(frozen=True)
class StoreURL:
    """Where a test's event store lives: ``url`` plus, on PostgreSQL, its own ``schema``."""

    url: str
    schema: str | None
    dialect: str


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
def postgres_url() -> Iterator[StoreURL]:
    """A PostgreSQL URL and a fresh schema, dropped afterwards; skips when unreachable."""
    reason = _pg_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    url = pg_test_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conninfo = _libpq_conninfo(url)
    with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield StoreURL(url, schema, "postgresql")
    finally:
        with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> StoreURL:
    """Both back ends; the PostgreSQL variant skips (with the reason) when no server answers."""
    if request.param == "sqlite":
        return StoreURL(f"sqlite:///{tmp_path / 'events.db'}", None, "sqlite")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: StoreURL):
    """An empty event store with its schema created, on each back end; disposed afterwards."""
    from features.store import EventStore

    st = EventStore(store_url.url, schema=store_url.schema)
    st.create_schema()
    try:
        yield st
    finally:
        st.dispose()


# ----------------------------------------------------------------------------- tiny batches


def build_event_batch(customers: tuple[str, ...] = ("c1", "c2", "c3"), prefix: str = ""):
    """A fresh copy of :func:`_build_event_batch` (cached: tests may mutate their copy)."""
    return {t: df.copy() for t, df in _build_event_batch(tuple(customers), prefix).items()}


@lru_cache(maxsize=64)
def _build_event_batch(customers: tuple[str, ...], prefix: str):
    """A small valid batch (all seven tables) for ``customers``: hand-made, no simulator.

    Per customer: 2 invoices, payments, debit attempts (one failed with AM04), a reminder,
    an arrangement (the first customer's is still active: null end_date) and income
    receipts. Nullable values appear (birth_year, declared income, reason_code, end_date).
    ``prefix`` makes the event ids distinct across calls.
    """
    import pandas as pd

    d = pd.Timestamp
    rows: dict[str, list[dict]] = {
        t: []
        for t in (
            "customers",
            "invoices",
            "payments",
            "debit_attempts",
            "collection_steps",
            "arrangements",
            "income_receipts",
            "account_balances",
        )
    }
    for k, c in enumerate(customers):
        rows["customers"].append(
            {
                "customer_id": c,
                "household_type": ["single", "couple", "single_parent"][k % 3],
                "birth_year": None if k % 3 == 1 else 1960 + k,
                "declared_net_income_cents": None if k % 3 == 2 else 180_000 + 1000 * k,
                "created_at": d("2022-01-01") + pd.Timedelta(days=k),
            }
        )
        for j in range(2):
            inv = f"{prefix}inv-{c}-{j}"
            issue = d("2024-01-01") + pd.DateOffset(months=j) + pd.Timedelta(days=k)
            rows["invoices"].append(
                {
                    "invoice_id": inv,
                    "customer_id": c,
                    "issue_date": issue,
                    "due_date": issue + pd.Timedelta(days=14),
                    "amount_cents": 12_345 + 100 * j + k,
                    "product": ["energy", "bnpl"][j],
                    "collection_method": ["direct_debit", "transfer"][j],
                }
            )
            failed = j == 0
            rows["debit_attempts"].append(
                {
                    "attempt_id": f"{prefix}att-{c}-{j}",
                    "customer_id": c,
                    "invoice_id": inv,
                    "attempted_at": issue + pd.Timedelta(days=14),
                    "amount_cents": 12_345 + 100 * j + k,
                    "result": "failed" if failed else "success",
                    "reason_code": "AM04" if failed else None,
                }
            )
            rows["payments"].append(
                {
                    "payment_id": f"{prefix}pay-{c}-{j}",
                    "customer_id": c,
                    "invoice_id": inv,
                    "paid_at": issue + pd.Timedelta(days=20 + j),
                    "amount_cents": 12_345 + 100 * j + k,
                    "method": "transfer" if failed else "direct_debit",
                }
            )
        rows["collection_steps"].append(
            {
                "step_id": f"{prefix}step-{c}-0",
                "customer_id": c,
                "invoice_id": f"{prefix}inv-{c}-0",
                "step_date": d("2024-01-20") + pd.Timedelta(days=k),
                "step": "reminder",
                "cost_cents": 0,
            }
        )
        active = k == 0
        rows["arrangements"].append(
            {
                "arrangement_id": f"{prefix}arr-{c}",
                "customer_id": c,
                "start_date": d("2024-03-01"),
                "debt_cents": 60_000,
                "monthly_amount_cents": 10_000,
                "term_months": 6,
                "outcome": "active" if active else "kept",
                "end_date": None if active else d("2024-08-01"),
            }
        )
        for m in range(3):
            rows["income_receipts"].append(
                {
                    "receipt_id": f"{prefix}inc-{c}-{m}",
                    "customer_id": c,
                    "received_at": d("2024-01-24") + pd.DateOffset(months=m),
                    "amount_cents": 190_000 + m,
                    "source": ["salary", "benefit", "allowance"][k % 3],
                }
            )
        for w in range(4):
            rows["account_balances"].append(
                {
                    "balance_id": f"{prefix}bal-{c}-{w}",
                    "customer_id": c,
                    "observed_at": d("2024-02-04") + pd.Timedelta(days=7 * w),
                    "balance_cents": (-5_000 if k % 2 else 45_000) + w,
                }
            )
    frames = {t: pd.DataFrame(r) for t, r in rows.items()}
    # Contract dtypes (what pandera yields), so frames compare equal to what the store returns.
    from features.schemas import TABLES

    return {t: TABLES[t][0].validate(df) for t, df in frames.items()}


@pytest.fixture
def make_batch():
    """The :func:`build_event_batch` factory."""
    return build_event_batch

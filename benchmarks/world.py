"""The shared world: one simulated population in a SQLite event store with a champion
trained and promoted beside it, which the online, batch and scaling benchmarks measure.

:func:`prepare_world` builds it in a folder (``--world`` reuses one instead),
:func:`world_as_of` says what "now" is in it, and :func:`refresh_rows` makes every
customer's serving row valid, as ``tijdig features refresh`` does nightly.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import run_child


def prepare_world(directory: Path, customers: int = 20_000, months: int = 24) -> dict[str, Any]:
    """Simulate, ingest, train and promote into ``directory``; returns timings and the as_of."""
    from features.store import EventStore
    from training.pipeline import run_training
    from training.settings import TrainingSettings
    from training.simulation import SimulationConfig, simulate

    settings = TrainingSettings(data_dir=directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"customers": customers, "months": months}
    started = time.perf_counter()
    result = simulate(SimulationConfig(n_customers=customers, months=months, seed=42))
    out["simulate_s"] = time.perf_counter() - started
    result.write(settings.simulation_dir)
    store = EventStore(settings.store_url)
    try:
        store.create_schema()
        started = time.perf_counter()
        report = store.ingest(result.tables)
        out["ingest_s"] = time.perf_counter() - started
        out["events"] = int(sum(len(df) for df in result.tables.values()))
        del report
    finally:
        store.dispose()
    started = time.perf_counter()
    trained = run_training(settings, truth_dir=settings.simulation_dir, force=True)
    out["train_s"] = time.perf_counter() - started
    out["train_stages_s"] = trained.candidate.timings
    out["metrics"] = trained.candidate.metrics
    out["version"] = trained.version
    return out


_WORLD_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.common import peak_rss_mb
from benchmarks.world import prepare_world
out = prepare_world(Path(sys.argv[1]), customers=int(sys.argv[2]))
out["peak_rss_mb"] = peak_rss_mb()
print("RESULT" + json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
"""


def prepare_world_in_child(directory: Path, customers: int = 20_000) -> dict[str, Any]:
    """:func:`prepare_world` in its own process, with that process's peak memory.

    Why a child: simulating and training leave ~3.5 GB resident in the process that did
    it (20,000 customers), and the benchmark runner then starts the scaling children
    beside itself; at 1,000,000 customers those need most of the machine.
    """
    out, stderr = run_child(_WORLD_CHILD, str(directory), str(customers))
    if out is None:
        raise RuntimeError(f"preparing the shared world failed: {stderr}")
    return dict(out)


def world_as_of(store_url: str) -> date:
    """The day after the last invoice in the store: "now" in the simulated world."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT max(issue_date) FROM invoices")).scalar()
    engine.dispose()
    if last is None:
        raise ValueError(f"no invoices in {store_url}: nothing to score")
    return (pd.Timestamp(last) + timedelta(days=1)).date()


def refresh_rows(world: Path, as_of: date) -> dict[str, Any]:
    """``tijdig features refresh`` for the world: every customer's serving row as of ``as_of``."""
    from features.store import EventStore
    from models.serving import ServingRows
    from service.bundle_loader import load_checked_bundle
    from service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=world)
    bundle = load_checked_bundle(settings.model_uri, settings.mlflow_tracking_uri)
    store = EventStore(settings.store_url)
    try:
        store.create_schema()
        started = time.perf_counter()
        computed = ServingRows(store).refresh(bundle, as_of)
        seconds = time.perf_counter() - started
        total = store.count("customers")
    finally:
        store.dispose()
    return {"customers": total, "computed": computed, "seconds": seconds}

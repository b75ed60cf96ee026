"""Batch speed: ``score_batch`` (what ``tijdig score-batch`` runs) end to end, against a plain
``Booster.predict`` on the same feature matrix in the same run.

The store and the champion are built by :func:`benchmarks.world.prepare_world` (or reused).
For sizes beyond what one process can simulate and train on this machine (1,000,000
customers), the store is built in a child process from independent 100,000-customer
simulations (their own seeds, ids prefixed per chunk) and scored with the shared world's
champion: batch scoring needs a store and a model, not a model trained on that store.

Each figure is the median over repeats with the spread; the split says where end-to-end
time goes. Two end-to-end figures: *cold* (no valid serving row: every customer read
from the events, features, predict, SHAP where reasons may be shown, rows stored — what
the first run of a day does) and *warm* (the same run with every row valid — a second
run that day, or after `tijdig features refresh`; after an ingest only the customers with
new events take the cold path). The plain-predict matrix is decoded from the serving
rows, which equal the features built from the events bit for bit
(``tests/data/test_serving_rows.py``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import peak_rss_mb, peak_since_reset, run_child, stats
from benchmarks.world import prepare_world, world_as_of

CHUNK = 100_000  # customers per simulation in a chunk-built store
BIG = 200_000  # above this: the store is chunk-built and cold scoring runs once


def build_chunked_store(store_url: str, customers: int, seed: int = 1000) -> dict[str, Any]:
    """Simulate ``customers`` in independent chunks and ingest them (run in a child process,
    so the parent's peak memory is the scoring's)."""
    from features.schemas import TABLES
    from features.store import EventStore
    from training.simulation import SimulationConfig, simulate

    store = EventStore(store_url)
    store.create_schema()
    out: dict[str, Any] = {"chunks": [], "customers": customers}
    try:
        for k, start in enumerate(range(0, customers, CHUNK)):
            n = min(CHUNK, customers - start)
            t0 = time.perf_counter()
            result = simulate(SimulationConfig(n_customers=n, months=24, seed=seed + k))
            t1 = time.perf_counter()
            tables = {}
            for table, df in result.tables.items():
                df = df.copy()
                _, pk, _ = TABLES[table]
                for col in {pk, "customer_id", "invoice_id"} & set(df.columns):
                    df[col] = f"K{k:02d}-" + df[col].astype(str)
                tables[table] = df
            report = store.ingest(tables)
            t2 = time.perf_counter()
            out["chunks"].append(
                {
                    "customers": n,
                    "events": report.received,
                    "simulate_s": round(t1 - t0, 1),
                    "ingest_s": round(t2 - t1, 1),
                }
            )
            print(
                f"   chunk {k}: {n:,} customers, {report.received:,} events, simulate "
                f"{t1 - t0:.0f} s, ingest {t2 - t1:.0f} s",
                flush=True,
            )
    finally:
        store.dispose()
    out["peak_rss_mb"] = peak_rss_mb()  # of the process that built it
    return out


_BUILD_CHILD = """
import json, sys
from benchmarks.batch import build_chunked_store
print("RESULT" + json.dumps(build_chunked_store(sys.argv[1], int(sys.argv[2])), default=float))
"""

#: What a chunk-built store's folder records of its build (also written by
#: :func:`benchmarks.scaling.measure`).
BUILD_RECORD = "build.json"


def ensure_chunked_store(
    folder: Path, customers: int, *, in_process: bool = False
) -> dict[str, Any]:
    """A chunk-built store of ``customers`` in ``folder``: reused when the folder's
    :data:`BUILD_RECORD` says it holds that many (building 1,000,000 customers takes over
    half an hour), else built and recorded: in a child process (the caller's peak memory
    stays its own), or ``in_process`` for a caller that measures the build itself (the
    scaling benchmark, already a child of its own)."""
    from training.settings import TrainingSettings

    record = folder / BUILD_RECORD
    if record.is_file():
        built: dict[str, Any] = json.loads(record.read_text())
        if built["customers"] != customers:
            raise ValueError(f"{record} holds {built['customers']:,} customers, not {customers:,}")
        return {**built, "reused_store": str(folder)}
    folder.mkdir(parents=True, exist_ok=True)
    store_url = TrainingSettings(data_dir=folder).store_url
    if in_process:
        built = build_chunked_store(store_url, customers)
    else:
        result, stderr = run_child(_BUILD_CHILD, store_url, str(customers))
        if result is None:
            raise RuntimeError(f"building the {customers:,}-customer store failed: {stderr}")
        built = result
    record.write_text(json.dumps(built, indent=1) + "\n")
    return built


def run(
    quick: bool = False,
    customers: int = 100_000,
    world: Path | None = None,
    repeats: int = 3,
    model_world: Path | None = None,
    store_dir: Path | None = None,
) -> dict[str, Any]:
    """``world``: score this data folder with its own champion. Otherwise build a store of
    ``customers``: like the shared world (simulate, ingest, train) up to :data:`BIG`, in
    chunks beyond it, scored with ``model_world``'s champion; ``store_dir`` keeps that
    chunk-built store (and reuses it when it holds that size) instead of a temporary one."""
    from features.store import EventStore
    from models.bundle import load_bundle
    from models.serving import ServingRows
    from training.batch_scoring import score_batch
    from training.settings import TrainingSettings

    peak_since_reset()  # the peak reported is this benchmark's, not the run's so far
    if quick:
        customers, repeats = min(customers, 10_000), 2
    with tempfile.TemporaryDirectory(prefix="tijdig-bench-batch-", dir=_scratch()) as tmp:
        built: dict[str, Any] = {}
        if world is not None:
            settings = TrainingSettings(data_dir=world)
            model_settings = settings
            record = world / BUILD_RECORD  # a chunk-built store (benchmarks.scaling.measure)
            built = json.loads(record.read_text()) if record.is_file() else {}
        elif customers > BIG:
            if model_world is None:
                raise ValueError("a chunk-built store needs model_world (a trained champion)")
            folder = store_dir if store_dir is not None else Path(tmp) / "world"
            built = ensure_chunked_store(folder, customers)
            settings = TrainingSettings(data_dir=folder)
            model_settings = TrainingSettings(data_dir=model_world)
        else:
            built = prepare_world(Path(tmp) / "world", customers=customers)
            settings = model_settings = TrainingSettings(data_dir=Path(tmp) / "world")
        bundle = load_bundle("models:/tijdig-risk@champion", model_settings.mlflow_tracking_uri)
        as_of = world_as_of(settings.store_url)
        store = EventStore(settings.store_url)
        store.create_schema()
        n = store.count("customers")
        cold_repeats = 1 if n > BIG else repeats
        cold, cold_parallel, warm, cold_splits, warm_splits = [], [], [], [], []
        workers = os.cpu_count() or 1
        flagged = 0
        for i in range(repeats):
            if i < cold_repeats:
                # cold: no valid serving row (a new day before any refresh)
                store.purge_serving_rows(2**31 - 1)
                started = time.perf_counter()
                report = score_batch(store, bundle, as_of, Path(tmp) / f"scores{i}cold.parquet")
                cold.append(time.perf_counter() - started)
                cold_splits.append(report.seconds)
                if workers > 1:  # the same, one process per core (process start included)
                    store.purge_serving_rows(2**31 - 1)
                    started = time.perf_counter()
                    score_batch(
                        store,
                        bundle,
                        as_of,
                        Path(tmp) / f"scores{i}cold-p.parquet",
                        workers=workers,
                    )
                    cold_parallel.append(time.perf_counter() - started)
            # warm: the same run again, every row valid
            started = time.perf_counter()
            report = score_batch(store, bundle, as_of, Path(tmp) / f"scores{i}warm.parquet")
            warm.append(time.perf_counter() - started)
            warm_splits.append(report.seconds)
            flagged = report.flagged
        serving = ServingRows(store)
        X = np.vstack(
            [
                serving.partition_state(bundle, ids, as_of).X
                for ids in store.iter_customer_partitions(CHUNK)
            ]
        )
        store.dispose()
        threads = os.cpu_count() or 1
        plain = []
        for _ in range(repeats):
            started = time.perf_counter()
            bundle.booster.predict(X, num_threads=threads)
            plain.append(time.perf_counter() - started)
    s_cold, s_warm, s_plain = stats(cold), stats(warm), stats(plain)
    per_s = lambda s: n / s  # noqa: E731

    def median_split(splits: list[dict[str, float]]) -> dict[str, float]:
        return {k: sorted(sp.get(k, 0.0) for sp in splits)[len(splits) // 2] for k in splits[0]}

    def speed(s: dict[str, float]) -> dict[str, float]:
        return {
            "per_s": per_s(s["median"]),
            "range_per_s": per_s(s["min"]) - per_s(s["max"]),
            "seconds": s["median"],
        }

    if not built.get("chunks"):
        how = "the shared world and its champion"
    elif world is not None:
        how = (
            f"built from {len(built['chunks'])} independent {CHUNK:,}-customer simulations by "
            "the scaling benchmark, scored with the champion trained on it"
        )
    else:
        how = (
            f"built from {len(built['chunks'])} independent {CHUNK:,}-customer simulations in a "
            "child process, scored with the shared world's champion"
            + (
                "; the store was built by an earlier run and reused"
                if built.get("reused_store")
                else ""
            )
        )
    return {
        "name": "batch",
        "setup": (
            f"{n:,} simulated customers (24 months) in a SQLite store ({how}); `score_batch` with "
            f"100k-customer partitions at as_of {as_of}; warm {repeats} repeats, cold {cold_repeats}; "
            f"plain `Booster.predict` ({threads} threads) on the same feature matrix, same run"
            + (
                f"; cold also with `workers={workers}` (spawned processes, their start "
                "included); peak memory is this process's since the batch benchmark began "
                "(the worker processes not counted)."
                if cold_parallel
                else "."
            )
        ),
        "world": {k: v for k, v in built.items() if k != "metrics"},
        "customers": n,
        "flagged": flagged,
        "speed": {
            "score-batch, serving rows valid (warm)": speed(s_warm),
            "score-batch, no valid rows (cold: computed from events, rows stored)": speed(s_cold),
            **(
                {
                    f"score-batch, cold, {workers} processes (`--workers {workers}`)": speed(
                        stats(cold_parallel)
                    )
                }
                if cold_parallel
                else {}
            ),
            "plain Booster.predict": speed(s_plain),
        },
        "ratio": s_plain["median"] / s_warm["median"],
        "ratio_cold": s_plain["median"] / s_cold["median"],
        **(
            {"cold_speedup_parallel": s_cold["median"] / stats(cold_parallel)["median"]}
            if cold_parallel
            else {}
        ),
        "workers": workers,
        "split": median_split(warm_splits),
        "split_cold": median_split(cold_splits),
        "peak_rss_mb": peak_rss_mb(),
        # the plain-predict baseline costs in proportion to the trees; the warm path reads
        # stored probabilities and does not, so its ratio grows with the model
        "model_trees": int(bundle.booster.num_trees()),
        "notes": [],
    }


def _scratch() -> str | None:
    """A temp folder on the project's disk: a 1M-customer store is tens of GB."""
    return os.environ.get("TIJDIG_BENCH_TMP") or None

"""Batch speed: ``score_batch`` (what ``tijdig score-batch`` runs) end to end, against a plain
``Booster.predict`` on the same feature matrix in the same run.

The store and the champion are built by :func:`benchmarks.online.prepare_world` (or reused).
Each figure is the median over repeats with the spread; the split says where end-to-end
time goes. Two end-to-end figures per repeat: *cold* (no valid serving row: every customer
read from the events, features, predict, SHAP where reasons may be shown, rows stored —
what the first run of a day does) and *warm* (the same run with every row valid — a
second run that day, or after `tijdig features refresh`; after an ingest only the
customers with new events take the cold path).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mb, stats
from benchmarks.online import prepare_world, world_as_of


def run(
    quick: bool = False, customers: int = 100_000, world: Path | None = None, repeats: int = 3
) -> dict[str, Any]:
    from features.build import build_features
    from features.events import EventArrays
    from features.store import EventStore
    from models.bundle import load_bundle
    from training.batch_scoring import score_batch
    from training.settings import TrainingSettings

    if quick:
        customers, repeats = min(customers, 10_000), 2
    with tempfile.TemporaryDirectory(prefix="tijdig-bench-batch-") as tmp:
        built: dict[str, Any] = {}
        if world is None:
            world = Path(tmp) / "world"
            built = prepare_world(world, customers=customers)
        settings = TrainingSettings(data_dir=world)
        bundle = load_bundle("models:/tijdig-risk@champion", settings.mlflow_tracking_uri)
        as_of = world_as_of(settings.store_url)
        store = EventStore(settings.store_url)
        store.create_schema()
        n = store.count("customers")
        cold, warm, cold_splits, warm_splits = [], [], [], []
        for i in range(repeats):
            # cold: no valid serving row (a new day before any refresh), every customer is
            # computed from the events and its row stored; warm: the same run again, every
            # row valid (after `tijdig features refresh` or an earlier run that day)
            store.purge_serving_rows(2**31 - 1)
            for times, splits, label in ((cold, cold_splits, "cold"), (warm, warm_splits, "warm")):
                started = time.perf_counter()
                report = score_batch(store, bundle, as_of, Path(tmp) / f"scores{i}{label}.parquet")
                times.append(time.perf_counter() - started)
                splits.append(report.seconds)
                flagged = report.flagged
        X = build_features(EventArrays.from_frames(store.read_frames()), as_of)
        store.dispose()
        booster = bundle.booster
        import os

        threads = os.cpu_count() or 1
        plain = []
        for _ in range(repeats):
            started = time.perf_counter()
            booster.predict(X, num_threads=threads)
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

    return {
        "name": "batch",
        "setup": (
            f"{n:,} simulated customers (24 months) in a SQLite store; `score_batch` with 100k-customer "
            f"partitions at as_of {as_of}, {repeats} repeats; plain `Booster.predict` ({threads} threads) on "
            "the same feature matrix, same run."
        ),
        "world": {k: v for k, v in built.items() if k != "metrics"},
        "customers": n,
        "flagged": flagged,
        "speed": {
            "score-batch, serving rows valid (warm)": speed(s_warm),
            "score-batch, no valid rows (cold: computed from events, rows stored)": speed(s_cold),
            "plain Booster.predict": speed(s_plain),
        },
        "ratio": s_plain["median"] / s_warm["median"],
        "ratio_cold": s_plain["median"] / s_cold["median"],
        "split": median_split(warm_splits),
        "split_cold": median_split(cold_splits),
        "peak_rss_mb": peak_rss_mb(),
        "notes": [],
    }

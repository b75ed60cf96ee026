"""Batch speed: ``score_batch`` (what ``tijdig score-batch`` runs) end to end, against a plain
``Booster.predict`` on the same feature matrix in the same run.

The store and the champion are built by :func:`benchmarks.online.prepare_world` (or reused).
Each figure is the median over repeats with the spread; the split says where end-to-end
time goes (store read, features, predict, reasons for flagged customers, Parquet write).
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
        n = store.count("customers")
        e2e, splits = [], []
        for i in range(repeats):
            started = time.perf_counter()
            report = score_batch(store, bundle, as_of, Path(tmp) / f"scores{i}.parquet")
            e2e.append(time.perf_counter() - started)
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
    s_e2e, s_plain = stats(e2e), stats(plain)
    per_s = lambda s: n / s  # noqa: E731
    median_split = {k: sorted(sp[k] for sp in splits)[len(splits) // 2] for k in splits[0]}
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
            "score-batch end to end": {
                "per_s": per_s(s_e2e["median"]),
                "range_per_s": per_s(s_e2e["min"]) - per_s(s_e2e["max"]),
                "seconds": s_e2e["median"],
            },
            "plain Booster.predict": {
                "per_s": per_s(s_plain["median"]),
                "range_per_s": per_s(s_plain["min"]) - per_s(s_plain["max"]),
                "seconds": s_plain["median"],
            },
        },
        "ratio": s_plain["median"] / s_e2e["median"],
        "split": median_split,
        "peak_rss_mb": peak_rss_mb(),
        "notes": [],
    }

"""Training and ingest scaling: simulate, ingest and train at growing sizes.

Each size runs in a fresh subprocess and reports wall times, events ingested per second,
peak memory and the out-of-time metrics of issue 2 (model, logistic regression,
second-reminder rule), so quality regressions on the simulator show per run. The growth
exponent is the slope of log(time) against log(customers): 1.0 is linear.

Peak memory is measured per step: ``build_peak_rss_mb`` for simulating and ingesting,
``train_peak_rss_mb`` for ``run_training`` alone (the simulation freed, the peak reset
in between through ``/proc/self/clear_refs``); ``peak_rss_mb`` is the larger. Up to
:data:`benchmarks.batch.CHUNK` customers the world is one simulation with its hidden
truth, as :func:`benchmarks.online.prepare_world` builds it; one simulation of more does
not fit in memory (3.9 GB at 100,000 customers), so larger stores are built from
independent 100,000-customer simulations (:func:`benchmarks.batch.build_chunked_store`),
without hidden truth and so without the oracle baseline.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.batch import CHUNK
from benchmarks.common import peak_rss_mb, run_child

_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.scaling import measure
print("RESULT" + json.dumps(measure(Path(sys.argv[1]), int(sys.argv[2])), default=float))
"""


#: What a chunk-built store's folder records of its build (see :func:`measure`).
BUILD_RECORD = "build.json"


def measure(directory: Path, customers: int, months: int = 24) -> dict[str, Any]:
    """Simulate, ingest and train ``customers`` into ``directory`` in this process.

    Above :data:`CHUNK` customers the store is chunk-built, and a folder that already
    holds one (with its :data:`BUILD_RECORD`) is reused: building 1,000,000 customers
    takes most of an hour, and the batch benchmark scores the same folder afterwards.
    """
    from benchmarks.batch import build_chunked_store
    from features.store import EventStore
    from training.pipeline import run_training
    from training.settings import TrainingSettings
    from training.simulator import SimulationConfig, simulate

    settings = TrainingSettings(data_dir=directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"customers": customers}
    truth_dir = None
    if customers <= CHUNK:
        started = time.perf_counter()
        result = simulate(SimulationConfig(n_customers=customers, months=months, seed=42))
        out["simulate_s"] = time.perf_counter() - started
        result.write(settings.simulation_dir)
        truth_dir = settings.simulation_dir
        store = EventStore(settings.store_url)
        try:
            store.create_schema()
            started = time.perf_counter()
            store.ingest(result.tables)
            out["ingest_s"] = time.perf_counter() - started
        finally:
            store.dispose()
        out["events"] = int(sum(len(df) for df in result.tables.values()))
        del result
        out["build_peak_rss_mb"] = _peak_since_reset()
    else:
        record = directory / BUILD_RECORD
        if record.is_file():  # built by an earlier run into this folder: reuse it
            built = json.loads(record.read_text())
            if built["customers"] != customers:
                raise ValueError(
                    f"{record} holds {built['customers']:,} customers, not {customers:,}"
                )
            out["reused_store"] = str(directory)
        else:
            built = build_chunked_store(settings.store_url, customers)
            built["peak_rss_mb"] = peak_rss_mb()
            record.write_text(json.dumps(built, indent=1) + "\n")
        for key in ("simulate_s", "ingest_s", "events"):
            out[key] = sum(c[key] for c in built["chunks"])
        out["build_peak_rss_mb"] = built["peak_rss_mb"]
        _peak_since_reset()
    started = time.perf_counter()
    trained = run_training(settings, truth_dir=truth_dir, force=True)
    out["train_s"] = time.perf_counter() - started
    out["train_peak_rss_mb"] = _peak_since_reset()
    out["peak_rss_mb"] = max(out["build_peak_rss_mb"], out["train_peak_rss_mb"])
    out["metrics"] = {
        k: v for k, v in trained.candidate.metrics.items() if isinstance(v, dict) and "roc_auc" in v
    }
    return out


def _peak_since_reset() -> float:
    """Peak resident memory (MB) since the previous call: ``VmHWM``, then reset it.

    Without a writable ``clear_refs`` (not Linux) the peak is the process's so far.
    """
    peak = peak_rss_mb()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def run(
    quick: bool = False,
    sizes: tuple[int, ...] = (10_000, 100_000),
    timeout_s: float | None = None,
    shared_world: dict[str, Any] | None = None,
    store_dir: Path | None = None,
) -> dict[str, Any]:
    """``timeout_s`` per size; by default an hour, or 20 ms per customer when longer
    (1,000,000 customers: 5.6 hours). ``store_dir``: the folder for sizes above
    :data:`CHUNK` (kept, and reused when it already holds that size); by default a
    temporary one."""
    if quick:
        sizes = (2_000,)
    rows: list[dict[str, Any]] = []
    quality: dict[str, Any] = {}
    notes: list[str] = []
    for n in sizes:
        limit = timeout_s or max(3600.0, 0.02 * n)
        with tempfile.TemporaryDirectory(prefix="tijdig-bench-scale-") as tmp:
            folder = store_dir if store_dir is not None and n > CHUNK else Path(tmp) / "w"
            try:
                r, stderr = run_child(_CHILD, str(folder), str(n), timeout_s=limit)
            except subprocess.TimeoutExpired:
                notes.append(f"{n:,} customers: stopped after {limit:.0f} s")
                continue
            if r is None:
                notes.append(f"{n:,} customers failed: {stderr[-400:]}")
                continue
        rows.append(
            {
                "customers": n,
                "simulate_s": r["simulate_s"],
                "ingest_s": r["ingest_s"],
                "events": r["events"],
                "events_per_s": r["events"] / r["ingest_s"],
                "train_s": r["train_s"],
                "peak_rss_mb": r["peak_rss_mb"],
                "build_peak_rss_mb": r["build_peak_rss_mb"],
                "train_peak_rss_mb": r["train_peak_rss_mb"],
            }
        )
        quality[f"{n:,}"] = r["metrics"]
        if n > CHUNK:
            notes.append(
                f"{n:,} customers: store built from independent {CHUNK:,}-customer simulations; "
                "no hidden truth, so no oracle baseline"
                + (
                    f"; the store was built by an earlier run ({r['reused_store']}) and reused"
                    if r.get("reused_store")
                    else ""
                )
            )
    if (
        shared_world
        and "customers" in shared_world
        and shared_world["customers"] not in {r["customers"] for r in rows}
    ):
        w = shared_world
        rows.append(
            {
                "customers": w["customers"],
                "simulate_s": w["simulate_s"],
                "ingest_s": w["ingest_s"],
                "events": w["events"],
                "events_per_s": w["events"] / w["ingest_s"],
                "train_s": w["train_s"],
                "peak_rss_mb": w.get("peak_rss_mb"),
            }
        )
        quality[f"{w['customers']:,}"] = {
            k: v for k, v in w.get("metrics", {}).items() if isinstance(v, dict) and "roc_auc" in v
        }
        notes.append(
            f"{w['customers']:,} customers: the shared world of the online/batch benchmarks "
            "(same run; its peak is the whole process's, the simulation held while training)"
        )
    rows.sort(key=lambda r: r["customers"])
    growth = {}
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        for key in ("simulate_s", "ingest_s", "train_s"):
            growth[key.removesuffix("_s")] = math.log(b[key] / a[key]) / math.log(
                b["customers"] / a["customers"]
            )
    return {
        "name": "scaling",
        "setup": "24 simulated months per customer; each size in its own process; train = snapshots + LightGBM + "
        "calibration + baselines + components + MLflow logging (`run_training`); peak MB = the larger of "
        "simulate + ingest and train, each measured on its own.",
        "sizes": rows,
        "growth": growth,
        "quality": quality,
        "notes": notes,
    }

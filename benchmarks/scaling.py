"""Training and ingest scaling: simulate, ingest and train at growing sizes.

Each size runs in a fresh subprocess and reports wall times, events ingested per second,
peak memory and the out-of-time metrics of issue 2 (model, logistic regression,
second-reminder rule), so quality regressions on the simulator show per run. The growth
exponent between consecutive sizes is log(time ratio) / log(size ratio): 1.0 is linear.
The simulator's time per customer-month (``simulate_us_per_customer_month``: population,
day loop and tables, per customer and simulated month) is recorded per size and noted
in the results, so a slower engine shows as such.
Training above 100,000 customers has no hidden truth and so fits no oracles; its growth is
also given for the work every size does (training without the two oracle fits), from the
per-stage seconds each size records.

A size this run does not measure (the 1,000,000-customer run takes most of two hours) is
carried over from the previous results when it was measured with the same feature set,
with the date it was measured, so a default ``make bench`` keeps it.

Peak memory is measured per step: ``build_peak_rss_mb`` for simulating and ingesting,
``train_peak_rss_mb`` for ``run_training`` alone (the simulation freed, the peak reset
in between through ``/proc/self/clear_refs``); ``peak_rss_mb`` is the larger. Up to
:data:`benchmarks.batch.CHUNK` customers the world is one simulation with its hidden
truth, as :func:`benchmarks.world.prepare_world` builds it; one simulation of more does
not fit in memory (3.9 GB at 100,000 customers), so larger stores are built from
independent 100,000-customer simulations (:func:`benchmarks.batch.build_chunked_store`),
without hidden truth and so without the oracle baseline.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.batch import CHUNK
from benchmarks.common import (
    ORACLE_STAGES,
    code_version,
    now_iso,
    peak_since_reset,
    run_child,
)

DEFAULT_MONTHS = 24  # simulated months per customer at every size

_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.scaling import measure
print("RESULT" + json.dumps(measure(Path(sys.argv[1]), int(sys.argv[2])), default=float))
"""


def measure(directory: Path, customers: int, months: int = DEFAULT_MONTHS) -> dict[str, Any]:
    """Simulate, ingest and train ``customers`` into ``directory`` in this process.

    Above :data:`CHUNK` customers the store is chunk-built, and a folder that already
    holds one (with its :data:`benchmarks.batch.BUILD_RECORD`) is reused: building 1,000,000 customers
    takes most of an hour, and the batch benchmark scores the same folder afterwards.
    """
    from benchmarks.batch import ensure_chunked_store
    from features.store import EventStore
    from training.pipeline import run_training
    from training.settings import TrainingSettings
    from training.simulation import SimulationConfig, simulate

    settings = TrainingSettings(data_dir=directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"customers": customers, "months": months}
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
        out["build_peak_rss_mb"] = peak_since_reset()
    else:
        built = ensure_chunked_store(directory, customers, in_process=True)
        if "reused_store" in built:  # built by an earlier run into this folder
            out["reused_store"] = built["reused_store"]
        for key in ("simulate_s", "ingest_s", "events"):
            out[key] = sum(c[key] for c in built["chunks"])
        out["build_peak_rss_mb"] = built["peak_rss_mb"]
        peak_since_reset()
    started = time.perf_counter()
    trained = run_training(settings, truth_dir=truth_dir, force=True)
    out["train_s"] = time.perf_counter() - started
    out["train_stages_s"] = trained.candidate.timings
    out["train_peak_rss_mb"] = peak_since_reset()
    out["peak_rss_mb"] = max(out["build_peak_rss_mb"], out["train_peak_rss_mb"])
    out["metrics"] = {
        k: v for k, v in trained.candidate.metrics.items() if isinstance(v, dict) and "roc_auc" in v
    }
    return out


def per_customer_month_us(row: dict[str, Any]) -> float:
    """Simulator microseconds per customer and simulated month of a size's row."""
    return 1e6 * row["simulate_s"] / (row["customers"] * row.get("months", DEFAULT_MONTHS))


def simulator_speed_note(rows: list[dict[str, Any]]) -> str:
    """One line: the simulator's time per customer-month and customer-months/s per size."""
    parts = [
        f"{r['customers']:,}: {per_customer_month_us(r):.1f} µs "
        f"({1e6 / per_customer_month_us(r):,.0f} customer-months/s)"
        for r in rows
    ]
    return "simulator time per customer-month (simulate s / customers / months): " + "; ".join(
        parts
    )


def growth_between(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Growth exponents between consecutive sizes (1.0 = linear in customers).

    ``train_without_oracles`` compares the work both sizes did: training minus the oracle
    fits, from ``train_stages_s`` (absent when either size lacks it).
    """
    out = []
    for a, b in itertools.pairwise(rows):
        size = math.log(b["customers"] / a["customers"])
        step: dict[str, Any] = {"from": a["customers"], "to": b["customers"]}
        for key in ("simulate_s", "ingest_s", "train_s"):
            step[key.removesuffix("_s")] = math.log(b[key] / a[key]) / size
        if "train_stages_s" in a and "train_stages_s" in b:
            common = [
                k
                for k in a["train_stages_s"]
                if k in b["train_stages_s"] and k not in ORACLE_STAGES
            ]
            ta = sum(a["train_stages_s"][k] for k in common)
            tb = sum(b["train_stages_s"][k] for k in common)
            step["train_without_oracles"] = math.log(tb / ta) / size
        elif "train_stages_s" in a and b["customers"] > CHUNK:
            # a chunk-built store fits no oracles (no hidden truth): its whole training is
            # the work without them, even when its run predates per-stage times
            ta = sum(v for k, v in a["train_stages_s"].items() if k not in ORACLE_STAGES)
            step["train_without_oracles"] = math.log(b["train_s"] / ta) / size
        out.append(step)
    return out


def carried_over(
    previous: dict[str, Any] | None, measured: set[int], feature_set: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (and their quality) of ``previous`` results for sizes not measured now, kept
    only when measured with ``feature_set``; each keeps the date it was measured."""
    if not previous:
        return [], {}
    rows, quality = [], {}
    for row in previous.get("sizes", []):
        n = row["customers"]
        if n in measured or row.get("feature_set") != feature_set:
            continue
        rows.append(
            {
                **row,
                "measured": row.get("measured", previous.get("date")),
                "measured_on": row.get(
                    "measured_on", previous.get("machine", {}).get("cpu", "unknown CPU")
                ),
                "commit": row.get("commit", previous.get("commit")),
            }
        )
        if f"{n:,}" in previous.get("quality", {}):
            quality[f"{n:,}"] = previous["quality"][f"{n:,}"]
    return rows, quality


def run(
    quick: bool = False,
    sizes: tuple[int, ...] = (10_000, 100_000),
    timeout_s: float | None = None,
    shared_world: dict[str, Any] | None = None,
    store_dir: Path | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``timeout_s`` per size; by default an hour, or 20 ms per customer when longer
    (1,000,000 customers: 5.6 hours). ``store_dir``: the folder for sizes above
    :data:`CHUNK` (kept, and reused when it already holds that size); by default a
    temporary one. ``previous``: the last results, whose other sizes are carried over
    (see :func:`carried_over`; not in a ``quick`` run)."""
    from features.build import FEATURE_SET_VERSION

    today = now_iso()
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
                "months": r["months"],
                "simulate_s": r["simulate_s"],
                "simulate_us_per_customer_month": per_customer_month_us(r),
                "ingest_s": r["ingest_s"],
                "events": r["events"],
                "events_per_s": r["events"] / r["ingest_s"],
                "train_s": r["train_s"],
                "peak_rss_mb": r["peak_rss_mb"],
                "build_peak_rss_mb": r["build_peak_rss_mb"],
                "train_peak_rss_mb": r["train_peak_rss_mb"],
                "train_stages_s": r["train_stages_s"],
                "feature_set": FEATURE_SET_VERSION,
                "measured": today,
                "commit": code_version(),
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
                "months": w.get("months", DEFAULT_MONTHS),
                "simulate_s": w["simulate_s"],
                "simulate_us_per_customer_month": per_customer_month_us(w),
                "ingest_s": w["ingest_s"],
                "events": w["events"],
                "events_per_s": w["events"] / w["ingest_s"],
                "train_s": w["train_s"],
                "peak_rss_mb": w.get("peak_rss_mb"),
                **({"train_stages_s": w["train_stages_s"]} if "train_stages_s" in w else {}),
                "feature_set": FEATURE_SET_VERSION,
                "measured": today,
                "commit": code_version(),
            }
        )
        quality[f"{w['customers']:,}"] = {
            k: v for k, v in w.get("metrics", {}).items() if isinstance(v, dict) and "roc_auc" in v
        }
        notes.append(
            f"{w['customers']:,} customers: the shared world of the online/batch benchmarks "
            "(same run; its peak is the whole process's, the simulation held while training)"
        )
    if not quick:
        kept, kept_quality = carried_over(
            previous, {r["customers"] for r in rows}, FEATURE_SET_VERSION
        )
        rows += kept
        quality.update(kept_quality)
        notes += [
            f"{r['customers']:,} customers: not measured in this run; carried over from the "
            f"run of {r['measured']} on {r['measured_on']} (same feature set, {FEATURE_SET_VERSION})"
            + (
                f"; store built from independent {CHUNK:,}-customer simulations, "
                "so no oracle baseline, and simulate grows linearly by construction (its "
                "exponent to this size measures the machine); code at commit "
                f"{r.get('commit') or 'not recorded'}, so ingest and train compare two "
                "versions of the code when the commits differ"
                if r["customers"] > CHUNK
                else ""
            )
            for r in kept
        ]
    rows.sort(key=lambda r: r["customers"])
    if rows:
        notes.append(simulator_speed_note(rows))
    return {
        "name": "scaling",
        "setup": "24 simulated months per customer; each size in its own process; train = snapshots + LightGBM + "
        "calibration + baselines + components + MLflow logging (`run_training`); peak MB = the larger of "
        "simulate + ingest and train, each measured on its own.",
        "sizes": rows,
        "growth": growth_between(rows),
        "quality": quality,
        "notes": notes,
    }

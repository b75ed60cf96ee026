"""Training that fits: peak memory and out-of-time ROC AUC of four ways to train the
risk model, per population size.

- ``in_process``: today's path: every event read into one :class:`EventArrays`, the
  snapshots built from it (:func:`training.dataset.build_snapshots`), LightGBM fitted.
- ``partitioned``: :mod:`training.partitioned`: one customer partition at a time, only
  the split's rows kept; the same rows and model as ``in_process`` (tested).
- ``sample``: partitioned, fitted on a customer-hash sample of ``sample_customers``;
  validated on every customer.
- ``dask``: partitioned on a ``LocalCluster`` of 2 workers, ``lightgbm.dask`` there.

Each variant runs in its own process, reading the same Parquet offline copy
(:mod:`features.offline`), and fits the risk model as ``tijdig train`` does (LightGBM
with early stopping on the calibration dates, Platt scaling), scored on the validation
dates. The baselines and components are left out here (they do not depend on the
variant, and at 1,000,000 customers they would triple each run); the full pipeline's
peak is measured by ``tijdig train --partitioned`` (see docs/scaling-training.md).
Peak memory is the process tree's (this process plus any Dask workers;
:class:`training.memory.PeakMemory`).

Worlds above 100,000 customers are built from independent 100,000-customer simulations
(seed 1000 + k, ids prefixed ``K{k:02d}-``, as :func:`benchmarks.batch.build_chunked_store`),
written straight to an offline copy; ``chunks`` names a folder of such simulations
already written as Parquet (``<k>/<table>.parquet``) to skip simulating.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.batch import CHUNK
from benchmarks.common import run_child

VARIANTS = ("in_process", "partitioned", "sample", "dask")
#: customers the ``sample`` variant fits on, per size (a quarter at 1,000,000)
SAMPLE_CUSTOMERS = {100_000: 50_000, 1_000_000: 250_000, 3_000_000: 250_000}

_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.training_scale import measure_variant
out = measure_variant(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
print("RESULT" + json.dumps(out, default=float))
"""


def ensure_offline_world(
    folder: Path, customers: int, chunks: Path | None = None
) -> dict[str, Any]:
    """An offline copy of ``customers`` in ``folder``, built once (``build.json`` records
    it) from simulations of at most :data:`CHUNK` customers (read from ``chunks`` when
    there, whole chunks only)."""
    from features.offline import write_offline
    from features.schemas import TABLES

    record = folder / "build.json"
    # a copy built by benchmarks.offline_batch (its record sits beside the folder, the
    # same simulations: seed 1000 + k, ids prefixed Kkk-) serves training as it is
    batch_record = folder.with_name(folder.name + ".json")
    if not record.is_file() and batch_record.is_file() and (folder / "_offline.json").is_file():
        batch = json.loads(batch_record.read_text())
        if batch["customers"] == customers:
            return {**batch, "reused": str(folder)}
    if record.is_file():
        built: dict[str, Any] = json.loads(record.read_text())
        if built["customers"] != customers:
            raise ValueError(f"{record} holds {built['customers']:,} customers, not {customers:,}")
        return built
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"customers": customers, "chunks": []}
    for k in range(-(-customers // CHUNK)):
        started = time.perf_counter()
        done = chunks / f"{k:02d}" / "done.json" if chunks is not None else None
        if done is not None and done.is_file():
            import pandas as pd

            tables = {t: pd.read_parquet(done.parent / f"{t}.parquet") for t in TABLES}
            origin = f"read from {done.parent}"
        else:
            from training.simulation import SimulationConfig, simulate

            size = min(CHUNK, customers - k * CHUNK)
            result = simulate(SimulationConfig(n_customers=size, months=24, seed=1000 + k))
            tables = {}
            for table, df in result.tables.items():
                df = df.copy()
                _, pk, _ = TABLES[table]
                for col in {pk, "customer_id", "invoice_id"} & set(df.columns):
                    df[col] = f"K{k:02d}-" + df[col].astype(str)
                tables[table] = df
            origin = "simulated"
        write_offline(tables, folder)
        out["chunks"].append({"origin": origin, "s": round(time.perf_counter() - started, 1)})
        del tables
    record.write_text(json.dumps(out, indent=1) + "\n")
    return out


def measure_variant(offline_dir: Path, variant: str, sample_customers: int) -> dict[str, Any]:
    """Build the training data and fit the risk model one ``variant`` way; peak memory,
    seconds per stage and the out-of-time metrics."""
    import numpy as np

    from features.events import EventArrays
    from features.labels import LabelConfig
    from features.offline import OfflineEvents
    from models.calibration import apply_platt
    from training.dataset import (
        build_snapshots,
        concat_events,
        monthly_as_of_dates,
        out_of_time_split,
    )
    from training.evaluate import binary_metrics
    from training.memory import PeakMemory
    from training.partitioned import build_partitioned, plan_snapshots
    from training.partitions import OfflinePartitions
    from training.train import DEFAULT_PARAMS, _fit_booster, fit_platt

    config = LabelConfig()
    stages: dict[str, float] = {}
    out: dict[str, Any] = {"variant": variant}
    with PeakMemory() as peak:
        started = time.perf_counter()
        fit = None
        if variant == "in_process":
            offline = OfflineEvents(offline_dir)
            events = concat_events(
                [EventArrays.from_frames(offline.read_bucket(b)) for b in offline.buckets]
            )
            stages["read events"] = time.perf_counter() - started
            snaps = build_snapshots(events, monthly_as_of_dates(events, config), config)
            out["customers"] = events.n
            del events
        else:
            source = OfflinePartitions(offline_dir)
            customers = source.customers()
            fraction = min(1.0, sample_customers / customers) if variant == "sample" else 1.0
            plan = plan_snapshots(source.day_bounds(), config, sample_fraction=fraction)
            plan = type(plan)(**{**plan.__dict__, "components": False})
            out.update(customers=customers, sample_fraction=fraction)
            if variant == "dask":
                from training.dask_training import build_on_cluster, dask_client

                client_cm = dask_client("local:2")
                client = client_cm.__enter__()
                data, fit, facts = build_on_cluster(client, source, plan)
                out["cluster"] = facts
            else:
                data = build_partitioned(source, plan)
                kept = [p["bytes"] for p in data.partitions]
                out["partitions"] = {
                    "count": len(kept),
                    "kept_mb_mean": float(np.mean(kept)) / 2**20,
                    "s_mean": float(np.mean([p["s"] for p in data.partitions])),
                    "customers_mean": float(np.mean([p["customers"] for p in data.partitions])),
                }
            snaps = data.snapshots
            del data
        stages["build snapshots"] = time.perf_counter() - started - stages.get("read events", 0)
        t0 = time.perf_counter()
        split = out_of_time_split(snaps, config.horizon_days)
        tr, ca, va = (snaps.subset(m) for m in (split.train, split.calibration, split.validation))
        booster = (fit or _fit_booster)(
            tr.X, tr.y, ca.X, ca.y, snaps.feature_names, dict(DEFAULT_PARAMS)
        )
        platt = fit_platt(np.asarray(booster.predict(ca.X)), ca.y)
        scores = apply_platt(np.asarray(booster.predict(va.X)), platt)
        stages["fit and calibrate"] = time.perf_counter() - t0
        if variant == "dask":
            client_cm.__exit__(None, None, None)
    out["peak"] = peak.as_metrics()
    out["stages_s"] = stages
    out["seconds"] = sum(stages.values())
    out["rows"] = {"train": len(tr), "calibration": len(ca), "validation": len(va)}
    out["best_iteration"] = booster.best_iteration
    m = binary_metrics(va.y, scores)
    out["metrics"] = {k: m[k] for k in ("roc_auc", "pr_auc", "brier", "ece", "base_rate", "rows")}
    return out


def growth(rows: list[dict[str, Any]], key: str) -> float | None:
    """log(ratio of ``key``) / log(ratio of customers) between the smallest and largest size."""
    rows = [r for r in rows if r.get(key)]
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    return math.log(b[key] / a[key]) / math.log(b["customers"] / a["customers"])


def run(
    sizes: tuple[int, ...] = (100_000, 1_000_000),
    variants: tuple[str, ...] = VARIANTS,
    store_dir: Path | None = None,
    chunks: Path | None = None,
    timeout_s: float = 4 * 3600,
    previous: dict[str, Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Every ``variant`` at every size, each in its own process; ``store_dir`` keeps the
    offline copies (``<store_dir>/offline-<n>``); ``previous`` results keep the variants
    not measured now; ``checkpoint`` hears the result so far after every variant."""
    import tempfile

    from benchmarks.common import code_version, now_iso

    base = store_dir or Path(tempfile.mkdtemp(prefix="tijdig-bench-trainscale-"))
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    for n in sizes:
        folder = base / f"offline-{n}"
        built = ensure_offline_world(folder, n, chunks)
        for variant in variants:
            try:
                r, stderr = run_child(
                    _CHILD,
                    str(folder),
                    variant,
                    str(SAMPLE_CUSTOMERS.get(n, n // 4)),
                    timeout_s=timeout_s,
                )
            except subprocess.TimeoutExpired:
                notes.append(f"{n:,} {variant}: stopped after {timeout_s:.0f} s")
                continue
            if r is None:
                notes.append(f"{n:,} {variant} failed: {stderr[-400:]}")
                continue
            r.update(size=n, measured=now_iso(), commit=code_version(), world=built["chunks"][:1])
            results.append(r)
            print(f"   {n:,} {variant}: {r['peak']} AUC {r['metrics']['roc_auc']:.4f}", flush=True)
            if checkpoint:  # a run of hours keeps what it measured if stopped
                checkpoint(_result(results, notes, previous))
    return _result(results, notes, previous)


def _result(
    measured: list[dict[str, Any]], notes: list[str], previous: dict[str, Any] | None
) -> dict[str, Any]:
    """The result document: runs measured now, plus ``previous`` runs not measured now."""
    results = list(measured)
    done = {(r["size"], r["variant"]) for r in results}
    for old in (previous or {}).get("runs", []):
        if (old["size"], old["variant"]) not in done:
            results.append({**old, "carried_over": True})
    results.sort(key=lambda r: (r["size"], VARIANTS.index(r["variant"])))
    return {
        "name": "training_scale",
        "setup": "risk model only (snapshots + LightGBM with early stopping + Platt), read from "
        "a Parquet offline copy; each variant in its own process; peak = process tree incl. "
        "Dask workers",
        "runs": results,
        "summary": summarise(results),
        "notes": notes,
    }


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: peak MB and ROC AUC per size, AUC minus the full-data fit's at the same
    size (in_process; where it was not run, partitioned, which fits the same rows to the
    same model, tested), and growth exponents (seconds, peak) from the smallest to the
    largest size."""
    out: dict[str, Any] = {}
    base = {r["size"]: r["metrics"]["roc_auc"] for r in results if r["variant"] == "partitioned"}
    base.update(
        {r["size"]: r["metrics"]["roc_auc"] for r in results if r["variant"] == "in_process"}
    )
    for variant in VARIANTS:
        rows = [
            {
                "customers": r["size"],
                "seconds": r["seconds"],
                "peak_mb": r["peak"]["peak_tree_rss_mb"],
                "roc_auc": r["metrics"]["roc_auc"],
                "auc_minus_in_process": (
                    r["metrics"]["roc_auc"] - base[r["size"]] if r["size"] in base else None
                ),
            }
            for r in results
            if r["variant"] == variant
        ]
        if rows:
            out[variant] = {
                "sizes": rows,
                "growth_seconds": growth(rows, "seconds"),
                "growth_peak": growth(rows, "peak_mb"),
            }
    return out

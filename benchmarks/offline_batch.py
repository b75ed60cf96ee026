"""Cold batch scoring from the offline copy (issue 24): customers/s at growing sizes.

What is measured, per size: ``score_batch(source=OfflineEvents)`` — every customer computed
from their events read from Parquet (no serving rows), probability, band and flag — once
without reasons (``--no-reasons``: reasons on first request) and once with reasons for
the flagged (SHAP in the same pass); in this process and on a ``--dask local:N`` cluster.
On the shared world (the model's, 20,000 customers, already in SQLite) the SQLite path
(``score_batch`` on the event store, serving rows off: the same cold work) and the offline
path are measured in the same run on the same events after ``sync_offline`` (timed), and
the two files compared (identical scores). The cost of reasons on first request is the
online path for one flagged customer: read its events from the store, features, predict,
SHAP.

How the copies are built: independent 100,000-customer simulations (seeds 1000 + k, ids
prefixed ``Kkk-``, as :func:`benchmarks.batch.build_chunked_store`) written straight
into the offline copy with :func:`features.offline.write_offline` — no SQLite ingest
(1,000,000 customers took 1,450 s to ingest). ``max_chunks`` caps how many distinct
chunks are simulated; a larger size then writes the same chunks again under new id
prefixes (``Rr-``), which the result records (``distinct_customers``): the work per
customer is the same, the histories repeat.

The machine is shared: besides wall time each run records the CPU seconds of the
processes that scored (this one, or the Dask workers), so customers per CPU-second can
be read even when other work took cores. The growth exponent between sizes is
log(time ratio) / log(size ratio) (1.0 = linear).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.common import peak_since_reset
from features.offline import OfflineEvents

CHUNK = 100_000
#: Customers per bucket, the same at every size (so sizes compare like with like).
BUCKET_CUSTOMERS = 12_500


def ensure_chunk(folder: Path, k: int) -> dict[str, Any]:
    """The event tables of simulation chunk ``k`` in ``folder/kk`` (simulated once)."""
    from features.schemas import TABLES
    from training.simulation import SimulationConfig, simulate

    d = folder / f"{k:02d}"
    record = d / "done.json"
    if record.is_file():
        return dict(json.loads(record.read_text()))
    started = time.perf_counter()
    result = simulate(SimulationConfig(n_customers=CHUNK, months=24, seed=1000 + k))
    seconds = time.perf_counter() - started
    d.mkdir(parents=True, exist_ok=True)
    for table, df in result.tables.items():
        df = df.copy()
        _, pk, _ = TABLES[table]
        for col in {pk, "customer_id", "invoice_id"} & set(df.columns):
            df[col] = f"K{k:02d}-" + df[col].astype(str)
        df.to_parquet(d / f"{table}.parquet", index=False)
    done = {
        "simulate_s": seconds,
        "events": int(sum(len(x) for x in result.tables.values())),
        "end": str(result.config.period()[1]),
    }
    record.write_text(json.dumps(done))
    return done


def _chunk_tables(folder: Path, k: int, prefix: str = "") -> dict[str, Any]:
    import pandas as pd

    from features.schemas import TABLES

    tables = {}
    for table in TABLES:
        df = pd.read_parquet(folder / f"{k:02d}" / f"{table}.parquet")
        if prefix:
            _, pk, _ = TABLES[table]
            for col in {pk, "customer_id", "invoice_id"} & set(df.columns):
                df[col] = prefix + df[col].astype(str)
        tables[table] = df
    return tables


def ensure_offline_copy(folder: Path, customers: int, max_chunks: int) -> dict[str, Any]:
    """An offline copy of ``customers`` in ``folder/offline-<customers>`` (reused when its
    record says so), written chunk by chunk from the simulations."""
    from features.offline import compact_offline, write_offline

    root = folder / f"offline-{customers}"
    record = root.with_name(root.name + ".json")
    if record.is_file() and (root / "_offline.json").is_file():
        kept: dict[str, Any] = json.loads(record.read_text())
        if "compact_s" not in kept:  # written before copies were compacted
            started = time.perf_counter()
            compact_offline(root)
            kept["compact_s"] = round(time.perf_counter() - started, 1)
            record.write_text(json.dumps(kept, indent=1))
        return {**kept, "reused": str(root)}
    shutil.rmtree(root, ignore_errors=True)
    buckets = max(1, customers // BUCKET_CUSTOMERS)
    built: dict[str, Any] = {"customers": customers, "buckets": buckets, "chunks": []}
    for i in range(math.ceil(customers / CHUNK)):
        k, repeat = i % max_chunks, i // max_chunks
        sim = ensure_chunk(folder / "chunks", k)
        tables = _chunk_tables(folder / "chunks", k, f"R{repeat}-" if repeat else "")
        if customers < CHUNK:  # a smoke run: the chunk's first customers
            keep = set(tables["customers"]["customer_id"].iloc[:customers])
            tables = {t: df[df["customer_id"].isin(keep)] for t, df in tables.items()}
        started, cpu_started = time.perf_counter(), time.process_time()
        written = write_offline(tables, root, buckets)
        built["chunks"].append(
            {
                "chunk": k,
                "repeat": repeat,
                "simulate_s": round(sim["simulate_s"], 1),
                "write_offline_s": round(time.perf_counter() - started, 1),
                # the machine is shared: CPU seconds give the write's growth, not wall
                "write_offline_cpu_s": round(time.process_time() - cpu_started, 1),
                "events": int(sum(written.values())),
            }
        )
        built["end"] = sim["end"]
        print(f"   offline {customers:,}: chunk {k} (repeat {repeat}) written", flush=True)
    built["distinct_customers"] = min(customers, max_chunks * CHUNK)
    built["events"] = sum(c["events"] for c in built["chunks"])
    built["write_offline_s"] = round(sum(c["write_offline_s"] for c in built["chunks"]), 1)
    built["write_offline_cpu_s"] = round(sum(c["write_offline_cpu_s"] for c in built["chunks"]), 1)
    started, cpu_started = time.perf_counter(), time.process_time()
    compact_offline(root)  # one file per bucket, as `tijdig offline sync` leaves it
    built["compact_s"] = round(time.perf_counter() - started, 1)
    built["compact_cpu_s"] = round(time.process_time() - cpu_started, 1)
    record.write_text(json.dumps(built, indent=1))
    return built


def _cpu_seconds(client: Any = None) -> float:
    """CPU seconds so far of this process (user + system, all threads), or of the Dask
    workers of ``client``."""
    if client is None:
        t = os.times()
        return t.user + t.system

    def worker_cpu() -> float:
        import psutil

        c = psutil.Process().cpu_times()
        return float(c.user + c.system)

    return float(sum(client.run(worker_cpu).values()))


def score_once(
    root: Path,
    bundle: Any,
    as_of: date,
    out: Path,
    *,
    reasons: bool,
    cluster: Any = None,
) -> dict[str, Any]:
    """One cold batch from the copy at ``root``: wall and CPU seconds, customers/s, the
    split per step (summed over buckets, CPU time of the tasks)."""
    from features.offline import OfflineEvents
    from training.batch_scoring import score_batch

    source = OfflineEvents(root)
    cpu0 = _cpu_seconds(cluster.client if cluster else None)
    started = time.perf_counter()
    report = score_batch(
        None,
        bundle,
        as_of,
        out,
        source=source,
        reasons=reasons,
        executor=cluster.executor if cluster else None,
        workers=cluster.workers if cluster else 1,
        threads=1 if cluster else None,
    )
    wall = time.perf_counter() - started
    cpu = _cpu_seconds(cluster.client if cluster else None) - cpu0
    return {
        "customers": report.customers,
        "flagged": report.flagged,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "customers_per_s": round(report.customers / wall),
        "customers_per_cpu_s": round(report.customers / max(cpu, 1e-9)),
        "split_s": {k: round(v, 2) for k, v in report.seconds.items()},
    }


def _sqlite_comparison(world: Path, folder: Path, bundle: Any, tmp: Path) -> dict[str, Any]:
    """The shared world's SQLite store: its offline copy synchronised (timed), both scored
    cold in this process, the files compared; plus reasons on first request (the online
    path for one flagged customer at a time, read from the store)."""
    import pandas as pd

    from benchmarks.world import world_as_of
    from features.offline import sync_offline
    from features.store import EventStore
    from models.serving import ServingRows
    from training.batch_scoring import score_batch
    from training.settings import TrainingSettings

    settings = TrainingSettings(data_dir=world)
    as_of = world_as_of(settings.store_url)
    store = EventStore(settings.store_url)
    root = folder / "offline-world"
    try:
        n = store.count("customers")
        out: dict[str, Any] = {"customers": n, "as_of": str(as_of)}
        started = time.perf_counter()
        sync_offline(store, root, buckets=max(1, n // BUCKET_CUSTOMERS))
        out["sync_s"] = round(time.perf_counter() - started, 2)
        for name, kwargs in (
            ("sqlite", {"serving_rows": False}),
            ("offline", {"source": OfflineEvents(root)}),
        ):
            cpu0 = _cpu_seconds()
            started = time.perf_counter()
            report = score_batch(
                None if name == "offline" else store,
                bundle,
                as_of,
                tmp / f"{name}.parquet",
                **kwargs,
            )
            wall = time.perf_counter() - started
            cpu = _cpu_seconds() - cpu0
            out[name] = {
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "customers_per_s": round(report.customers / wall),
                "customers_per_cpu_s": round(report.customers / max(cpu, 1e-9)),
                "flagged": report.flagged,
                "split_s": {k: round(v, 2) for k, v in report.seconds.items()},
            }
        a = pd.read_parquet(tmp / "sqlite.parquet").sort_values("customer_id", ignore_index=True)
        b = pd.read_parquet(tmp / "offline.parquet").sort_values("customer_id", ignore_index=True)
        out["identical"] = bool(a.equals(b))
        flagged = b.loc[b["early_warning"], "customer_id"].tolist()[:200]
        serving = ServingRows(store, enabled=False)
        started = time.perf_counter()
        for cid in flagged:
            serving.state(bundle, [cid], as_of).reasons(bundle, [0])
        per = (time.perf_counter() - started) / max(len(flagged), 1)
        out["reasons_on_request_ms"] = round(1000 * per, 2)
        out["reasons_on_request_sample"] = len(flagged)
    finally:
        store.dispose()
    return out


def run(
    folder: Path,
    model_world: Path,
    sizes: tuple[int, ...] = (100_000, 1_000_000),
    dask: str | None = "local:2",
    max_chunks: int = 10,
    sqlite: bool = True,
    dask_reasons_max: int = 100_000,
    reasons: bool = True,
) -> dict[str, Any]:
    """Build (or reuse) the copies in ``folder``, score each size; ``model_world``: a data
    folder with a champion (e.g. the shared world). On Dask the pass with reasons runs
    up to ``dask_reasons_max`` customers (the machine's time; in-process measures both
    at every size)."""
    import tempfile

    from models.bundle import load_bundle
    from training.settings import TrainingSettings

    folder.mkdir(parents=True, exist_ok=True)
    settings = TrainingSettings(data_dir=model_world)
    bundle = load_bundle("models:/tijdig-risk@champion", settings.mlflow_tracking_uri)
    result: dict[str, Any] = {
        # flags only: a run of its own, beside the full one
        "name": "offline_batch" if reasons else "offline_batch_flags",
        "model": {"world": str(model_world), "version": bundle.version},
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="tijdig-bench-offline-", dir=folder) as tmp_s:
        tmp = Path(tmp_s)
        for n in sizes:
            built = ensure_offline_copy(folder, n, max_chunks)
            as_of = date.fromisoformat(built["end"])
            root = folder / f"offline-{n}"
            peak_since_reset()
            row: dict[str, Any] = {"customers": n, "as_of": str(as_of), "build": built}
            row["in_process"] = score_once(root, bundle, as_of, tmp / "a.parquet", reasons=False)
            if reasons:
                row["in_process_reasons"] = score_once(
                    root, bundle, as_of, tmp / "b.parquet", reasons=True
                )
            row["peak_rss_mb"] = peak_since_reset()
            if dask:
                from training.cluster import dask_executor

                started = time.perf_counter()
                with dask_executor(dask) as cluster:
                    # Start-up and the workers' first imports, once per cluster: not per batch.
                    cluster.client.run(_warm_up)
                    row["dask"] = {
                        "spec": dask,
                        "workers": cluster.workers,
                        "start_and_warm_up_s": round(time.perf_counter() - started, 1),
                    }
                    row["dask"]["no_reasons"] = score_once(
                        root, bundle, as_of, tmp / "c.parquet", reasons=False, cluster=cluster
                    )
                    if (
                        reasons and n <= dask_reasons_max
                    ):  # time: reasons are measured in-process above
                        row["dask"]["reasons"] = score_once(
                            root, bundle, as_of, tmp / "d.parquet", reasons=True, cluster=cluster
                        )
            print(f"   offline {n:,}: {json.dumps(row['in_process'])}", flush=True)
            result["sizes"].append(row)
        if sqlite and reasons:
            result["sqlite_vs_offline"] = _sqlite_comparison(model_world, folder, bundle, tmp)
    result["growth"] = _growth(result["sizes"])
    return result


def _warm_up() -> None:
    """What a scoring task imports, imported on a Dask worker before it is timed."""
    import training.batch_scoring  # noqa: F401


def _growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a, b in itertools.pairwise(rows):
        size = math.log(b["customers"] / a["customers"])
        step: dict[str, Any] = {"from": a["customers"], "to": b["customers"]}
        for key in ("in_process", "in_process_reasons"):
            if key not in a or key not in b:
                continue
            step[f"{key}_wall"] = round(math.log(b[key]["wall_s"] / a[key]["wall_s"]) / size, 3)
            step[f"{key}_cpu"] = round(math.log(b[key]["cpu_s"] / a[key]["cpu_s"]) / size, 3)
        if "dask" in a and "dask" in b:
            wa, wb = a["dask"]["no_reasons"]["wall_s"], b["dask"]["no_reasons"]["wall_s"]
            step["dask_wall"] = round(math.log(wb / wa) / size, 3)
        out.append(step)
    return out


def per_bucket_costs(row: dict[str, Any]) -> dict[str, float]:
    """Seconds per 1,000 customers of each step (the 10M estimate's inputs)."""
    split = row.get("in_process_reasons", row["in_process"])["split_s"]
    return {k: round(1000 * v / row["customers"], 4) for k, v in split.items()}


__all__ = ["ensure_chunk", "ensure_offline_copy", "per_bucket_costs", "run", "score_once"]

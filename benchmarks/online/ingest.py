"""Score latency while a bulk event batch is ingested (issue 26): ``POST /v1/risk/scores``
under load, quiet and while a ~60 MB ``POST /v1/events`` batch is being ingested, on one
server per ingest pool size (``TIJDIG_INGEST_WORKERS`` 0 and 1), all in the same run.

    python -m benchmarks.online.ingest [--world DIR] [--quick] [--batch-mb 60]

Setup: the world's store (serving rows refreshed) is copied to a temporary folder, so the
batches ingested here leave the world as it was; both servers (uvicorn, ``WORKERS``
workers, 127.0.0.1) serve that copy. The batch is the simulator's output for 500 customers
(24 months, all eight tables) repeated under distinct ids until it reaches the size, so
every batch inserts every row (accepted, all new). Each round loads every server in turn:
``quiet`` (score load alone, ``quiet_s``) then ``ingest`` (score load from the moment the
upload starts until the batch is answered, at most ``cap_s``). The score load is the
online benchmark's generator (16 keep-alive connections, closed loop). The ratios compare
each server's score p99 and throughput during the ingest to its own quiet phases.

The uvicorn workers' resident memory is read after each phase (the ingest processes are
not counted: they end after their batch).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, free_port, measured_on
from benchmarks.online.load import CONCURRENCY, generate_load, request_bodies
from benchmarks.online.servers import WORKERS, _start, _stop

ROUNDS = 2
POOL_SIZES = (0, 1)
#: The placeholder before every id of the template batch (replaced per copy).
_MARK = "@@ID@@"


def batch_template(customers: int = 500, seed: int = 7) -> dict[str, tuple[str, int]]:
    """Per table, the simulator's rows as JSON objects joined by commas (and how many),
    every ``*_id`` value starting with a placeholder that :func:`event_batch` replaces."""
    import pandas as pd

    from training.simulation import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_customers=customers, months=24, seed=seed)).tables
    out = {}
    for table, df in tables.items():
        df = df.copy()
        for column in df.columns:
            if column.endswith("_id"):
                df[column] = _MARK + df[column].astype(str)
            elif pd.api.types.is_datetime64_any_dtype(df[column]):
                df[column] = df[column].dt.strftime("%Y-%m-%d")
        rows = json.loads(df.to_json(orient="records"))  # NaN/NA -> null, Int64 -> int
        out[table] = (",".join(json.dumps(r, separators=(",", ":")) for r in rows), len(rows))
    return out


def event_batch(template: dict[str, tuple[str, int]], copies: int, prefix: str) -> bytes:
    """``copies`` copies of the template under ids ``<prefix><copy>-<id>``: one JSON body."""
    parts = []
    for table, (text, _rows) in template.items():
        joined = ",".join(text.replace(_MARK, f"{prefix}{c}-") for c in range(copies))
        parts.append(f'"{table}":[{joined}]')
    return ("{" + ",".join(parts) + "}").encode()


def _copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (WAL included), via SQLite's backup."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


class Upload(threading.Thread):
    """One ``POST /v1/events`` in a thread of its own; ``done`` is set when it is answered."""

    def __init__(self, port: int, body: bytes, timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.body, self.timeout_s = port, body, timeout_s
        self.done = threading.Event()
        self.status: int | None = None
        self.answer: dict[str, Any] | str | None = None
        self.seconds: float | None = None

    def run(self) -> None:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
            conn.request(
                "POST",
                "/v1/events",
                body=self.body,
                headers={"Content-Type": "application/json", "X-API-Key": "dev-key"},
            )
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            self.status = response.status
            try:
                doc = json.loads(text)
                self.answer = {k: v for k, v in doc.items() if k != "tables"}
            except ValueError:
                self.answer = text[:500]
            conn.close()
        except Exception as exc:  # the result says what went wrong
            self.answer = f"{type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.perf_counter() - started
            self.done.set()


def _workers_rss_mb(supervisor: int) -> list[float]:
    """Resident memory of each uvicorn worker (the supervisor's children), MB."""
    out = []
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    for pid in children:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        out.append(round(kb / 1024, 1))
    return out


def _summary(load: dict[str, Any]) -> dict[str, Any]:
    load = dict(load)
    load.pop("latencies_ms")
    load.pop("error_samples", None)
    return load


def run(
    world: Path | None = None,
    quick: bool = False,
    batch_mb: float = 60.0,
    pool_sizes: tuple[int, ...] = POOL_SIZES,
    rounds: int | None = None,
) -> dict[str, Any]:
    """The result document (``results/online_ingest.json``); see the module doc."""
    from benchmarks.world import prepare_world, refresh_rows, world_as_of
    from features.store import EventStore
    from service.settings import ServiceSettings

    rounds = rounds or (1 if quick else ROUNDS)
    quiet_s = 5.0 if quick else 10.0
    cap_s = 300.0
    if quick:
        batch_mb = min(batch_mb, 10.0)
    with tempfile.TemporaryDirectory(prefix="tijdig-bench-ingest-") as tmp:
        if world is None:
            world = Path(tmp) / "world"
            prepare_world(world, customers=5_000)
        world_settings = ServiceSettings(data_dir=world)
        as_of = world_as_of(world_settings.store_url)
        refresh = refresh_rows(world, as_of)
        data = Path(tmp) / "served"
        data.mkdir()
        _copy_store(world / "events.db", data / "events.db")
        store = EventStore(f"sqlite:///{data / 'events.db'}")
        ids = store.customer_ids()
        store.dispose()
        score_bodies = request_bodies(random.Random(1).sample(ids, len(ids)), as_of)["score"]

        started = time.perf_counter()
        template = batch_template()
        one_copy = len(event_batch(template, 1, "x0"))
        copies = max(1, math.ceil(batch_mb * 1e6 / one_copy))
        n_batches = rounds * len(pool_sizes)
        batches = [event_batch(template, copies, f"I{i}c") for i in range(n_batches)]
        batch_build_s = time.perf_counter() - started
        batch_rows = sum(n for _text, n in template.values())
        del template

        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
            "TIJDIG_DATA_DIR": str(data),
            "TIJDIG_STORE_URL": f"sqlite:///{data / 'events.db'}",
            "TIJDIG_MLFLOW_TRACKING_URI": world_settings.mlflow_tracking_uri,
            "TIJDIG_DEFAULT_AS_OF": as_of.isoformat(),
            "TIJDIG_SERVING_ROWS": "true",
            "TIJDIG_MAX_INGEST_BYTES": str(max(len(b) for b in batches) + 1024),
            "TIJDIG_MAX_INGEST_ROWS": "5000000",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        servers: dict[int, tuple[Any, int]] = {}
        phases: list[dict[str, Any]] = []
        headers = {"Content-Type": "application/json", "X-API-Key": "dev-key"}
        try:
            for size in pool_sizes:
                port = free_port()
                cmd = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1"]
                cmd += ["--port", str(port), "--workers", str(WORKERS)]
                senv = {**env, "TIJDIG_INGEST_WORKERS": str(size)}
                # a shared, busy machine: the model parse and imports can take minutes
                ready = f"http://127.0.0.1:{port}/readyz"
                servers[size] = (_start(cmd, senv, ready, ready_timeout_s=600), port)
            for _proc, port in servers.values():  # warm-up
                url = f"http://127.0.0.1:{port}/v1/risk/scores"
                asyncio.run(generate_load(url, score_bodies, headers, 3.0))
            next_batch = 0
            for r in range(rounds):
                for size, (proc, port) in servers.items():
                    url = f"http://127.0.0.1:{port}/v1/risk/scores"
                    quiet = asyncio.run(
                        generate_load(url, score_bodies, headers, quiet_s, proc.pid)
                    )
                    phases.append(
                        {
                            "round": r + 1,
                            "pool": size,
                            "phase": "quiet",
                            **_summary(quiet),
                            "workers_rss_mb": _workers_rss_mb(proc.pid),
                        }
                    )
                    upload = Upload(port, batches[next_batch], cap_s + 60)
                    batches[next_batch] = b""  # let go of it once sent
                    next_batch += 1
                    upload.start()
                    busy = asyncio.run(
                        generate_load(url, score_bodies, headers, cap_s, proc.pid, stop=upload.done)
                    )
                    upload.join(timeout=cap_s + 60)
                    phases.append(
                        {
                            "round": r + 1,
                            "pool": size,
                            "phase": "ingest",
                            **_summary(busy),
                            "workers_rss_mb": _workers_rss_mb(proc.pid),
                            "upload": {
                                "status": upload.status,
                                "seconds": upload.seconds,
                                "answer": upload.answer,
                            },
                        }
                    )
                    print(
                        f"   pool {size} round {r + 1}: quiet p99 {quiet['p99_ms']:.1f} ms "
                        f"{quiet['rps']:,.0f}/s; ingest p99 {busy['p99_ms']:.1f} ms "
                        f"{busy['rps']:,.0f}/s, batch {upload.status} in {upload.seconds:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            for proc, _port in servers.values():
                _stop(proc)
            tails = {}
            for size, (proc, _port) in servers.items():
                log_path = Path(proc.log_path)
                tails[str(size)] = log_path.read_text(errors="replace")[-2000:]
                log_path.unlink(missing_ok=True)
        shutil.rmtree(data, ignore_errors=True)
    failed = [
        p
        for p in phases
        if p["errors"] or (p["phase"] == "ingest" and p["upload"]["status"] != 200)
    ]
    return {
        "name": "online_ingest",
        "setup": (
            f"score load ({CONCURRENCY} keep-alive connections, closed loop) on tijdig with "
            f"{WORKERS} uvicorn workers on 127.0.0.1, serving rows refreshed, on a copy of a "
            f"{len(ids):,}-customer world (as_of {as_of}); per round and server: {quiet_s:.0f} s "
            f"quiet, then the same load while one {copies * one_copy / 1e6:.0f} MB "
            f"POST /v1/events batch ({copies} copies of 500 simulated customers, about "
            f"{copies * batch_rows:,} rows, all new) is uploaded and ingested; {rounds} "
            f"round(s), servers in turn; ingest pool sizes {list(pool_sizes)}; the load "
            "generator shares the 2 cores with the servers."
        ),
        "batch_bytes": copies * one_copy,
        "batch_rows": copies * batch_rows,
        "batch_build_s": round(batch_build_s, 1),
        "refresh": refresh,
        "phases": phases,
        "ratios": ratios(phases),
        **({"server_stderr_tails": tails} if failed else {}),
    }


def ratios(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pool size and round: score p99 and throughput during the ingest over the quiet
    phase just before it (same server, same round), and their medians over the rounds."""
    out: dict[str, Any] = {}
    for size in sorted({p["pool"] for p in phases}):
        by_round = []
        for r in sorted({p["round"] for p in phases}):
            quiet = next(
                p for p in phases if (p["pool"], p["round"], p["phase"]) == (size, r, "quiet")
            )
            busy = next(
                p for p in phases if (p["pool"], p["round"], p["phase"]) == (size, r, "ingest")
            )
            by_round.append(
                {
                    "round": r,
                    "p99_ratio": busy["p99_ms"] / quiet["p99_ms"],
                    "rps_ratio": busy["rps"] / quiet["rps"],
                    "max_ms_ingest": busy["max_ms"],
                }
            )
        out[str(size)] = {
            "rounds": by_round,
            "p99_ratio_median": float(np.median([x["p99_ratio"] for x in by_round])),
            "rps_ratio_median": float(np.median([x["rps_ratio"] for x in by_round])),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.online.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--world",
        type=Path,
        help="a prepared data folder (benchmarks.world); its store is copied, not changed",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one round, a 10 MB batch: a smoke run"
    )
    parser.add_argument("--batch-mb", type=float, default=60.0)
    parser.add_argument("--pool-sizes", default=",".join(map(str, POOL_SIZES)))
    parser.add_argument("--rounds", type=int, default=None, help=f"default {ROUNDS} (--quick: 1)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(
        world=args.world.resolve() if args.world else None,
        quick=args.quick,
        batch_mb=args.batch_mb,
        pool_sizes=tuple(int(x) for x in args.pool_sizes.split(",")),
        rounds=args.rounds,
    )
    result["wall_s"] = round(time.perf_counter() - started, 1)
    path = common.write_result(result)
    print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(result["ratios"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def results_section(r: dict[str, Any]) -> list[str]:
    """The RESULTS.md section of ``results/online_ingest.json``."""
    lines = [
        "## Online: scoring while a bulk event batch is ingested",
        "",
        f"Measured {r['date']}{measured_on(r)}. {r['setup']}",
        "",
        "| pool | round | phase | score requests/s | p50 ms | p99 ms | max ms | errors "
        "| batch | workers' RSS MB after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in r["phases"]:
        upload = p.get("upload")
        batch = f"{upload['status']} in {upload['seconds']:.1f} s" if upload is not None else "—"
        lines.append(
            f"| {p['pool']} | {p['round']} | {p['phase']} | {p['rps']:,.0f} | {p['p50_ms']:.2f} "
            f"| {p['p99_ms']:.1f} | {p['max_ms']:.0f} | {p['errors']} | {batch} "
            f"| {' / '.join(f'{x:,.0f}' for x in p.get('workers_rss_mb') or [])} |"
        )
    lines += ["", "During the ingest against quiet, same server and round (median of rounds):", ""]
    for size, v in r["ratios"].items():
        by_round = ", ".join(f"{x['p99_ratio']:.2f} / {x['rps_ratio']:.2f}" for x in v["rounds"])
        lines.append(
            f"- ingest pool {size}: score p99 × **{v['p99_ratio_median']:.2f}**, throughput "
            f"× **{v['rps_ratio_median']:.2f}** (by round, p99 / throughput: {by_round})"
        )
    lines.append("")
    return lines

"""The servers under load: the bare FastAPI endpoint and tijdig (serving rows on, and off)
started under uvicorn with ``WORKERS`` workers on 127.0.0.1, each loaded by the
:mod:`benchmarks.online.load` generator in interleaved rounds.

Both kinds of server start the same way (:func:`service.server.run_uvicorn`: one listening
socket per worker), so the bare endpoint is a fair baseline measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, free_port
from benchmarks.online.load import BNPL_PATH, generate_load, request_bodies

WORKERS = 2
#: Each endpoint's load is taken in this many slices, in turn with the others.
ROUNDS = 3


def _wait_ready(url: str, timeout_s: float = 90.0, confirmations: int = 20) -> None:
    """Wait for ``url`` to answer 200, then ask ``confirmations`` more times on fresh
    connections, which the kernel hands to any of the workers: a worker that came up
    broken (it once started without its decision log) fails the run here, instead of
    answering part of the load with 503s."""
    import httpx2

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                break
        except httpx2.HTTPError:
            pass
        time.sleep(0.3)
    else:
        raise RuntimeError(f"server at {url} not ready after {timeout_s} s")
    for _ in range(confirmations):
        answer = httpx2.get(url, timeout=5.0)
        if answer.status_code != 200:
            raise RuntimeError(f"a worker behind {url} is not ready: {answer.text[:500]}")


def _start(
    cmd: list[str], env: dict[str, str], ready_url: str, ready_timeout_s: float = 90.0
) -> subprocess.Popen[bytes]:
    # stderr to a file, not an unread pipe: a server that writes more than the pipe
    # holds would block; the file's tail goes into the result when a request failed
    with tempfile.NamedTemporaryFile(
        prefix="tijdig-bench-server-", suffix=".log", delete=False
    ) as f:
        log_path = f.name
    with open(log_path, "wb") as stderr:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    try:
        _wait_ready(ready_url, ready_timeout_s)
    except Exception:
        _stop(proc)
        raise
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the uvicorn parent and its own workers only
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def load_test(
    world: Path, as_of: date, customer_ids: list[str], duration_s: float
) -> dict[str, Any]:
    """Load the bare endpoint and tijdig's score (serving rows on), pay-later (serving rows
    on, a key per order) and score (serving rows off: ``score_computed``) routes, each for
    ``duration_s`` in all, split into ``ROUNDS`` interleaved rounds; one pooled result per
    endpoint (:func:`_pooled`), plus the servers' stderr tails when a request failed.
    """
    made = request_bodies(customer_ids, as_of)
    bodies, bnpl_bodies = made["score"], made["bnpl"]
    headers = {"Content-Type": "application/json", "X-API-Key": "dev-key"}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out: dict[str, Any] = {}

    def tijdig_server(extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        senv = {
            **env,
            "TIJDIG_DATA_DIR": str(world),
            "TIJDIG_DEFAULT_AS_OF": as_of.isoformat(),
            **extra_env,
        }
        senv.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--workers", str(WORKERS)]
        # the model parse can take minutes when other jobs share the cores
        return _start(cmd, senv, f"http://127.0.0.1:{port}/readyz", ready_timeout_s=600), port

    bare_port = free_port()
    bare_cmd = [sys.executable, "-m", "benchmarks.bare_app", str(bare_port), str(WORKERS)]
    servers: list[subprocess.Popen[bytes]] = []
    try:
        servers.append(_start(bare_cmd, env, f"http://127.0.0.1:{bare_port}/docs"))
        # Serving rows refreshed before the run (what `tijdig features refresh` does nightly
        # and after an ingest): every request reads one materialised row.
        served, served_port = tijdig_server({"TIJDIG_SERVING_ROWS": "true"})
        servers.append(served)
        # Serving rows off: every request reads the history and builds features, predicts
        # and explains on the request path (what a customer with new events since the last
        # refresh, or a day not yet refreshed, costs).
        computed, computed_port = tijdig_server({"TIJDIG_SERVING_ROWS": "false"})
        servers.append(computed)
        # pay-later as a checkout calls it: every order with an Idempotency-Key of its own
        targets = {
            "bare": (f"http://127.0.0.1:{bare_port}/v1/risk/scores", bodies, servers[0].pid, None),
            "score": (f"http://127.0.0.1:{served_port}/v1/risk/scores", bodies, served.pid, None),
            "bnpl": (
                f"http://127.0.0.1:{served_port}{BNPL_PATH}",
                bnpl_bodies,
                served.pid,
                "Idempotency-Key",
            ),
            "score_computed": (
                f"http://127.0.0.1:{computed_port}/v1/risk/scores",
                bodies,
                computed.pid,
                None,
            ),
        }
        for url, payloads, _pid, key in targets.values():
            asyncio.run(generate_load(url, payloads, headers, 3.0, key_header=key))  # warm-up
        # Interleaved rounds: every endpoint gets `duration_s` in all, in ROUNDS slices
        # taken in turn, so drift in what else the machine does hits them alike; the
        # ratio is taken per round and its median reported with the spread.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(ROUNDS):
            for name, (url, payloads, pid, key) in targets.items():
                runs[name].append(
                    asyncio.run(
                        generate_load(url, payloads, headers, duration_s / ROUNDS, pid, key)
                    )
                )
    finally:
        for proc in servers:
            _stop(proc)
        server_logs = {}
        for label, proc in zip(("bare", "served", "computed"), servers, strict=False):
            log_path = Path(proc.log_path)  # type: ignore[attr-defined]
            server_logs[label] = log_path.read_text(errors="replace")[-3000:]
            log_path.unlink(missing_ok=True)
    if any(p["errors"] for parts in runs.values() for p in parts):
        out["server_stderr_tails"] = server_logs  # what the servers said, for the failures
    for name, parts in runs.items():
        out[name] = {**_pooled(parts), "keyed": targets[name][3] is not None}
    return out


def _pooled(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One endpoint's rounds (:func:`~benchmarks.online.load.generate_load` results) as one:
    throughput and percentiles over all rounds' requests, with each round's throughput,
    p99 and connection spread kept beside them."""
    lat = np.concatenate([p.pop("latencies_ms") for p in parts])
    seconds = sum(p["seconds"] for p in parts)
    return {
        "requests": int(lat.size),
        "errors": int(sum(p["errors"] for p in parts)),
        "error_kinds": _merged_counts(p["error_kinds"] for p in parts),
        "error_samples": {k: v for p in parts for k, v in p["error_samples"].items()},
        "seconds": round(seconds, 2),
        "rps": lat.size / seconds,
        "rps_rounds": [p["rps"] for p in parts],
        # connections per worker in each round: the kernel spreads them by a hash
        "spread_rounds": [p["spread"] for p in parts],
        "p99_rounds_ms": [p["p99_ms"] for p in parts],
        # CPU per answered request: the servers' processes alone, and the generator
        "server_cpu_us": (
            sum(p["server_cpu_s"] for p in parts) / lat.size * 1e6
            if all(p["server_cpu_s"] is not None for p in parts)
            else None
        ),
        "generator_cpu_us": sum(p["generator_cpu_s"] for p in parts) / lat.size * 1e6,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def _merged_counts(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out

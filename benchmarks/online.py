"""Online speed: POST /v1/risk/scores for one customer under load, beside a bare FastAPI endpoint.

Setup (:func:`prepare_world`): simulate a population, ingest it into a SQLite event store,
train and force-promote a champion in a temporary folder (or reuse one given by
``--world``). Both servers run under uvicorn with 2 workers on 127.0.0.1 on a free port,
started the same way (:func:`service.server.run_uvicorn`: one listening socket per worker);
a pure-Python asyncio load generator (keep-alive HTTP/1.1 on raw streams) keeps 16 requests in flight for
``duration_s`` seconds against each, in the same run (pay-later orders each with an
``Idempotency-Key`` of their own, as checkouts send them). The load generator runs on the same
2 cores as the servers, so absolute figures understate the servers, and its own CPU per
request, the same for both, pulls the throughput ratio towards 1: the ratio is *not*
conservative. Each round therefore also records the CPU the servers' processes and the
generator spent per request (from ``/proc`` and ``process_time``), and the notes give
the ratio of server CPU alone. The loop is closed (a connection sends its next request
when the last is answered), so the p99 leaves out the queueing a fixed arrival rate
would see during a stall (coordinated omission); the notes say so beside the goal.

Serving rows (:mod:`models.serving`) are refreshed for every customer before the load,
as ``tijdig features refresh`` does nightly; the score endpoint then runs twice: with
serving rows (one row read per request) and with them off (history read, features,
predict and SHAP on the request path), so both paths are measured in the same run.

The in-process split times the functions the route calls, one customer at a time, for
both paths: computed (store read, features, predict, reasons, response) and served
(serving row read, assess with stored SHAP, response).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, free_port, run_child, stats
from service.server import connections_per_worker

CONCURRENCY = 16
WORKERS = 2
ROUNDS = 3
BNPL_PATH = "/v1/bnpl/decisions"


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
from benchmarks.online import prepare_world
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
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT max(issue_date) FROM invoices")).scalar()
    engine.dispose()
    from datetime import timedelta

    import pandas as pd

    if last is None:
        raise ValueError(f"no invoices in {store_url}: nothing to score")
    return (pd.Timestamp(last) + timedelta(days=1)).date()


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


def _start(cmd: list[str], env: dict[str, str], ready_url: str) -> subprocess.Popen[bytes]:
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
        _wait_ready(ready_url)
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


async def _load(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    duration_s: float,
    server_pid: int | None = None,
    key_header: str | None = None,
) -> dict[str, Any]:
    """Keep ``CONCURRENCY`` keep-alive HTTP/1.1 connections busy for ``duration_s`` seconds.

    With ``key_header`` (``Idempotency-Key``) every request carries a key of its own, as a
    checkout's first call for an order does: each one is decided and its key bound.

    A minimal client on asyncio streams (request bytes prebuilt, responses read by
    Content-Length): httpx's AsyncClient costs ~0.5 ms of CPU per request, which on 2
    shared cores made the load generator, not the server, the bottleneck. All
    connections are open before the clock starts; with ``server_pid`` (the server's
    supervisor) the result says how many of them each worker holds (``spread``).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    start_line = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}".encode()
    requests = [(start_line, f"Content-Length: {len(b)}\r\n\r\n".encode() + b) for b in bodies]
    run_id = uuid.uuid4().hex[:12]  # keys never repeat across rounds and runs
    latencies: list[float] = []
    errors = 0
    error_kinds: dict[str, int] = {}  # HTTP status (or "connection") -> count
    error_samples: dict[str, str] = {}  # HTTP status -> the first such body (problem+json)

    async def worker(seed: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        rng = random.Random(seed)
        sent = 0
        try:
            while True:
                started = time.perf_counter()
                if started >= stop_at:
                    return
                try:
                    first, rest = rng.choice(requests)
                    if key_header:
                        sent += 1
                        first += f"{key_header}: {run_id}-{seed}-{sent}\r\n".encode()
                    writer.write(first + rest)
                    status_line = await reader.readline()
                    length = 0
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    body = await reader.readexactly(length)
                    status = status_line.split(b" ", 2)[1].decode()
                    if status != "200" and status not in error_samples:
                        error_samples[status] = body[:400].decode(errors="replace")
                except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
                    status = "connection"
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                latencies.append(time.perf_counter() - started)
                if status != "200":
                    errors += 1
                    error_kinds[status] = error_kinds.get(status, 0) + 1
        finally:
            writer.close()

    connections = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(CONCURRENCY))
    )
    spread = sorted(connections_per_worker(server_pid, port).values()) if server_pid else None
    server_cpu0 = process_tree_cpu_s(server_pid) if server_pid else None
    generator_cpu0 = time.process_time()
    began = time.perf_counter()
    stop_at = began + duration_s
    await asyncio.gather(*(worker(i, *rw) for i, rw in enumerate(connections)))
    elapsed = time.perf_counter() - began
    generator_cpu = time.process_time() - generator_cpu0
    server_cpu = (
        process_tree_cpu_s(server_pid) - server_cpu0
        if server_pid and server_cpu0 is not None
        else None
    )
    lat = np.array(latencies) * 1000
    return {
        "server_cpu_s": server_cpu,
        "generator_cpu_s": generator_cpu,
        "latencies_ms": lat,
        "requests": len(latencies),
        "errors": errors,
        "error_kinds": error_kinds,
        "error_samples": error_samples,
        "spread": spread,
        "seconds": round(elapsed, 2),
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) spent so far by ``pid`` and its child processes (a
    uvicorn supervisor and its workers), from ``/proc``; 0 where a process is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):  # the supervisor ended: count what is left
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def load_test(
    world: Path, as_of: date, customer_ids: list[str], duration_s: float
) -> dict[str, Any]:
    """Bare endpoint, then the score endpoint, each for ``duration_s`` at concurrency 16."""

    made = _bodies(customer_ids, as_of)
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
        return _start(cmd, senv, f"http://127.0.0.1:{port}/readyz"), port

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
            asyncio.run(_load(url, payloads, headers, 3.0, key_header=key))  # warm-up
        # Interleaved rounds: every endpoint gets `duration_s` in all, in ROUNDS slices
        # taken in turn, so drift in what else the machine does hits them alike; the
        # ratio is taken per round and its median reported with the spread.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(ROUNDS):
            for name, (url, payloads, pid, key) in targets.items():
                runs[name].append(
                    asyncio.run(_load(url, payloads, headers, duration_s / ROUNDS, pid, key))
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
        lat = np.concatenate([p.pop("latencies_ms") for p in parts])
        seconds = sum(p["seconds"] for p in parts)
        out[name] = {
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
    return out


def _merged_counts(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def _time_steps(
    steps: tuple[str, ...],
    one: Callable[[str], Sequence[float]],
    customer_ids: list[str],
    repeats: int,
    per_repeat: int,
) -> dict[str, Any]:
    """Median µs per request of each step: ``one(customer_id)`` answers one request and
    returns the seconds of each step. The first repeat warms caches and is dropped."""
    import gc

    os.environ["OMP_NUM_THREADS"] = "1"
    gc.collect()
    gc.freeze()
    runs: dict[str, list[float]] = {s: [] for s in steps}
    rng = random.Random(0)
    try:
        for _ in range(repeats + 1):
            acc = dict.fromkeys(steps, 0.0)
            for _ in range(per_repeat):
                for s, dt in zip(steps, one(rng.choice(customer_ids)), strict=True):
                    acc[s] += dt
            for s in steps:
                runs[s].append(acc[s] / per_repeat * 1e6)
    finally:
        gc.unfreeze()
    out: dict[str, Any] = {}
    for s in steps:
        st = stats(runs[s][1:])
        out[s] = {"median_us": st["median"], "iqr_us": st["iqr"], "min_us": st["min"]}
    return out


def _result_json(bundle: Any, cid: str, p: float, reasons: list[Any]) -> str:
    """The response item the route would send, serialised."""
    from service.schemas import ReasonOut, RiskResult

    return RiskResult(
        customer_id=cid,
        probability=p,
        band=bundle.policy.band(p).value,
        early_warning=bool(p >= bundle.policy.early_warning_threshold),
        reasons=[ReasonOut.of(r) for r in reasons],
        recommended_action=_action(bundle, p, reasons),
        decision_id="00000000-0000-0000-0000-000000000000",
    ).model_dump_json()


def in_process_split(
    world: Path, as_of: date, customer_ids: list[str], repeats: int = 5, per_repeat: int = 200
) -> dict[str, Any]:
    """Median µs per request of each step the route takes when it computes from the events,
    one customer per request."""
    from features.build import build_features
    from features.events import EventArrays
    from features.store import EventStore
    from service.model import load_checked_bundle
    from service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=world)
    bundle = load_checked_bundle(settings.model_uri, settings.mlflow_tracking_uri)
    store = EventStore(settings.store_url)

    def one(cid: str) -> tuple[float, ...]:
        t0 = time.perf_counter()
        cols = store.read_columns([cid])
        t1 = time.perf_counter()
        X = build_features(EventArrays.from_columns(cols, [cid]), as_of)
        t2 = time.perf_counter()
        p = float(bundle.predict_proba(X)[0])
        t3 = time.perf_counter()
        reasons = bundle.explain(X)[0]
        t4 = time.perf_counter()
        _result_json(bundle, cid, p, reasons)
        t5 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4

    try:
        steps = ("store read", "features", "predict", "reasons", "response")
        return _time_steps(steps, one, customer_ids, repeats, per_repeat)
    finally:
        store.dispose()


def in_process_split_served(
    world: Path,
    as_of: date,
    customer_ids: list[str],
    decision_log_dir: Path,
    repeats: int = 5,
    per_repeat: int = 500,
) -> dict[str, Any]:
    """The same split on the served path: one refreshed serving row per request, and the
    decision-log row written and its commit awaited (a log of its own in
    ``decision_log_dir``; the response JSON stands in for the route's outputs)."""
    from datetime import UTC, datetime

    from features.store import EventStore
    from models.scoring import assess_state
    from models.serving import ServingRows
    from service.decision_log import Decision, DecisionLog, feature_dict, new_decision_id
    from service.model import load_checked_bundle
    from service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=world)
    bundle = load_checked_bundle(settings.model_uri, settings.mlflow_tracking_uri)
    store = EventStore(settings.store_url)
    serving = ServingRows(store)
    decision_log = DecisionLog(f"sqlite:///{decision_log_dir / 'split.db'}").open()
    loop = asyncio.new_event_loop()
    misses = 0

    def one(cid: str) -> tuple[float, ...]:
        nonlocal misses
        t0 = time.perf_counter()
        state = serving.state(bundle, [cid], as_of)
        t1 = time.perf_counter()
        a = assess_state(bundle, state, as_of)[0]
        t2 = time.perf_counter()
        body = _result_json(bundle, cid, a.probability, a.reasons)
        t3 = time.perf_counter()
        logged = Decision(
            decision_id=new_decision_id(),
            created_at=datetime.now(UTC),
            kind="risk_score",
            customer_id=cid,
            as_of=as_of,
            model_version=bundle.version,
            policy_version=bundle.policy.version,
            inputs={"request_id": new_decision_id(), "explain": True},
            features=feature_dict(bundle.feature_names, state.X[0].tolist()),
            outputs=json.loads(body),
        )
        # the route's path: committed on the event loop, awaited
        loop.run_until_complete(decision_log.log([logged], wait=True, timeout_s=5.0))
        t4 = time.perf_counter()
        misses += int(not state.materialised[0])
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3

    try:
        steps = ("serving row read", "assess (stored SHAP)", "response", "decision log")
        out = _time_steps(steps, one, customer_ids, repeats, per_repeat)
    finally:
        decision_log.close()
        loop.close()
        serving.close()
        store.dispose()
    out["misses"] = misses
    return out


def in_process_asgi(
    world: Path,
    as_of: date,
    customer_ids: list[str],
    decision_log_dir: Path,
    repeats: int = 5,
    per_repeat: int = 1000,
) -> dict[str, Any]:
    """CPU µs per request of the whole app, one request at a time, driven as ASGI calls in
    this process: middleware, validation, dependencies, the route and the awaited
    decision-log commit (the writer thread's CPU included), for the bare app and for
    tijdig's served score and pay-later routes.

    No sockets and no load generator share the cores, so these ratios move far less from
    run to run than the ones under load; they say what the server itself costs.
    """
    import contextlib
    import gc

    from benchmarks import bare_app
    from service.app import create_app
    from service.settings import ServiceSettings

    bodies = _bodies(customer_ids, as_of)
    tijdig = create_app(
        ServiceSettings(
            data_dir=world,
            default_as_of=as_of,
            decision_log_url=f"sqlite:///{decision_log_dir / 'decisions.db'}",
            serving_rows=True,
        )
    )
    targets = {
        "bare": (bare_app.app, "/v1/risk/scores", bodies["score"]),
        "score": (tijdig, "/v1/risk/scores", bodies["score"]),
        "bnpl": (tijdig, BNPL_PATH, bodies["bnpl"]),
    }
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-api-key", b"dev-key"),
    ]

    keys = itertools.count()

    async def call(app: Any, path: str, body: bytes) -> None:
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client never disconnects
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                *headers,
                (b"content-length", str(len(body)).encode()),
                # pay-later as a checkout calls it: each order with a key of its own
                *([(b"idempotency-key", f"k{next(keys)}".encode())] if path == BNPL_PATH else []),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"{path} answered {sent[0]['status']}: {sent[1:]}")

    async def measure() -> dict[str, list[float]]:
        runs: dict[str, list[float]] = {name: [] for name in targets}
        rng = random.Random(0)
        async with tijdig.router.lifespan_context(tijdig):
            for app, path, payloads in targets.values():  # warm-up
                for _ in range(200):
                    await call(app, path, rng.choice(payloads))
            gc.collect()
            for _ in range(repeats):  # interleaved, as under load
                for name, (app, path, payloads) in targets.items():
                    started = time.process_time()
                    for _ in range(per_repeat):
                        await call(app, path, rng.choice(payloads))
                    runs[name].append((time.process_time() - started) / per_repeat * 1e6)
        return runs

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        runs = asyncio.run(measure())  # the request log lines go where the server's do
    out: dict[str, Any] = {}
    for name, values in runs.items():
        st = stats(values)
        out[name] = {"cpu_us": st["median"], "iqr_us": st["iqr"], "min_us": st["min"]}
    for name in ("score", "bnpl"):
        per_round = [b / t for b, t in zip(runs["bare"], runs[name], strict=True)]
        out[f"ratio_{name}"] = float(np.median(per_round))
    return out


def _bodies(customer_ids: list[str], as_of: date) -> dict[str, list[bytes]]:
    """Request bodies, one per customer: a one-customer score request, and a pay-later
    order (EUR 20-400 as in the simulator, a verified adult; the Idempotency-Key goes in
    a header of each request)."""
    rng = random.Random(5)
    return {
        "score": [
            json.dumps({"customer_ids": [c], "as_of": as_of.isoformat()}).encode()
            for c in customer_ids
        ],
        "bnpl": [
            json.dumps(
                {
                    "customer_id": c,
                    "order": {"amount_cents": rng.randint(2_000, 40_000), "currency": "EUR"},
                    "age_verification": {
                        "verified": True,
                        "method": "idin",
                        "birth_date": "1990-04-01",
                    },
                    "as_of": as_of.isoformat(),
                }
            ).encode()
            for c in customer_ids
        ],
    }


def refresh_rows(world: Path, as_of: date) -> dict[str, Any]:
    """``tijdig features refresh`` for the world: every customer's serving row as of ``as_of``."""
    from features.store import EventStore
    from models.serving import ServingRows
    from service.model import load_checked_bundle
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


def _notes(load: dict[str, Any], split_served: dict[str, Any], asgi: dict[str, Any]) -> list[str]:
    """What the figures say about the goals (computed from this run only; experiments
    measured by hand, with their dates, are in docs/performance.md)."""
    from features.build import FEATURE_NAMES

    score, bare = load["score"], load["bare"]
    ours = sum(v["median_us"] for k, v in split_served.items() if k != "misses")
    log_us = split_served["decision log"]["median_us"]
    cpu_ms = 2 / score["rps"] * 1000  # two cores' worth of time per answered request
    mean_ms = CONCURRENCY / score["rps"] * 1000
    tail = score["p99_ms"] / mean_ms  # this run's p99 / mean
    needed_rps = CONCURRENCY / (15 / tail / 1000)
    bare_ms = 2 / bare["rps"] * 1000
    by_round = "; ".join(
        f"{name} "
        + ", ".join(
            f"{'/'.join(map(str, spread))} → {p99:.1f} ms"
            for spread, p99 in zip(
                load[name]["spread_rounds"], load[name]["p99_rounds_ms"], strict=True
            )
            if spread
        )
        for name in ("score", "bnpl")
        if load[name].get("p99_rounds_ms")
    )
    return [
        *(
            [
                "Each worker listens on its own socket and the kernel spreads the "
                f"{CONCURRENCY} connections by a hash, evenly or not; a worker holding k of "
                "them answers each request after up to k others. Connections per worker → "
                f"p99, by round: {by_round}."
            ]
            if by_round
            else []
        ),
        f"Closed loop: {CONCURRENCY} connections always waiting, so the mean latency is "
        f"{CONCURRENCY} / throughput (Little's law): {mean_ms:.2f} ms at "
        f"{score['rps']:,.0f} requests/s, and this run's p99 is {tail:.2f} times that mean. "
        f"At that shape a p99 of 15 ms needs the mean near {15 / tail:.1f} ms, i.e. about "
        f"{needed_rps:,.0f} requests/s: {needed_rps / (0.2 * bare['rps']):.2f} times the "
        "throughput the ratio goal asks for in this run. A closed loop also leaves out the "
        "queueing that requests arriving at a fixed rate would meet during a stall "
        "(coordinated omission), so the p99 here is a lower bound for an open-loop client.",
        *(
            [
                f"CPU per answered request, the servers' processes alone (from /proc): bare "
                f"{bare['server_cpu_us']:,.0f} µs, score {score['server_cpu_us']:,.0f} µs, "
                f"pay-later {load['bnpl']['server_cpu_us']:,.0f} µs; ratio of server CPU "
                f"bare/score {bare['server_cpu_us'] / score['server_cpu_us']:.3f}, bare/pay-later "
                f"{bare['server_cpu_us'] / load['bnpl']['server_cpu_us']:.3f}. The load "
                f"generator spent {bare['generator_cpu_us']:,.0f} µs per bare and "
                f"{score['generator_cpu_us']:,.0f} µs per score request on the same cores: "
                "the same cost on both sides pulls the throughput ratio towards 1, so the "
                "server-CPU ratio is the stricter reading."
            ]
            if bare.get("server_cpu_us") and score.get("server_cpu_us")
            else []
        ),
        f"The tail is the machine's as much as the route's: the bare endpoint's p99 is "
        f"{bare['p99_ms'] / bare['p50_ms']:.1f} times its p50, the score endpoint's "
        f"{score['p99_ms'] / score['p50_ms']:.1f} times. Three busy processes (the load "
        "generator and 2 workers) share 2 cores, and a request waits whenever its worker "
        "or the load generator is off the CPU for a scheduler time slice.",
        f"Per answered request under load the machine spends about {cpu_ms:.2f} ms of its 2 "
        f"cores (bare endpoint: {bare_ms:.2f} ms), the load generator included in both. "
        f"In-process, one request at a time and without the load generator, the whole app "
        f"costs {asgi['score']['cpu_us']:,.0f} µs of CPU per score request and "
        f"{asgi['bnpl']['cpu_us']:,.0f} µs per pay-later decision, against "
        f"{asgi['bare']['cpu_us']:,.0f} µs for the bare endpoint (ratios "
        f"{asgi['ratio_score']:.3f} and {asgi['ratio_bnpl']:.3f}).",
        f"Of a served score request, tijdig's own steps take {ours:,.0f} µs (table above), "
        f"{log_us:,.0f} µs of it the decision log (a JSON row with the {len(FEATURE_NAMES)} "
        "named features, committed before the answer leaves); the rest of the in-process figure is "
        "the web stack around them: request parsing and validation, the API-key dependency, "
        "the Prometheus samples and the JSON request log line.",
    ]


def _action(bundle: Any, p: float, reasons: list[Any]) -> Any:
    from models.policy import ACTION_TEXTS
    from service.schemas import ActionOut

    action = bundle.policy.action(p, reasons)
    channel, en, nl = ACTION_TEXTS[action]
    return ActionOut(action=action.value, channel=channel, text_en=en, text_nl=nl)


def run(quick: bool = False, world: Path | None = None) -> dict[str, Any]:
    duration = 10.0 if quick else 30.0
    customers = 5_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="tijdig-bench-online-") as tmp:
        built: dict[str, Any] = {}
        if world is None:
            world = Path(tmp) / "world"
            built = prepare_world(world, customers=customers)
        from features.store import EventStore
        from service.settings import ServiceSettings

        url = ServiceSettings(data_dir=world).store_url
        as_of = world_as_of(url)
        store = EventStore(url)
        ids = store.customer_ids()
        store.dispose()
        refresh = refresh_rows(world, as_of)
        sample = random.Random(1).sample(ids, len(ids))  # every customer, shuffled
        # In-process figures first: measured right after the load (1 Dec 2026) every step
        # took about twice as long as in a fresh process, with no server or thread left
        # behind; the load's after-effect on this VM's cores, not the code.
        split = in_process_split(world, as_of, sample, repeats=3 if quick else 5)
        logs = Path(tmp) / "decision-logs"
        logs.mkdir()
        split_served = in_process_split_served(
            world, as_of, sample, logs, repeats=3 if quick else 5
        )
        asgi = in_process_asgi(world, as_of, sample, logs, per_repeat=300 if quick else 1000)
        load = load_test(world, as_of, sample, duration)
        server_stderr_tails = load.pop("server_stderr_tails", None)

    def ratio_of(name: str) -> tuple[float, list[float]]:
        per_round = [
            a / b for a, b in zip(load[name]["rps_rounds"], load["bare"]["rps_rounds"], strict=True)
        ]
        return float(np.median(per_round)), per_round

    ratio, ratio_rounds = ratio_of("score")
    ratio_bnpl, ratio_bnpl_rounds = ratio_of("bnpl")
    ratio_computed, _ = ratio_of("score_computed")
    return {
        "name": "online",
        "setup": (
            f"{customers:,} simulated customers in a SQLite store, champion trained and promoted in a temp folder; "
            f"uvicorn {WORKERS} workers on 127.0.0.1 (tijdig and bare alike: one SO_REUSEPORT listener per worker); asyncio keep-alive load generator, {CONCURRENCY} connections, "
            f"{duration:.0f} s per endpoint in {ROUNDS} interleaved rounds after 3 s warm-up (all servers up "
            f"at once, endpoints loaded in turn), one random customer per request (as_of {as_of}), "
            "drawn from all customers; serving rows refreshed before the load; "
            "the load generator shares the 2 cores with the servers."
        ),
        "world": {k: v for k, v in built.items() if k != "metrics"},
        "load": load,
        "ratio_rps": ratio,
        "ratio_rps_bnpl": ratio_bnpl,
        "ratio_rps_computed": ratio_computed,
        "ratio_rps_rounds": ratio_rounds,
        "ratio_rps_bnpl_rounds": ratio_bnpl_rounds,
        "refresh": refresh,
        "split": split,
        "split_served": split_served,
        "asgi": asgi,
        **({"server_stderr_tails": server_stderr_tails} if server_stderr_tails else {}),
        "notes": _notes(load, split_served, asgi),
    }

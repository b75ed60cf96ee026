"""The shadow challenger under load (issue 23, item 6): the score endpoint with
``TIJDIG_SHADOW_SHARE`` 0 and 1.0, in the same run, on real servers on 127.0.0.1.

Two tijdig servers (``WORKERS`` uvicorn workers each, serving rows on, a decision log of
their own) serve the same world and champion; the second also scores every risk
request with a challenger in the shadow. The challenger is the champion's own trees
with its Platt intercept moved by :data:`CHALLENGER_SHIFT`: the same prediction cost as
the champion (the worst case for a challenger of the same size) and different answers,
so the shadow rows are not a copy. This measures the shadow's cost, not a challenger's
quality.

Measured:

* **answers**: the same :data:`PROBES` requests (one customer each, reasons on) to both
  servers, during the load's pauses; every answer must be identical but for its
  decision id;
* **latency**: the load generator of :mod:`benchmarks.online.load` against each server
  in :data:`ROUNDS` interleaved rounds; p99 pooled and per round, and their ratio
  (goal: the shadow moves the p99 by at most 10 %);
* **the shadow's own work**: rows it logged, offers dropped on a full queue, failures
  (the servers' ``/metrics``), and the rows in its decision log's ``shadow_scores``.

    python -m benchmarks.run --only shadow [--world .tijdig] [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, free_port
from benchmarks.online.load import CONCURRENCY, generate_load, request_bodies
from benchmarks.online.servers import WORKERS, _start, _stop

#: Interleaved rounds per server (the ratio is taken per round as well as pooled).
ROUNDS = 5
#: One-customer requests sent to both servers and compared answer by answer.
PROBES = 600
#: The challenger's Platt intercept minus the champion's (log-odds).
CHALLENGER_SHIFT = 0.4
GOAL_P99_RATIO = 1.10
#: How long a server may take to answer /readyz (a loaded, shared machine is slow to start).
START_TIMEOUT_S = 600.0


def make_challenger(world: Path, folder: Path) -> dict[str, Any]:
    """Save the world's champion, its calibration moved by :data:`CHALLENGER_SHIFT`, as a
    bundle folder (the service's ``challenger_uri``)."""
    from service.bundle_loader import load_checked_bundle
    from service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=world)
    bundle = load_checked_bundle(settings.model_uri, settings.mlflow_tracking_uri)
    champion_version = bundle.version
    bundle.calibrator = {
        **bundle.calibrator,
        "intercept": bundle.calibrator["intercept"] + CHALLENGER_SHIFT,
    }
    bundle.version = "shadow-bench-challenger"
    bundle.metadata = {**bundle.metadata, "version": bundle.version}
    bundle.save(folder)
    return {"champion": champion_version, "trees": bundle.booster.num_trees()}


def _answers(port: int, bodies: list[bytes]) -> list[Any]:
    """Each probe's answer (status, JSON without decision ids), 8 requests in flight."""
    import httpx2

    headers = {"Content-Type": "application/json", "X-API-Key": "dev-key"}

    async def main() -> list[Any]:
        limit = asyncio.Semaphore(8)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:

            async def one(body: bytes) -> Any:
                async with limit:
                    r = await c.post("/v1/risk/scores", content=body, headers=headers)
                doc = r.json()
                for result in doc.get("results", []):
                    result.pop("decision_id", None)
                return r.status_code, doc

            return await asyncio.gather(*(one(b) for b in bodies))

    return asyncio.run(main())


def _shadow_counters(port: int) -> dict[str, float]:
    import httpx2

    text = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out = {}
    for name in ("scored", "dropped", "failures"):
        found = re.findall(
            rf"^tijdig_shadow_{name}_total(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M
        )
        out[name] = float(sum(float(v) for v in found))
    return out


def _shadow_rows(log_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(log_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM shadow_scores")).scalar_one())
    finally:
        engine.dispose()


def load_with_and_without(
    world: Path, as_of: date, customer_ids: list[str], duration_s: float, tmp: Path
) -> dict[str, Any]:
    """Start both servers, compare their answers, load them in interleaved rounds."""
    challenger = tmp / "challenger"
    made = make_challenger(world, challenger)
    bodies = request_bodies(customer_ids, as_of)["score"]
    rng = random.Random(11)
    probes = [
        json.dumps({"customer_ids": [c], "as_of": as_of.isoformat(), "explain": True}).encode()
        for c in rng.sample(customer_ids, min(PROBES, len(customer_ids)))
    ]
    headers = {"Content-Type": "application/json", "X-API-Key": "dev-key"}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    servers: dict[str, Any] = {}
    logs = {name: f"sqlite:///{tmp / name / 'decisions.db'}" for name in ("off", "on")}
    shares = {"off": "0", "on": "1.0"}
    out: dict[str, Any] = {"challenger": {**made, "intercept_shift": CHALLENGER_SHIFT}}
    try:
        for name in ("off", "on"):
            port = free_port()
            senv = {
                **env,
                "TIJDIG_DATA_DIR": str(world),
                "TIJDIG_DEFAULT_AS_OF": as_of.isoformat(),
                "TIJDIG_SERVING_ROWS": "true",
                "TIJDIG_DECISION_LOG_URL": logs[name],
                "TIJDIG_SHADOW_SHARE": shares[name],
                "TIJDIG_CHALLENGER_URI": str(challenger),
            }
            cmd = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--workers", str(WORKERS)]
            servers[name] = (
                _start(cmd, senv, f"http://127.0.0.1:{port}/readyz", START_TIMEOUT_S),
                port,
            )
        urls = {n: f"http://127.0.0.1:{p}/v1/risk/scores" for n, (_, p) in servers.items()}
        for url in urls.values():
            asyncio.run(generate_load(url, bodies, headers, 3.0))  # warm-up
        answers = {n: _answers(p, probes) for n, (_, p) in servers.items()}
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for i in range(ROUNDS):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")  # neither always first
            for name in order:
                proc, _port = servers[name]
                runs[name].append(
                    asyncio.run(
                        generate_load(urls[name], bodies, headers, duration_s / ROUNDS, proc.pid)
                    )
                )
        after = {n: _answers(p, probes) for n, (_, p) in servers.items()}
        counters = _shadow_counters(servers["on"][1])
    finally:
        tails = {}
        for name, (proc, _) in servers.items():
            _stop(proc)
            log_path = Path(proc.log_path)
            tails[name] = log_path.read_text(errors="replace")[-3000:]
            log_path.unlink(missing_ok=True)
    same = [a == b for a, b in zip(answers["off"], answers["on"], strict=True)]
    same_after = [a == b for a, b in zip(after["off"], after["on"], strict=True)]
    ok = [s for s, _ in answers["off"] + after["off"]]
    out["answers"] = {
        "probes": len(probes) * 2,
        "identical": int(sum(same) + sum(same_after)),
        "status_200": int(sum(1 for s in ok if s == 200)),
    }
    out["shadow"] = {**counters, "rows_logged": _shadow_rows(logs["on"])}
    for name, parts in runs.items():
        out[name] = _pooled(parts)
    if any(p["errors"] for parts in runs.values() for p in parts) or not all(same + same_after):
        out["server_stderr_tails"] = tails
    return out


def _pooled(parts: list[dict[str, Any]]) -> dict[str, Any]:
    lat = np.concatenate([p.pop("latencies_ms") for p in parts])
    seconds = sum(p["seconds"] for p in parts)
    return {
        "requests": int(lat.size),
        "errors": int(sum(p["errors"] for p in parts)),
        "rps": lat.size / seconds,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "p99_rounds_ms": [p["p99_ms"] for p in parts],
        "rps_rounds": [p["rps"] for p in parts],
        "server_cpu_us": (
            sum(p["server_cpu_s"] for p in parts) / lat.size * 1e6
            if all(p["server_cpu_s"] is not None for p in parts)
            else None
        ),
    }


def run(quick: bool = False, world: Path | None = None) -> dict[str, Any]:
    """The shadow result document (``results/shadow.json``)."""
    from benchmarks.world import prepare_world, refresh_rows, world_as_of
    from features.store import EventStore
    from service.settings import ServiceSettings

    duration = 10.0 if quick else 40.0
    with tempfile.TemporaryDirectory(prefix="tijdig-bench-shadow-") as name:
        tmp = Path(name)
        built: dict[str, Any] = {}
        if world is None:
            world = tmp / "world"
            built = prepare_world(world, customers=3_000 if quick else 20_000)
        url = ServiceSettings(data_dir=world).store_url
        as_of = world_as_of(url)
        store = EventStore(url)
        ids = store.customer_ids()
        store.dispose()
        refresh_rows(world, as_of)
        sample = random.Random(1).sample(ids, len(ids))
        load = load_with_and_without(world, as_of, sample, duration, tmp)
    off, on = load["off"], load["on"]
    per_round = [b / a for a, b in zip(off["p99_rounds_ms"], on["p99_rounds_ms"], strict=True)]
    ratio = on["p99_ms"] / off["p99_ms"]
    return {
        "name": "shadow",
        "setup": (
            f"{len(ids):,} simulated customers, serving rows refreshed; two tijdig servers "
            f"({WORKERS} uvicorn workers each, own decision log) on 127.0.0.1, shadow share 0 "
            f"and 1.0 (challenger: the champion's trees, Platt intercept +{CHALLENGER_SHIFT}); "
            f"{CONCURRENCY} keep-alive connections, {duration:.0f} s per server in {ROUNDS} "
            f"interleaved rounds after 3 s warm-up; one random customer per request (as_of "
            f"{as_of}); {PROBES} probe requests to both servers before and after the load"
        ),
        "world": {k: v for k, v in built.items() if k != "metrics"},
        "load": load,
        "p99_ratio": ratio,
        "p99_ratio_rounds": per_round,
        "p99_ratio_median_round": float(np.median(per_round)),
        "rps_ratio": on["rps"] / off["rps"],
        "goal_p99_ratio": GOAL_P99_RATIO,
        "answers_identical": load["answers"]["identical"] == load["answers"]["probes"],
    }


def results_section(r: dict[str, Any]) -> list[str]:
    """The RESULTS.md section of a shadow result."""
    from benchmarks.common import measured_on

    load = r["load"]
    off, on, answers, shadow = load["off"], load["on"], load["answers"], load["shadow"]
    met = "met" if r["p99_ratio"] <= r["goal_p99_ratio"] else "**missed**"
    return [
        "## Shadow challenger under load (issue 23)",
        "",
        f"Measured {r['date']}{measured_on(r)}. {r['setup']}.",
        "",
        "| shadow share | requests | errors | rps | p50 ms | p90 ms | p99 ms | server CPU µs/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {share} | {x['requests']:,} | {x['errors']} | {x['rps']:,.0f} | "
            f"{x['p50_ms']:.2f} | {x['p90_ms']:.2f} | {x['p99_ms']:.2f} | "
            + (f"{x['server_cpu_us']:.0f} |" if x["server_cpu_us"] is not None else "— |")
            for share, x in (("0", off), ("1.0", on))
        ),
        "",
        f"- answers: {answers['identical']} of {answers['probes']} probe answers identical "
        f"(all but the decision id) with and without the shadow; {answers['status_200']} "
        "of them 200 on the server without it",
        f"- p99 with the shadow / without: {r['p99_ratio']:.3f} pooled (goal ≤ "
        f"{r['goal_p99_ratio']:.2f}: {met}); per round "
        + ", ".join(f"{x:.2f}" for x in r["p99_ratio_rounds"])
        + f" (median {r['p99_ratio_median_round']:.2f}); throughput ratio {r['rps_ratio']:.3f}",
        f"- the shadow logged {shadow['rows_logged']:,} rows (counter "
        f"{shadow['scored']:,.0f}), dropped {shadow['dropped']:,.0f} offers on a full "
        f"queue, {shadow['failures']:,.0f} failures",
        f"- load average when the run started: {r.get('machine', {}).get('load_average', '—')}"
        " (a shared machine): where the rounds' ratios spread widely, other processes, not "
        "the shadow, set the p99; the servers' CPU per request is the steadier measure of "
        "the shadow's cost",
        "",
    ]

"""Online speed: POST /v1/risk/scores for one customer under load, beside a bare FastAPI endpoint.

Setup (:func:`benchmarks.world.prepare_world`): simulate a population, ingest it into a SQLite event store,
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

Modules: :mod:`benchmarks.online.load` (the load generator and the request bodies),
:mod:`benchmarks.online.servers` (the servers, started and loaded in rounds),
:mod:`benchmarks.online.in_process` (the splits and the ASGI calls) and
:mod:`benchmarks.online.report` (the notes and the RESULTS.md section); the world they
measure is :mod:`benchmarks.world`'s.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.online.in_process import in_process_asgi, in_process_split, in_process_split_served
from benchmarks.online.load import BNPL_PATH, CONCURRENCY, generate_load, request_bodies
from benchmarks.online.report import notes, results_section
from benchmarks.online.servers import ROUNDS, WORKERS, load_test
from benchmarks.world import prepare_world, prepare_world_in_child, refresh_rows, world_as_of

__all__ = [
    "BNPL_PATH",
    "CONCURRENCY",
    "ROUNDS",
    "WORKERS",
    "generate_load",
    "in_process_asgi",
    "in_process_split",
    "in_process_split_served",
    "load_test",
    "notes",
    "prepare_world",
    "prepare_world_in_child",
    "refresh_rows",
    "request_bodies",
    "results_section",
    "run",
    "world_as_of",
]


def run(quick: bool = False, world: Path | None = None) -> dict[str, Any]:
    """The online result document (``results/online.json``): the in-process figures, then
    the load against every endpoint, with the throughput ratios to the bare endpoint.

    ``world`` is a prepared data folder (:func:`benchmarks.world.prepare_world`); without
    one a world is built in a temporary folder. ``quick`` shortens the load (a smoke run).
    """
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
        "notes": notes(load, split_served, asgi),
    }

"""In-process costs, without sockets or the load generator: the route's steps timed one
customer at a time (:func:`in_process_split` computes from the events,
:func:`in_process_split_served` reads a serving row and logs the decision), and the whole
app driven as direct ASGI calls (:func:`in_process_asgi`) beside the bare app.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import stats
from benchmarks.online.load import BNPL_PATH, request_bodies


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


def _action(bundle: Any, p: float, reasons: list[Any]) -> Any:
    from models.policy import ACTION_TEXTS
    from service.schemas import ActionOut

    action = bundle.policy.action(p, reasons)
    channel, en, nl = ACTION_TEXTS[action]
    return ActionOut(action=action.value, channel=channel, text_en=en, text_nl=nl)


def _result_json(bundle: Any, cid: str, p: float, reasons: list[Any]) -> str:
    """The response item the route would send, serialised."""
    from service.schemas import RiskReasonOut, RiskResult

    return RiskResult(
        customer_id=cid,
        probability=p,
        band=bundle.policy.band(p).value,
        early_warning=bool(p >= bundle.policy.early_warning_threshold),
        reasons=[RiskReasonOut.of(r) for r in reasons],
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
    from service.bundle_loader import load_checked_bundle
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
    from service.bundle_loader import load_checked_bundle
    from service.decision_log import Decision, DecisionLog, feature_dict, new_decision_id
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

    bodies = request_bodies(customer_ids, as_of)
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

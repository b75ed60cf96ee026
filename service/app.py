"""The FastAPI app factory: ``create_app(settings)``; uvicorn calls it once per worker.

Start-up (the lifespan) opens the event store and the decision log, loads the bundle
fully and checked, then ``gc.freeze()``\\s everything loaded so far: the collector stops
scanning the long-lived model objects (a 60 ms pause became none, ARCHITECTURE.md).

The app starts even when something is missing — no bundle published yet, a store that
does not answer: ``/readyz`` then says 503 and names it, and the routes that need it
answer 503 problem+json, never 500. ``POST /admin/reload`` can then bring the model in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.bundle_loader import load_checked_bundle, public_reason
from service.decision_log import DecisionLog
from service.deps import MODEL_VERSION_SCOPE_KEY
from service.docs import install_offline_docs
from service.errors import PROBLEM_JSON, ProblemType, install_error_handlers
from service.logging import configure_logging, error_fields
from service.metrics import Metrics
from service.openapi import keep_null_in_examples
from service.reload import ReloadAnnouncements, follow_announcements
from service.routes import affordability, bnpl, debit_date, decisions, events, ops, reports, risk
from service.settings import ServiceSettings
from service.shadow import load_shadow

log = structlog.get_logger("tijdig.service")


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app. ``settings`` default to the ``TIJDIG_*`` environment."""
    settings = settings or ServiceSettings()
    configure_logging()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _start(app, settings, metrics)
        gc.collect()
        gc.freeze()
        follower = None
        if app.state.announcements is not None:  # reloads taken by the other workers
            follower = asyncio.create_task(
                follow_announcements(
                    app.state, app.state.announcements, settings.reload_poll_seconds
                )
            )
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            _stop(app)

    app = FastAPI(
        title="tijdig",
        summary="Risk and affordability scoring for social collection (sociaal incasso)",
        version="0.1.0",
        lifespan=lifespan,
        # /docs and /redoc come from install_offline_docs (no CDN); all three are
        # restricted for production by configuration (public_docs)
        docs_url=None,
        redoc_url=None,
        **({} if settings.docs_are_public() else _NO_DOCS),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.reload_lock = threading.Lock()
    app.state.bundle = None
    app.state.bundle_error = "not loaded yet"
    app.state.bundle_reason = "not loaded yet"  # bundle_error fit for /readyz
    app.state.announcements = (
        ReloadAnnouncements(settings.reload_signal_file) if settings.reload_signal_file else None
    )
    app.state.generation = 0  # the announced reload this worker serves (service.reload)
    app.state.reload_behind = None  # a reload.Behind: an announced reload did not load here
    app.state.store = None
    app.state.store_error = "not opened yet"
    app.state.serving = None
    app.state.decision_log = None
    app.state.decision_log_error = "not opened yet"
    app.state.shadow = None  # a service.shadow.ShadowScorer when shadowing is on
    app.state.ingest_pool = None  # service.ingest_pool, when ingest_workers >= 1
    install_error_handlers(app)
    app.add_middleware(
        DeclaredSizeMiddleware,
        limits={"/v1/events": settings.max_ingest_bytes},
        default_limit=settings.max_request_bytes,
    )
    app.add_middleware(RequestLogMiddleware, metrics=metrics)  # outermost: sees every answer
    small = settings.max_request_bytes
    # A request is matched against the routers in this order, so the real-time routes
    # (checkout, early warning) come first: finding the first router's route takes 5 µs,
    # the last one's 27 µs (FastAPI's included-router matching; 1 Dec 2026).
    app.include_router(bnpl.router, max_body_size=small)
    app.include_router(risk.router, max_body_size=small)
    app.include_router(decisions.router, max_body_size=small)
    app.include_router(events.router, max_body_size=settings.max_ingest_bytes)
    app.include_router(ops.router, max_body_size=small)
    app.include_router(debit_date.router, max_body_size=small)
    app.include_router(affordability.router, max_body_size=small)
    app.include_router(reports.router, max_body_size=small)
    keep_null_in_examples(app)
    if settings.docs_are_public():
        install_offline_docs(app)
    return app


_NO_DOCS: dict[str, Any] = {"openapi_url": None}


def _start(app: FastAPI, settings: ServiceSettings, metrics: Metrics) -> None:
    from features.store import EventStore
    from models.serving import ServingRows

    state = app.state
    try:
        store = EventStore(settings.store_url)
        store.create_schema()
        state.store, state.store_error = store, None
        state.serving = ServingRows(store, enabled=settings.serving_rows)
    except Exception as exc:
        state.store, state.store_error = None, type(exc).__name__
        log.error("store_unavailable", **error_fields(exc))

    try:
        decision_log = DecisionLog(
            settings.decision_log_url, min_retention_days=settings.decision_log_retention_days
        ).open()
        purged = decision_log.purge_older_than(settings.decision_log_retention_days)
        state.decision_log, state.decision_log_error = decision_log, None
        if purged:
            log.info(
                "decision_log_purged",
                rows=purged,
                retention_days=settings.decision_log_retention_days,
            )
    except Exception as exc:
        state.decision_log, state.decision_log_error = None, type(exc).__name__
        log.error("decision_log_unavailable", **error_fields(exc))

    if settings.ingest_workers:
        from service.ingest_pool import IngestPool

        state.ingest_pool = IngestPool(
            settings.ingest_workers,
            max_batches=settings.ingest_worker_max_batches,
            nice=settings.ingest_worker_nice,
        )
        state.ingest_pool.warm()

    model_uri = settings.model_uri
    if state.announcements is not None:
        state.announcements.changed()  # what is there now is taken here, not followed later
        announced = state.announcements.read()
        if announced is not None:  # a worker started after a reload serves what it brought
            model_uri, state.generation = announced.model_uri, announced.generation
    started = time.perf_counter()
    try:
        bundle = load_checked_bundle(
            model_uri,
            settings.mlflow_tracking_uri,
            parse_timeout_s=settings.bundle_parse_timeout_seconds,
        )
    except Exception as exc:  # BundleError and anything else: start without a model
        state.bundle, state.bundle_error = None, f"{type(exc).__name__}: {exc}"
        state.bundle_reason = public_reason(exc)
        metrics.set_model(None, None)
        log.warning("no_model_loaded", model_uri=model_uri, **error_fields(exc))
    else:
        state.bundle, state.bundle_error, state.bundle_reason = bundle, None, None
        metrics.set_model(bundle.version, bundle.policy.version)
        log.info(
            "model_loaded",
            model_uri=model_uri,
            model_version=bundle.version,
            load_ms=round((time.perf_counter() - started) * 1000, 1),
            generation=state.generation,
        )
    state.shadow = load_shadow(settings, state.decision_log, metrics)


def _stop(app: FastAPI) -> None:
    state = app.state
    if state.shadow is not None:
        state.shadow.close()  # logs what is queued while the decision log is still open
        state.shadow = None
    if state.ingest_pool is not None:
        state.ingest_pool.close()  # after the batches being ingested
        state.ingest_pool = None
    if state.decision_log is not None:
        state.decision_log.close()  # flushes queued decisions first
        state.decision_log = None
    if getattr(state, "serving", None) is not None:
        state.serving.close()  # writes the rows still queued
        state.serving = None
    if state.store is not None:
        state.store.dispose()
        state.store = None
    state.bundle = None
    if state.metrics.multiprocess:  # drop this worker's live gauges from the shared files
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
    gc.unfreeze()


class DeclaredSizeMiddleware:
    """413 problem+json when ``Content-Length`` already says the body is too large.

    Bodies without a declared length are cut off by the routers' ``max_body_size`` while
    streaming (also a 413 problem). Checked here too because Starlette answers a declared
    oversize body with plain text.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int], default_limit: int) -> None:
        self.app = app
        self.limits = limits
        self.default_limit = default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = _content_length(scope)
            limit = self.limits.get(scope["path"], self.default_limit)
            if declared is not None and declared > limit:
                response = JSONResponse(
                    {
                        "type": ProblemType.PAYLOAD_TOO_LARGE.value,
                        "title": "Request body too large",
                        "status": 413,
                        "detail": f"the body is {declared:,} bytes; this endpoint accepts at "
                        f"most {limit:,}: split the batch",
                        "instance": scope["path"],
                    },
                    status_code=413,
                    media_type=PROBLEM_JSON,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestLogMiddleware:
    """One JSON log line and the Prometheus samples per HTTP request (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            log.info(
                "request",
                method=method,
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                model_version=scope.get(MODEL_VERSION_SCOPE_KEY),
            )

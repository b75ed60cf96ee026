"""Operations: liveness, readiness, Prometheus metrics and the bundle hot swap."""

from __future__ import annotations

import threading
from typing import Annotated

import structlog
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from models.bundle import BundleError
from service.deps import MetricsDep, SettingsDep, require_metrics_access, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.json_body import StrictJSONRoute
from service.logging import error_fields
from service.reload import record_reload, swap_bundle
from service.schemas import Health, Readiness, ReloadRequest, ReloadResult
from service.settings import Scope

router = APIRouter(tags=["operations"], route_class=StrictJSONRoute)
log = structlog.get_logger("tijdig.service")


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=problem_responses(503),
    summary="Readiness: a bundle is loaded and the event store and decision log answer",
)
def readyz(request: Request) -> Readiness:
    state = request.app.state
    checks: dict[str, str] = {}
    bundle = state.bundle
    # Unauthenticated: each check says what failed, never the error's text (paths, hosts,
    # database names); the full error is in the service log.
    checks["model"] = "ok" if bundle is not None else f"not loaded: {state.bundle_reason}"
    behind = state.reload_behind
    if bundle is not None and behind is not None:  # the siblings serve another bundle
        checks["model"] = (
            f"behind the other workers: reload {behind.generation} did not load "
            f"here ({behind.public_reason}); still serving {bundle.version}"
        )
    checks["store"] = _probe(
        lambda: state.store.known_customers(["__readyz__"]), state.store, state.store_error
    )
    checks["decision_log"] = _probe(
        lambda: state.decision_log.ping(), state.decision_log, state.decision_log_error
    )
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        raise ProblemError(
            503,
            ProblemType.NOT_READY,
            "Not ready",
            "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"),
            checks=checks,
            model_version=bundle.version if bundle is not None else None,
        )
    assert bundle is not None
    return Readiness(
        status="ready",
        model_version=bundle.version,
        policy_version=bundle.policy.version,
        checks=checks,
    )


def _probe(call: object, resource: object, error_type: str | None) -> str:
    """ "ok", or what failed in words and the error's type (its text goes to the log)."""
    if resource is None:
        return f"unavailable: could not be opened ({error_type or 'not opened'})"
    try:
        call()  # type: ignore[operator]
    except Exception as exc:
        log.warning("readiness_probe_failed", **error_fields(exc))
        return f"unavailable: {type(exc).__name__}"
    return "ok"


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(require_metrics_access)])
def metrics_endpoint(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.post(
    "/admin/reload",
    response_model=ReloadResult,
    dependencies=[Depends(require_scope(Scope.ADMIN))],
    responses=problem_responses(401, 403, 409, 422),
    summary="Load a bundle fully, check it, then swap it in (the old one keeps serving on failure)",
)
def reload_bundle(
    request: Request,
    settings: SettingsDep,
    body: Annotated[ReloadRequest | None, Body()] = None,
) -> ReloadResult:
    # sync route: loading a booster takes long; the threadpool keeps the loop serving
    uri = (body.model_uri if body and body.model_uri else None) or settings.model_uri
    state = request.app.state
    lock: threading.Lock = state.reload_lock
    if not lock.acquire(blocking=False):
        raise ProblemError(
            409,
            ProblemType.RELOAD_IN_PROGRESS,
            "Reload in progress",
            "another reload is running; retry when it has finished",
        )
    try:
        try:
            old, new, load_ms = swap_bundle(state, uri, settings.mlflow_tracking_uri)
        except BundleError as exc:
            log.warning("reload_refused", model_uri=uri, file=exc.file, **error_fields(exc))
            raise ProblemError(
                422,
                ProblemType.BUNDLE_REFUSED,
                "Bundle refused",
                f"{exc}; the current bundle keeps serving",
                model_uri=uri,
                file=exc.file,
            ) from exc
        generation = None
        if state.announcements is not None:  # the other workers swap at their next look
            generation = state.announcements.announce(uri)
        record_reload(state, old, new, uri, load_ms, generation)
    finally:
        lock.release()
    return ReloadResult(
        previous_version=old.version if old is not None else None,
        model_version=new.version,
        policy_version=new.policy.version,
        model_uri=uri,
        load_ms=round(load_ms, 1),
        generation=generation,
    )

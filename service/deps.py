"""Dependencies: routes get settings, store, bundle, decision log and the caller's key here.

Routes never reach for globals. :data:`BundleDep` grabs ``app.state.bundle`` **once** per
request, so a request that started before a hot swap finishes on the bundle it began
with (ARCHITECTURE.md, decision 3); it also tags the request with the model version for
the request log.

Every dependency here is ``async def`` on purpose: FastAPI runs a plain ``def``
dependency in the threadpool, and for these microsecond look-ups the thread hop (about
a dozen per request) cost more than the whole prediction.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from models.bundle import Bundle
from models.serving import ServingRows
from service.decision_log import DecisionLog
from service.errors import ProblemError, ProblemType
from service.metrics import Metrics
from service.settings import Scope, ServiceSettings

if TYPE_CHECKING:
    from features.store import EventStore

API_KEY_HEADER = "X-API-Key"
MODEL_VERSION_SCOPE_KEY = "tijdig.model_version"

_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


async def get_store(request: Request) -> EventStore:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise ProblemError(
            503,
            ProblemType.STORE_UNAVAILABLE,
            "Event store unavailable",
            "the event store could not be opened; see /readyz",
        )
    return store


async def get_serving(request: Request) -> ServingRows:
    """Serving rows over the open store (made here if a test swapped the store in)."""
    state = request.app.state
    store = await get_store(request)
    serving = getattr(state, "serving", None)
    if serving is None or serving.store is not store:
        serving = ServingRows(store, enabled=state.settings.serving_rows)
        state.serving = serving
    return serving


async def get_bundle(request: Request) -> Bundle:
    bundle: Bundle | None = request.app.state.bundle  # the one read of the reference
    if bundle is None:
        raise ProblemError(
            503,
            ProblemType.NO_MODEL,
            "No model loaded",
            "no model bundle is loaded; an operator must publish one and call /admin/reload",
        )
    request.scope[MODEL_VERSION_SCOPE_KEY] = bundle.version
    return bundle


async def get_decision_log(request: Request) -> DecisionLog:
    log = getattr(request.app.state, "decision_log", None)
    if log is None:
        raise ProblemError(
            503,
            ProblemType.DECISION_LOG_UNAVAILABLE,
            "Decision log unavailable",
            "decisions cannot be logged, so none are given; see /readyz",
        )
    return log


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StoreDep = Annotated["EventStore", Depends(get_store)]
BundleDep = Annotated[Bundle, Depends(get_bundle)]
DecisionLogDep = Annotated[DecisionLog, Depends(get_decision_log)]
ServingDep = Annotated[ServingRows, Depends(get_serving)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def _scopes_of(key: str, keys: dict[str, list[Scope]]) -> list[Scope] | None:
    # constant-time comparison against every configured key
    found: list[Scope] | None = None
    given = key.encode()
    for candidate, scopes in keys.items():
        if hmac.compare_digest(given, candidate.encode()):
            found = scopes
    return found


def require_scope(scope: Scope | str, *alternatives: Scope | str) -> Callable[..., Any]:
    """A dependency that admits callers whose ``X-API-Key`` carries ``scope`` (or any of
    the ``alternatives``): 401 problem+json when the key is missing or unknown, 403 when
    it lacks every one of them. Returns the scope that admitted the caller.
    """
    needed = Scope(scope)
    accepted = [needed, *(Scope(a) for a in alternatives)]

    async def check(
        settings: SettingsDep,
        api_key: Annotated[str | None, Security(_api_key_header)] = None,
    ) -> Scope:
        if not api_key:
            raise ProblemError(
                401,
                ProblemType.UNAUTHORIZED,
                "API key required",
                f"send an API key in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        scopes = _scopes_of(api_key, settings.api_keys)
        if scopes is None:
            raise ProblemError(
                401,
                ProblemType.UNAUTHORIZED,
                "Unknown API key",
                "the API key is not known",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        granted = [s for s in accepted if s in scopes]
        if not granted:
            names = " or ".join(repr(s.value) for s in accepted)
            raise ProblemError(
                403,
                ProblemType.FORBIDDEN,
                "Scope missing",
                f"this API key lacks the {names} scope",
            )
        return granted[0]

    check.__name__ = "require_scope_" + "_or_".join(s.value for s in accepted)
    return check

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

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from models.bundle import Bundle
from models.serving import ServingRows
from service.decision_log import DecisionLog
from service.errors import ProblemError, ProblemType
from service.metrics import Metrics
from service.settings import DEFAULT_CLIENT, ApiKey, Scope, ServiceSettings, grant_of

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
    """Serving rows over the open store (opened with it in the lifespan)."""
    await get_store(request)  # 503 problem when the store is not open
    serving: ServingRows = request.app.state.serving
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


def _grant_of(key: str, keys: dict[str, ApiKey | list[Scope]]) -> ApiKey | None:
    # constant-time comparison against every configured key
    found: ApiKey | None = None
    given = key.encode()
    for candidate, grant in keys.items():
        if hmac.compare_digest(given, candidate.encode()):
            found = grant_of(grant)
    return found


@dataclass(frozen=True)
class Caller:
    """Who is calling: the client (tenant) the API key acts for, every scope it holds,
    the scope that admitted this request and the key's :func:`api_key_id`."""

    client: str
    scopes: frozenset[Scope]
    granted: Scope
    api_key_id: str


def require_scope(scope: Scope | str, *alternatives: Scope | str) -> Callable[..., Any]:
    """A dependency that admits callers whose ``X-API-Key`` carries ``scope`` (or any of
    the ``alternatives``): 401 problem+json when the key is missing or unknown, 403 when
    it lacks every one of them. Returns the scope that admitted the caller.
    """
    accepted = [Scope(scope), *(Scope(a) for a in alternatives)]

    async def check(
        settings: SettingsDep,
        api_key: Annotated[str | None, Security(_api_key_header)] = None,
    ) -> Scope:
        return _authorise(settings, api_key, accepted).granted

    check.__name__ = "require_scope_" + "_or_".join(s.value for s in accepted)
    return check


def require_caller(scope: Scope | str, *alternatives: Scope | str) -> Callable[..., Any]:
    """:func:`require_scope`, returning the whole :class:`Caller` (client and scopes):
    for routes whose answer depends on whose key it is."""
    accepted = [Scope(scope), *(Scope(a) for a in alternatives)]

    async def check(
        settings: SettingsDep,
        api_key: Annotated[str | None, Security(_api_key_header)] = None,
    ) -> Caller:
        return _authorise(settings, api_key, accepted)

    check.__name__ = "require_caller_" + "_or_".join(s.value for s in accepted)
    return check


def _authorise(settings: ServiceSettings, api_key: str | None, accepted: list[Scope]) -> Caller:
    """The caller ``api_key`` admits (401 without or with an unknown key, 403 when it
    carries none of ``accepted``)."""
    if not api_key:
        raise ProblemError(
            401,
            ProblemType.UNAUTHORIZED,
            "API key required",
            f"send an API key in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    grant = _grant_of(api_key, settings.api_keys)
    if grant is None:
        raise ProblemError(
            401,
            ProblemType.UNAUTHORIZED,
            "Unknown API key",
            "the API key is not known",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    granted = [s for s in accepted if s in grant.scopes]
    if not granted:
        names = " or ".join(repr(s.value) for s in accepted)
        raise ProblemError(
            403,
            ProblemType.FORBIDDEN,
            "Scope missing",
            f"this API key lacks the {names} scope",
        )
    return Caller(grant.client, frozenset(grant.scopes), granted[0], api_key_id(api_key))


async def require_metrics_access(
    request: Request, api_key: Annotated[str | None, Security(_api_key_header)] = None
) -> None:
    """Admit anyone to ``/metrics`` when the settings make it public; otherwise only a key
    with the ``metrics`` or ``admin`` scope (401/403 problem+json)."""
    settings: ServiceSettings = request.app.state.settings
    if not settings.metrics_are_public():
        _authorise(settings, api_key, [Scope.METRICS, Scope.ADMIN])


@functools.lru_cache(maxsize=64)  # the configured keys are few; a hash per request is not needed
def api_key_id(api_key: str) -> str:
    """A short, stable id of an API key: the first 16 hex digits of its SHA-256. Names a
    client (e.g. whose idempotency keys these are) without storing or logging the key."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class ScoringContext:
    """Everything a scoring route needs, resolved by one dependency."""

    scope: Scope
    settings: ServiceSettings
    bundle: Bundle
    serving: ServingRows
    decision_log: DecisionLog
    metrics: Metrics
    #: :func:`api_key_id` of the API key that admitted the caller (the key compared
    #: equal to a configured one, so this is the id of that configured key).
    api_key_id: str = ""
    #: The client (tenant) the key acts for: its decisions are logged under it.
    client: str = DEFAULT_CLIENT
    #: The shadow challenger (a :class:`service.shadow.ShadowScorer`), None when off.
    shadow: Any = None


def scoring_context(scope: Scope | str) -> Callable[..., Any]:
    """One dependency for the real-time scoring routes: the API-key check of
    :func:`require_scope`, then bundle, serving rows, decision log, settings and metrics.

    Same answers and the same order of errors (401/403 before any 503) as the separate
    dependencies; FastAPI resolves one node instead of nine, which was about a fifth of
    the CPU of a served request (cProfile of the risk route, 2,000 requests).
    """
    accepted = [Scope(scope)]

    async def context(
        request: Request,
        api_key: Annotated[str | None, Security(_api_key_header)] = None,
    ) -> ScoringContext:
        state = request.app.state
        caller = _authorise(state.settings, api_key, accepted)
        bundle = await get_bundle(request)
        serving = await get_serving(request)
        decision_log = await get_decision_log(request)
        return ScoringContext(
            caller.granted,
            state.settings,
            bundle,
            serving,
            decision_log,
            state.metrics,
            caller.api_key_id,
            caller.client,
            state.shadow,
        )

    context.__name__ = f"scoring_context_{accepted[0].value}"
    return context

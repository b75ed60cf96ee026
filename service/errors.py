"""The one place that turns every error into RFC 9457 problem details.

Every error the service answers is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance`` (the request path); validation errors add an
``errors`` list naming each field (``loc``, ``msg``, ``type``). Problem types are an enum
with stable string values — clients branch on ``type``, people read ``title``/``detail``.

Input values are never echoed back (they may hold personal data or be huge).
"""

from __future__ import annotations

import traceback
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from service.json_body import DuplicateKeyError
from service.logging import error_fields

PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger("tijdig.service")


class ProblemType(StrEnum):
    """Stable problem identifiers (part of the API contract: never rename, only add)."""

    HTTP = "about:blank"  # a plain HTTP status, title = reason phrase
    VALIDATION = "urn:tijdig:problem:validation"
    UNAUTHORIZED = "urn:tijdig:problem:unauthorized"
    FORBIDDEN = "urn:tijdig:problem:forbidden"
    UNKNOWN_CUSTOMER = "urn:tijdig:problem:unknown-customer"
    UNKNOWN_DECISION = "urn:tijdig:problem:unknown-decision"
    NO_MODEL = "urn:tijdig:problem:no-model"
    NOT_READY = "urn:tijdig:problem:not-ready"
    STORE_UNAVAILABLE = "urn:tijdig:problem:store-unavailable"
    DECISION_LOG_UNAVAILABLE = "urn:tijdig:problem:decision-log-unavailable"
    INGEST_REJECTED = "urn:tijdig:problem:ingest-rejected"
    PAYLOAD_TOO_LARGE = "urn:tijdig:problem:payload-too-large"
    BUNDLE_REFUSED = "urn:tijdig:problem:bundle-refused"
    RELOAD_IN_PROGRESS = "urn:tijdig:problem:reload-in-progress"
    IDEMPOTENCY_CONFLICT = "urn:tijdig:problem:idempotency-conflict"
    INTERNAL = "urn:tijdig:problem:internal"
    NO_REPORT = "urn:tijdig:problem:no-report"
    REPORT_UNREADABLE = "urn:tijdig:problem:report-unreadable"
    INGEST_WORKER_LOST = "urn:tijdig:problem:ingest-worker-lost"


class Problem(BaseModel):
    """RFC 9457 problem details (the schema of every error body, for the OpenAPI document)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[ProblemType.UNKNOWN_CUSTOMER.value])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="validation errors: loc, msg, type (or table/row/column/check for ingest)",
    )


class ProblemError(Exception):
    """Raise anywhere in the service to answer with a problem; extra keys become members."""

    def __init__(
        self,
        status: int,
        type_: ProblemType,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.type = type_
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    type_: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request, exc.status, exc.type.value, exc.title, exc.detail, headers=exc.headers, **exc.extra
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 413:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)  # set by the route's body limit
        most = f"at most {limit:,} bytes" if isinstance(limit, int) else "less"
        return problem_response(
            request,
            413,
            ProblemType.PAYLOAD_TOO_LARGE.value,
            "Request body too large",
            f"the request body is larger than this endpoint accepts ({most}): split the batch",
        )
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's answer to a JSON body it could not even decode (bytes that are not
        # UTF-8, a key twice in one object, nesting past the parser's depth); JSON that
        # does not parse is already a 422 "json_invalid". Both are malformed input: the
        # same problem, naming the body.
        return await _validation_error(
            request,
            RequestValidationError(
                [
                    {
                        "loc": ("body",),
                        "msg": undecodable_message(exc.__cause__),
                        "type": "json_invalid",
                    }
                ]
            ),
        )
    return problem_response(
        request,
        exc.status_code,
        ProblemType.HTTP.value,
        _reason(exc.status_code),
        detail,
        headers=getattr(exc, "headers", None),
    )


def undecodable_message(cause: BaseException) -> str:
    """What is wrong with a body that could not be decoded as JSON at all (for people)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8 encoded JSON ({cause.reason} at byte {cause.start})"
    if isinstance(cause, DuplicateKeyError):
        key = cause.key if len(cause.key) <= 64 else cause.key[:61] + "..."
        return f"the key {key!r} appears more than once in one object of the body's JSON"
    if isinstance(cause, RecursionError):
        return "the body's JSON is nested too deeply"
    return f"the body could not be decoded as JSON ({type(cause).__name__})"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    names = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem_response(
        request,
        422,
        ProblemType.VALIDATION.value,
        "Request is not valid",
        f"{len(errors)} invalid field(s): {names}",
        errors=errors,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Must never happen: tests assert no route answers 500 to bad input.
    # The route template, never the raw path (ids in paths are personal data); the
    # message sanitised and the traceback's frames without the exception's text (a
    # database error's text carries the SQL and its parameters).
    route = getattr(request.scope.get("route"), "path", None) or "unmatched"
    log.error(
        "unhandled_error",
        route=route,
        traceback="".join(traceback.format_tb(exc.__traceback__)),
        **error_fields(exc),
    )
    return problem_response(
        request, 500, ProblemType.INTERNAL.value, "Internal error", "an unexpected error occurred"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json bodies for ``statuses``."""
    return {
        s: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": _reason(s)}
        for s in statuses
    }

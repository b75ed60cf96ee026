"""One ``POST /v1/events`` body from bytes to stored rows: decode, validate, store.

:func:`ingest_body` is the whole of the route's work after the body has been received,
written so that it can run anywhere: in the worker's threadpool (``ingest_workers = 0``) or
in a process of the app's ingest pool (:mod:`service.ingest_pool`), with the same answers.
It returns an :class:`IngestOutcome` — plain data that crosses a process boundary — and the
route turns it into the answer (:meth:`IngestOutcome.answer`).

The body is decoded and validated the way FastAPI does it for a route that declares
``batch: EventBatch`` (the route's form before the pool: the same 422 ``errors`` with the
same ``loc``, ``msg`` and ``type``), but here rather than on the event loop, which a
large batch would hold for seconds.
"""

from __future__ import annotations

import email.message
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from features.ingest import IngestRejected
from features.schemas import columns_of
from service.errors import ProblemError, ProblemType, undecodable_message
from service.json_body import loads_strict
from service.schemas import EventBatch, IngestResult, Row

if TYPE_CHECKING:
    from features.store import EventStore

__all__ = ["IngestOutcome", "ingest_body", "is_json_content_type"]

_NO_BODY = object()


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one batch: exactly one of ``result`` (the ``IngestResult`` document),
    ``field_errors`` (a 422 validation problem: ``loc``, ``msg``, ``type`` per error) or
    ``problem`` (``status``, ``type``, ``title``, ``detail`` and extra members)."""

    result: dict[str, Any] | None = None
    field_errors: list[dict[str, Any]] | None = None
    problem: dict[str, Any] | None = None

    def answer(self) -> IngestResult:
        """The route's answer: the result, or the error raised for the problem handler."""
        if self.field_errors is not None:
            raise RequestValidationError(self.field_errors)
        if self.problem is not None:
            p = dict(self.problem)
            raise ProblemError(
                p.pop("status"), ProblemType(p.pop("type")), p.pop("title"), p.pop("detail"), **p
            )
        assert self.result is not None
        return IngestResult.model_validate(self.result, from_attributes=False, strict=False)


def is_json_content_type(content_type: str | None) -> bool:
    """Whether FastAPI would parse a body of this type as JSON (``application/json`` or
    ``application/*+json``); without a type it does not (strict content type)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def ingest_body(
    store: EventStore, body: bytes, content_type: str | None, max_rows: int
) -> IngestOutcome:
    """Decode, validate and store one event batch (all or nothing, idempotent).

    ``body`` is the request body as received, ``content_type`` its header; ``max_rows``
    the most rows one batch may hold (more is a 413 problem). Store errors other than a
    rejected batch propagate (the route answers 500, as for any unexpected error).
    """
    decoded = _decode(body, content_type)
    if isinstance(decoded, IngestOutcome):
        return decoded
    if decoded is _NO_BODY:
        return IngestOutcome(
            field_errors=[{"loc": ("body",), "msg": "Field required", "type": "missing"}]
        )
    try:
        batch = EventBatch.model_validate(decoded, from_attributes=True)
    except ValidationError as exc:
        return IngestOutcome(field_errors=_with_body_loc(exc))
    del decoded
    if batch.row_count > max_rows:
        return IngestOutcome(
            problem={
                "status": 413,
                "type": ProblemType.PAYLOAD_TOO_LARGE.value,
                "title": "Batch too large",
                "detail": f"the batch has {batch.row_count:,} rows; at most {max_rows:,} "
                "per request: split the batch",
            }
        )
    frames = {table: _frame(table, rows) for table, rows in batch.tables().items()}
    del batch
    try:
        report = store.ingest(frames)
    except IngestRejected as exc:
        doc = exc.report.to_dict()
        return IngestOutcome(
            problem={
                "status": 422,
                "type": ProblemType.INGEST_REJECTED.value,
                "title": "Batch rejected",
                "detail": exc.report.summary(),
                "errors": doc["errors"],
                "error_count": doc["error_count"],
                "errors_truncated": doc["errors_truncated"],
            }
        )
    return IngestOutcome(result=report.to_dict())


def _decode(body: bytes, content_type: str | None) -> Any:
    """The body as FastAPI hands it to validation: parsed JSON, the bytes themselves (no
    JSON content type), ``_NO_BODY`` (empty), or the outcome for a body that is not JSON."""
    if not body:
        return _NO_BODY
    if not is_json_content_type(content_type):
        return body
    try:
        return loads_strict(body)
    except json.JSONDecodeError as exc:
        # as FastAPI words it: the position in the body, the parser's message dropped
        return IngestOutcome(
            field_errors=[
                {"loc": ("body", exc.pos), "msg": "JSON decode error", "type": "json_invalid"}
            ]
        )
    except Exception as exc:  # not UTF-8, a duplicate key, too deep: FastAPI's 400
        return IngestOutcome(
            field_errors=[
                {"loc": ("body",), "msg": undecodable_message(exc), "type": "json_invalid"}
            ]
        )


def _with_body_loc(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as the problem lists them, under ``body`` (no input echoed: it may
    be the whole batch, and it must cross a process boundary)."""
    return [
        {"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _frame(table: str, rows: list[Row]) -> pd.DataFrame:
    """Rows as a frame, one frame row per submitted row (so error rows match positions).

    Contract columns first, then unknown ones (kept, so the store names them); a key
    missing from a row is null there (as in JSON); a column missing from every row stays
    missing, so the store reports it.
    """
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    contract = [c for c in columns_of(table) if c in names]
    ordered = contract + [c for c in names if c not in contract]
    data = {c: [row.get(c) for row in rows] for c in ordered}
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)), columns=ordered)

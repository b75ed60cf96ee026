"""``POST /v1/events``: creditor systems send event batches (scope ``ingest``).

The route only receives the body; decoding, validation (pandera) and the write transaction
are :func:`service.ingest_batch.ingest_body`, run off the event loop: in the app's ingest
pool (:mod:`service.ingest_pool`, ``ingest_workers`` >= 1: another process, so a bulk
upload does not hold the interpreter that serves scores; the body is spooled to a
temporary file as it arrives) or in the worker's threadpool (``ingest_workers = 0``).
Either way the answer comes only after the rows are committed, and the errors are the
same: a 422 naming rows and columns, a 413 over ``max_ingest_rows``.

Size limits: the router is mounted with ``max_body_size=max_ingest_bytes`` (reading stops
at the limit, 413 naming it; a declared ``Content-Length`` over it is refused before any
byte is read). The API key is checked before the body is read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from service.deps import SettingsDep, StoreDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.ingest_batch import ingest_body
from service.ingest_pool import IngestPool, IngestWorkerLost, ingest_file
from service.json_body import StrictJSONRoute
from service.schemas import IngestResult
from service.settings import Scope

router = APIRouter(tags=["creditor systems"], route_class=StrictJSONRoute)

#: The request body as the route's OpenAPI entry documents it (the route reads the raw
#: body, so FastAPI cannot infer it; service.openapi adds the schema to the components).
EVENT_BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}},
        "required": True,
    }
}


@router.post(
    "/v1/events",
    response_model=IngestResult,
    dependencies=[Depends(require_scope(Scope.INGEST))],
    responses=problem_responses(401, 403, 413, 422, 503),
    summary="Ingest a batch of events (all or nothing, idempotent)",
    openapi_extra=EVENT_BATCH_BODY,
)
async def ingest_events(request: Request, store: StoreDep, settings: SettingsDep) -> IngestResult:
    content_type = request.headers.get("content-type")
    pool: IngestPool | None = request.app.state.ingest_pool
    if pool is None:
        body = await request.body()
        outcome = await run_in_threadpool(
            ingest_body, store, body, content_type, settings.max_ingest_rows
        )
        return outcome.answer()
    path = await _spool(request)
    try:
        outcome = await pool.run(
            ingest_file, settings.store_url, path, content_type, settings.max_ingest_rows
        )
    except IngestWorkerLost as exc:
        raise ProblemError(
            503,
            ProblemType.INGEST_WORKER_LOST,
            "Ingest process lost",
            "the process ingesting this batch ended before it answered; nothing is "
            "acknowledged: send the batch again (ingest is idempotent)",
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return outcome.answer()


async def _spool(request: Request) -> str:
    """Write the body to a temporary file as it arrives (the route's body limit applies);
    its path. Chunks are small (the server reads 64 KiB at a time): written on the loop."""
    fd, path = tempfile.mkstemp(prefix="tijdig-events-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path

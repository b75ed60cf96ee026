"""``POST /v1/events``: creditor systems send event batches (scope ``ingest``).

A sync route: validation (pandera) and the write transaction are long, blocking work,
so FastAPI runs it in its threadpool and the event loop keeps serving scores.
Size limits: the router is mounted with ``max_body_size=max_ingest_bytes`` (FastAPI stops
reading at the limit, 413 naming it; a declared ``Content-Length`` over it is refused before
any byte is read), and a parsed batch over ``max_ingest_rows`` rows is a 413 too. The body
is parsed in the worker that serves real-time scores, so large loads do not come here:
``tijdig ingest DIR`` reads a folder of Parquet/CSV files outside the service, or the
client sends several smaller batches (each one transaction, idempotent on resend).
"""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends

from features.schemas import columns_of
from features.store import IngestRejected
from service.deps import SettingsDep, StoreDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.json_body import StrictJSONRoute
from service.schemas import EventBatch, IngestResult, Row
from service.settings import Scope

router = APIRouter(tags=["creditor systems"], route_class=StrictJSONRoute)


@router.post(
    "/v1/events",
    response_model=IngestResult,
    dependencies=[Depends(require_scope(Scope.INGEST))],
    responses=problem_responses(401, 403, 413, 422, 503),
    summary="Ingest a batch of events (all or nothing, idempotent)",
)
def ingest_events(batch: EventBatch, store: StoreDep, settings: SettingsDep) -> IngestResult:
    if batch.row_count > settings.max_ingest_rows:
        raise ProblemError(
            413,
            ProblemType.PAYLOAD_TOO_LARGE,
            "Batch too large",
            f"the batch has {batch.row_count:,} rows; at most {settings.max_ingest_rows:,} "
            "per request: split the batch",
        )
    frames = {table: _frame(table, rows) for table, rows in batch.tables().items()}
    try:
        report = store.ingest(frames)
    except IngestRejected as exc:
        doc = exc.report.to_dict()
        raise ProblemError(
            422,
            ProblemType.INGEST_REJECTED,
            "Batch rejected",
            exc.report.summary(),
            errors=doc["errors"],
            error_count=doc["error_count"],
            errors_truncated=doc["errors_truncated"],
        ) from exc
    doc = report.to_dict()
    return IngestResult.model_validate(doc, from_attributes=False, strict=False)


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

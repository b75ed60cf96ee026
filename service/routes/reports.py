"""``GET /v1/reports/impact``: the latest impact report (scope ``collection``).

`tijdig report impact` measures the figures on the event store and writes
``<data_dir>/reports/impact.json``; this route serves that file as it stands, so a
report is as fresh as its last run (``observed_until`` says up to when). Until the
command has run there is none: 404 problem+json saying how to make one.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Depends
from pydantic import ValidationError

from service.deps import SettingsDep, require_scope
from service.errors import ProblemError, ProblemType, problem_responses
from service.json_body import StrictJSONRoute
from service.schemas import ImpactReportOut
from service.settings import Scope

router = APIRouter(tags=["collection"], route_class=StrictJSONRoute)

#: Where `tijdig report impact` writes by default, relative to the data dir.
IMPACT_REPORT_FILE = Path("reports") / "impact.json"


@router.get(
    "/v1/reports/impact",
    response_model=ImpactReportOut,
    dependencies=[Depends(require_scope(Scope.COLLECTION))],
    responses=problem_responses(401, 403, 404, 503),
    summary="The latest impact report: where invoices get paid, what collection costs",
)
def impact_report(settings: SettingsDep) -> ImpactReportOut:
    # sync route: a file read, off the event loop
    path = settings.data_dir / IMPACT_REPORT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemError(
            404,
            ProblemType.NO_REPORT,
            "No impact report yet",
            "no impact report has been written for this data dir; run "
            "`tijdig report impact` (it writes reports/impact.json in the data dir)",
        ) from None
    try:
        return ImpactReportOut.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:  # half-written, or not a report
        raise ProblemError(
            503,
            ProblemType.REPORT_UNREADABLE,
            "Impact report unreadable",
            "the impact report file cannot be read as a report (being rewritten?); retry, "
            "or run `tijdig report impact` again",
        ) from exc

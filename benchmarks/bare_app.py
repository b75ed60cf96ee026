"""The baseline for the online benchmark: a bare FastAPI endpoint with a similar JSON body.

Same request model shape as ``POST /v1/risk/scores`` and a response of similar size, no
store, no model, no middleware: what FastAPI + uvicorn cost on this machine in this run.
Served exactly like tijdig, by :func:`service.server.run_uvicorn` (one ``SO_REUSEPORT``
listener per worker): ``python -m benchmarks.bare_app PORT WORKERS``.
"""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI
from pydantic import BaseModel, Field


class Body(BaseModel):
    customer_ids: list[str] = Field(min_length=1)
    as_of: date | None = None
    explain: bool = True


class Reason(BaseModel):
    code: str
    feature: str
    value: float | None
    contribution: float
    text_en: str
    text_nl: str


class Result(BaseModel):
    customer_id: str
    probability: float
    band: str
    early_warning: bool
    reasons: list[Reason]
    decision_id: str


class Response(BaseModel):
    model_version: str
    policy_version: str
    as_of: date | None
    results: list[Result]


app = FastAPI()
_REASON = Reason(
    code="R01_LATE_PAYMENTS",
    feature="late_invoices_90d",
    value=2.0,
    contribution=0.41,
    text_en="Several recent invoices were paid late.",
    text_nl="Meerdere recente facturen zijn te laat betaald.",
)


@app.post("/v1/risk/scores", response_model=Response)
async def scores(body: Body) -> Response:
    results = [
        Result(
            customer_id=c,
            probability=0.12,
            band="low",
            early_warning=False,
            reasons=[_REASON, _REASON, _REASON],
            decision_id="00000000-0000-0000-0000-000000000000",
        )
        for c in body.customer_ids
    ]
    return Response(model_version="1", policy_version="bare", as_of=body.as_of, results=results)


if __name__ == "__main__":
    import sys

    from service.server import run_uvicorn

    run_uvicorn(
        "benchmarks.bare_app:app",
        factory=False,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=int(sys.argv[2]),
        log_level="warning",
    )

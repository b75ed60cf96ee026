"""Every operation of the OpenAPI document, fuzzed from the document itself (schemathesis).

The contract under test is the one the README promises callers: no input makes tijdig
answer 5xx; every status an operation can answer is documented; every body matches its
documented schema and media type (errors are ``application/problem+json``); input the
schema forbids is refused with a 4xx. Positive cases (schema-valid) often carry a real
customer id, so the success paths run too; negative cases break the schema on purpose
(wrong types, missing fields, bytes that are not JSON at all).

The app is the real one on a small simulated world with a trained bundle (every component
present), its own store and decision log. Hypothesis is derandomised: the same cases run
on every machine, so a failure here reproduces; ``TIJDIG_FUZZ_EXAMPLES`` raises the count
for a deeper run by hand (e.g. 1000).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from datetime import date
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import headers

EXAMPLES = int(os.environ.get("TIJDIG_FUZZ_EXAMPLES", "40"))
AS_OF = date(2026, 6, 1)  # inside the small simulated world (it ends 2026-07-01)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_client(settings, population, bundle_dir, tmp_path_factory):
    from fastapi.testclient import TestClient

    from features.store import EventStore
    from service.app import create_app

    folder = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'events.db'}"
    store = EventStore(url)
    store.create_schema()
    assert store.ingest(population.tables).accepted
    store.dispose()
    app = create_app(
        settings.model_copy(
            update={
                "store_url": url,
                "data_dir": folder,
                "model_uri": str(bundle_dir),
                "default_as_of": AS_OF,
                "decision_log_url": f"sqlite:///{folder / 'decisions.db'}",
            }
        )
    )
    # A 500 must come back as a response the checks see, not as an exception here.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def customer_ids(population) -> list[str]:
    return sorted(population.tables["customers"]["customer_id"].astype(str))[:50]


@pytest.fixture(scope="module")
def decision_ids(fuzz_client, customer_ids) -> list[str]:
    """Logged decisions to read and review (else every such case is a 404)."""
    r = fuzz_client.post(
        "/v1/risk/scores", json={"customer_ids": customer_ids[:10]}, headers=headers()
    )
    assert r.status_code == 200, r.text
    return [item["decision_id"] for item in r.json()["results"]]


def _with_real_ids(case: Any, customer_id: str, decision_id: str) -> None:
    """Point a generated case at a customer and a decision that exist (else nearly every
    case is a 404)."""
    path = case.path_parameters or {}
    if "customer_id" in path:
        path["customer_id"] = customer_id
    if "decision_id" in path:
        path["decision_id"] = decision_id
    body = case.body
    if isinstance(body, dict):
        if isinstance(body.get("customer_ids"), list):
            body["customer_ids"] = [customer_id]
        if "customer_id" in body:
            body["customer_id"] = customer_id
        if isinstance(body.get("customers"), list) and body["customers"]:  # debit dates
            first = body["customers"][0]
            body["customers"] = [
                {**(first if isinstance(first, dict) else {}), "customer_id": customer_id}
            ]
        body.pop("as_of", None)  # the app's default day, inside the world


def _fuzz(
    client: Any, operation: Any, mode: Any, customer_ids: list[str], decision_ids: list[str]
) -> dict[int, int]:
    """Run one operation's generated cases; the answers' status counts."""
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    statuses: dict[int, int] = {}

    @given(
        case=operation.as_strategy(generation_mode=mode),
        real=st.sampled_from([None, *customer_ids]),
        decision=st.sampled_from(decision_ids),
    )
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any, real: str | None, decision: str) -> None:
        if real is not None and mode is GenerationMode.POSITIVE:
            _with_real_ids(case, real, decision)
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers())
        with warnings.catch_warnings():
            # Numeric trouble on the request path (overflow, 0/0) is a bug even when the
            # answer looks fine; the filters are process-wide, so the app's thread sees it.
            warnings.simplefilter("error", RuntimeWarning)
            response = client.request(**kwargs)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", (
                case.as_curl_command()
            )
            assert response.json()["status"] == response.status_code
        case.validate_response(response, checks=checks)

    # Unsatisfiable: nothing to break in the schema (e.g. GET /healthz takes no input).
    with contextlib.suppress(Unsatisfiable):
        fuzz()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_breaks_the_documented_contract(fuzz_client, customer_ids, decision_ids, mode):
    schema = schemathesis.openapi.from_dict(fuzz_client.get("/openapi.json").json())
    failures: dict[str, str] = {}
    answered: dict[str, dict[int, int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            answered[operation.label] = _fuzz(
                fuzz_client, operation, mode, customer_ids, decision_ids
            )
        except BaseException as exc:  # schemathesis reports a group of failures
            failures[operation.label] = str(exc)[:3000]
    assert not failures, "\n\n".join(f"{op}:\n{text}" for op, text in failures.items())
    if mode is GenerationMode.POSITIVE:
        # The success paths ran too, not only the error answers.
        succeeded = {op for op, counts in answered.items() if any(s < 300 for s in counts)}
        assert {
            "POST /v1/risk/scores",
            "POST /v1/bnpl/decisions",
            "POST /v1/affordability",
            "POST /v1/debit-dates",
            "GET /v1/customers/{customer_id}/debit-date",
            "GET /v1/decisions/{decision_id}",
            "POST /v1/decisions/{decision_id}/review",
        } <= succeeded, answered

"""Every error is problem+json; no input makes the service answer 500; OpenAPI builds."""

from __future__ import annotations

import pytest

from tests.api.conftest import headers

K = headers()
JSON = {"content-type": "application/json"}

# (method, path, kwargs, expected status)
BAD_INPUTS = [
    ("POST", "/v1/risk/scores", {"content": b"{not json", "headers": {**K, **JSON}}, 422),
    ("POST", "/v1/risk/scores", {"content": b"", "headers": {**K, **JSON}}, 422),
    ("POST", "/v1/risk/scores", {"content": b"null", "headers": {**K, **JSON}}, 422),
    ("POST", "/v1/risk/scores", {"content": b"[]", "headers": {**K, **JSON}}, 422),
    # Bytes that are not UTF-8 and nesting past the parser's depth: malformed like the rest.
    ("POST", "/v1/risk/scores", {"content": b"\xff\xfe\x00", "headers": {**K, **JSON}}, 422),
    ("POST", "/v1/risk/scores", {"content": b"[" * 100_000, "headers": {**K, **JSON}}, 422),
    (
        "POST",
        "/v1/risk/scores",
        {"json": {"customer_ids": ["C-low-1"], "explain": "yes"}, "headers": K},
        422,
    ),
    (
        "POST",
        "/v1/risk/scores",
        {"content": b"customer_ids=1", "headers": {**K, "content-type": "text/plain"}},
        422,
    ),
    ("POST", "/v1/risk/scores", {"json": {"customer_ids": [None]}, "headers": K}, 422),
    ("POST", "/v1/risk/scores", {"json": {"customer_ids": [["nested"]]}, "headers": K}, 422),
    (
        "POST",
        "/v1/risk/scores",
        {"json": {"customer_ids": ["C-low-1"], "as_of": "2026-02-30"}, "headers": K},
        422,
    ),
    (
        "POST",
        "/v1/risk/scores",
        {"json": {"customer_ids": ["C-low-1"], "as_of": 20260101}, "headers": K},
        422,
    ),
    (
        "POST",
        "/v1/risk/scores",
        {"json": {"customer_ids": ["C-low-1"], "as_of": "2026-01-01T10:00:00"}, "headers": K},
        422,
    ),
    # Control characters in an id: a 422 naming the field (NUL was a 404 on SQLite and a
    # 500 or a 503 on PostgreSQL, which cannot store it).
    ("POST", "/v1/risk/scores", {"json": {"customer_ids": ["\u0000"]}, "headers": K}, 422),
    ("POST", "/v1/risk/scores", {"json": {"customer_ids": ["C-low-1\n"]}, "headers": K}, 422),
    (
        "POST",
        "/v1/risk/scores",
        {"json": {"customer_ids": ["'; DROP TABLE customers; --"]}, "headers": K},
        404,
    ),
    (
        "POST",
        "/v1/risk/scores",
        {"json": {"customer_ids": ["C-low-1"]}, "headers": {"X-API-Key": "x" * 10_000}},
        401,
    ),
    ("GET", "/v1/risk/scores", {"headers": K}, 405),
    ("GET", "/v1/no-such-route", {"headers": K}, 404),
    ("GET", "/v1/decisions/%00", {"headers": K}, 422),
    ("GET", "/v1/decisions/" + "9" * 5000, {"headers": K}, 422),
    ("POST", "/v1/events", {"content": b"{", "headers": {**K, **JSON}}, 422),
    ("POST", "/v1/events", {"json": [], "headers": K}, 422),
    ("POST", "/v1/events", {"json": {"customers": "all of them"}, "headers": K}, 422),
    ("POST", "/v1/events", {"json": {"customers": [1, 2]}, "headers": K}, 422),
    ("POST", "/v1/events", {"json": {"customers": [{}]}, "headers": K}, 422),
    (
        "POST",
        "/v1/events",
        {"json": {"invoices": [{"invoice_id": "i", "amount_cents": 1.5}]}, "headers": K},
        422,
    ),
    (
        "POST",
        "/v1/events",
        {
            "json": {
                "customers": [
                    {
                        "customer_id": "Z",
                        "household_type": "single",
                        "birth_year": None,
                        "declared_net_income_cents": None,
                        "created_at": "not a date",
                    }
                ]
            },
            "headers": K,
        },
        422,
    ),
    (
        "POST",
        "/v1/events",
        {
            "json": {
                "customers": [
                    {
                        "customer_id": "Z",
                        "household_type": "single",
                        "birth_year": 1e300,
                        "declared_net_income_cents": -1,
                        "created_at": "1800-01-01",
                    }
                ]
            },
            "headers": K,
        },
        422,
    ),
    (
        "POST",
        "/v1/events",
        {
            "json": {
                "payments": [
                    {
                        "payment_id": "p",
                        "customer_id": "ghost",
                        "invoice_id": "nope",
                        "paid_at": "2025-01-01",
                        "amount_cents": 100,
                        "method": "transfer",
                    }
                ]
            },
            "headers": K,
        },
        422,
    ),
    ("POST", "/admin/reload", {"json": {"model_uri": ""}, "headers": K}, 422),
    ("POST", "/admin/reload", {"json": {"model_uri": 5}, "headers": K}, 422),
    ("POST", "/admin/reload", {"json": {"model_uri": "/etc/passwd"}, "headers": K}, 422),
    ("POST", "/admin/reload", {"content": b"[1]", "headers": {**K, **JSON}}, 422),
]


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    BAD_INPUTS,
    ids=[f"{i}-{m}-{p[:30]}" for i, (m, p, _, _) in enumerate(BAD_INPUTS)],
)
# pandas warns while coercing an absurd number (a birth year of 1e300) before pandera
# reports it; the answer is the 422 this test checks
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_bad_input_is_a_problem_never_a_500(client, method, path, kwargs, status):
    r = client.request(method, path, **kwargs)
    assert r.status_code != 500
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(doc)
    assert doc["instance"].startswith("/")


def test_unexpected_errors_are_a_logged_500_problem(make_client, monkeypatch):
    from fastapi.testclient import TestClient

    c = make_client()
    c = TestClient(c.app, raise_server_exceptions=False)

    def boom(*_a, **_k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("service.routes.risk.assess_state", boom)
    r = c.post("/v1/risk/scores", json={"customer_ids": ["C-low-1"]}, headers=headers())
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tijdig:problem:internal"
    assert "simulated" not in r.text  # internals are logged, not shown


def test_openapi_document_builds_and_names_the_contract(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path in (
        "/v1/risk/scores",
        "/v1/events",
        "/v1/decisions/{decision_id}",
        "/healthz",
        "/readyz",
        "/admin/reload",
    ):
        assert path in paths
    scores = paths["/v1/risk/scores"]["post"]
    assert "application/problem+json" in scores["responses"]["404"]["content"]
    assert "RiskScoresResponse" in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


_NUL_DECISION = "/v1/decisions/01a232ca-a784-7fa3-99ae-9c420313030f"
CONTROL_CHARACTERS = [
    ("POST", "/v1/risk/scores", {"customer_ids": ["C-low-1", "x\u0000"]}, ["customer_ids", 1]),
    (
        "POST",
        "/v1/bnpl/decisions",
        {
            "customer_id": "C-low-1\u0000",
            "order": {"amount_cents": 1000, "currency": "EUR"},
            "age_verification": {"verified": True},
        },
        ["customer_id"],
    ),
    (
        "POST",
        "/v1/affordability",
        {"customer_id": "C\u007f", "debt_amount_eur": 10},
        ["customer_id"],
    ),
    ("POST", "/v1/debit-dates", {"customers": [{"customer_id": "C\u001f"}]}, None),
    (
        "POST",
        f"{_NUL_DECISION}/review",
        {"reviewer": "ann\u0000", "outcome": "upheld", "reason": "ok"},
        ["reviewer"],
    ),
    (
        "POST",
        f"{_NUL_DECISION}/review",
        {"reviewer": "ann", "outcome": "upheld", "reason": "ok\u0000"},
        ["reason"],
    ),
    (
        "POST",
        "/v1/events",
        {
            "customers": [
                {
                    "customer_id": "Z\u0000",
                    "household_type": "single",
                    "birth_year": 1980,
                    "declared_net_income_cents": 100_000,
                    "created_at": "2024-01-01",
                }
            ]
        },
        ["customers"],
    ),
]


@pytest.mark.parametrize(
    "method, path, body, loc",
    CONTROL_CHARACTERS,
    ids=[f"{i}-{p[:30]}" for i, (_, p, _, _) in enumerate(CONTROL_CHARACTERS)],
)
def test_control_characters_are_a_422_naming_the_field(client, method, path, body, loc):
    r = client.request(method, path, json=body, headers=K)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    (error,) = r.json()["errors"]
    if loc is None:  # a nested item: the path through the body
        loc = ["customers", 0, "customer_id"]
    assert error["loc"] == ["body", *loc] and "control characters" in error["msg"]
    assert "\u0000" not in r.text  # the value is not echoed


def test_a_control_character_in_the_path_id_is_a_422(client):
    r = client.get("/v1/customers/C-low-1%00/debit-date", headers=K)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["path", "customer_id"]


def test_a_database_refusing_a_value_is_the_requests_fault_not_a_503():
    # A DB-API DataError (psycopg: "PostgreSQL text fields cannot contain NUL") said
    # "event store unavailable, retry" (503): retrying cannot help.
    import sqlalchemy as sa

    from features.store import StoreUnavailable
    from service.routes.common import _store_unavailable

    class DataError(Exception):  # the PEP 249 name every driver uses
        pass

    refused = sa.exc.DataError("SELECT ...", {}, DataError("text cannot contain NUL"))
    wrapped = StoreUnavailable("events could not be read (DataError)")
    wrapped.__cause__ = refused
    for exc in (refused, wrapped):
        problem = _store_unavailable(exc)
        assert problem.status == 422 and problem.type.value == "urn:tijdig:problem:validation"
        assert "NUL" not in (problem.detail or "")  # the database's message is not echoed
    down = sa.exc.OperationalError("SELECT ...", {}, Exception("connection refused"))
    assert _store_unavailable(down).status == 503


@pytest.mark.postgres
def test_a_nul_that_reaches_postgresql_is_a_422_not_a_503():
    import asyncio

    from features.store import EventStore
    from models.serving import ServingRows
    from service.errors import ProblemError
    from service.routes.common import from_store
    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("nul") as url:
        store = EventStore(url)
        try:
            store.create_schema()
            with pytest.raises(ProblemError) as caught:
                asyncio.run(from_store(ServingRows.events, ServingRows(store), ["x\u0000"]))
        finally:
            store.dispose()
    assert caught.value.status == 422, caught.value.detail


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_review_keeps_line_breaks_and_refuses_nul_on_both_back_ends(settings, tmp_path, backend):
    import contextlib

    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.fixtures.backends import fresh_postgres_database

    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'decisions.db'}"
            if backend == "sqlite"
            else stack.enter_context(fresh_postgres_database("review"))
        )
        app = create_app(settings.model_copy(update={"decision_log_url": url}))
        with TestClient(app) as c:  # closed (the log let go) before the database is dropped
            scored = c.post("/v1/risk/scores", json={"customer_ids": ["C-low-1"]}, headers=K)
            did = scored.json()["results"][0]["decision_id"]
            review = {"reviewer": "ann", "outcome": "upheld", "reason": "line one\r\n\tline two"}
            ok = c.post(f"/v1/decisions/{did}/review", json=review, headers=K)
            assert ok.status_code == 201, ok.text
            nul = c.post(
                f"/v1/decisions/{did}/review", json={**review, "reason": "a\u0000b"}, headers=K
            )
            assert nul.status_code == 422, nul.text
            kept = c.get(f"/v1/decisions/{did}", headers=K).json()["reviews"]
            assert [r["reason"] for r in kept] == [review["reason"]]

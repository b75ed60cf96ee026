"""Request bodies are read strictly: UTF-8 only, each key once, sizes named, no traceback."""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil

import pytest
from fastapi.routing import APIRoute

from service.json_body import StrictJSONRoute
from tests.api import factories
from tests.api.conftest import headers

JSON = {"content-type": "application/json"}
ADULT = '{"verified": true, "method": "idin", "birth_date": "1990-04-01"}'


def _order(client, age: str):
    raw = (
        '{"customer_id": "C-low-1", "order": {"amount_cents": 12000, "currency": "EUR"},'
        f' "age_verification": {age}, "as_of": "2026-01-15"}}'
    )
    return client.post(
        "/v1/bnpl/decisions", content=raw.encode(), headers={**headers("checkout"), **JSON}
    )


def test_a_key_given_twice_is_a_422_naming_the_key(client):
    """The last key won: an age 'verified: false' then 'true' was approved."""
    assert _order(client, ADULT).status_code == 200
    r = _order(client, '{"verified": false, "verified": true, "birth_date": "1990-04-01"}')
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["type"] == "urn:tijdig:problem:validation"
    assert doc["errors"][0]["loc"] == ["body"]
    assert "'verified' appears more than once" in doc["errors"][0]["msg"]


def test_a_key_given_twice_in_an_event_row_is_a_422(client):
    rows = factories.batch({"N-dup-1": False})
    raw = json.dumps(rows).replace('"amount_cents": ', '"amount_cents": 1, "amount_cents": ', 1)
    r = client.post("/v1/events", content=raw.encode(), headers={**headers("ingest"), **JSON})
    assert r.status_code == 422, r.text
    assert "'amount_cents' appears more than once" in r.json()["errors"][0]["msg"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_not_in_utf8_is_a_422(client, encoding):
    """json.loads on bytes guesses UTF-16 and UTF-32; the README promises UTF-8 only."""
    body = json.dumps({"customer_ids": ["C-low-1"]}).encode(encoding)
    r = client.post("/v1/risk/scores", content=body, headers={**headers(), **JSON})
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:tijdig:problem:validation"
    if encoding != "utf-16-le":  # without a byte order mark it is UTF-8 text full of NULs
        assert "not UTF-8" in r.json()["errors"][0]["msg"]


def test_utf8_with_a_byte_order_mark_is_still_read(client):
    body = b"\xef\xbb\xbf" + json.dumps({"customer_ids": ["C-low-1"]}).encode()
    r = client.post("/v1/risk/scores", content=body, headers={**headers(), **JSON})
    assert r.status_code == 200, r.text


def test_every_route_parses_strictly():
    import service.routes

    routes = []
    for info in pkgutil.iter_modules(service.routes.__path__):
        module = importlib.import_module(f"service.routes.{info.name}")
        if hasattr(module, "router"):
            routes += [r for r in module.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 10
    assert [r.path for r in routes if not isinstance(r, StrictJSONRoute)] == []


def test_an_integer_beyond_64_bits_is_a_row_error_not_a_500(client):
    body = copy.deepcopy(factories.batch({"N-big-1": False}))
    body["invoices"][2]["amount_cents"] = 2**70
    r = client.post("/v1/events", json=body, headers=headers("ingest"))
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["type"] == "urn:tijdig:problem:ingest-rejected"
    assert ("invoices", 2, "amount_cents") in {
        (e["table"], e["row"], e["column"]) for e in doc["errors"]
    }


def test_an_oversized_event_batch_is_a_413_naming_the_limit(make_client):
    limit = 4096
    body = json.dumps(factories.batch({"N-size-1": False})).encode()
    assert len(body) > limit
    client = make_client(max_ingest_bytes=limit)
    declared = client.post("/v1/events", content=body, headers={**headers("ingest"), **JSON})
    streamed = client.post(
        "/v1/events",
        content=iter([body[:1000], body[1000:]]),
        headers={**headers("ingest"), **JSON},
    )
    for r in (declared, streamed):
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:tijdig:problem:payload-too-large"
        assert "4,096" in r.json()["detail"]

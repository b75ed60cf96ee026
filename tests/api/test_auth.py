"""API keys and scopes: 401 without a known key, 403 without the scope."""

from __future__ import annotations

import pytest

from tests.api.conftest import headers

SCORE = ("POST", "/v1/risk/scores", {"customer_ids": ["C-low-1"]})
INGEST = ("POST", "/v1/events", {"customers": []})
RELOAD = ("POST", "/admin/reload", None)
DECISION = ("GET", "/v1/decisions/6f1d3c1e-5b8e-4c55-9a43-2f4f4e0f7a11", None)

PROTECTED = [SCORE, INGEST, RELOAD, DECISION]


def call(client, route, hdrs):
    method, path, body = route
    return client.request(method, path, json=body, headers=hdrs)


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r[1])
@pytest.mark.parametrize(
    "hdrs", [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}], ids=["none", "empty", "wrong"]
)
def test_missing_or_unknown_key_is_401(client, route, hdrs):
    r = call(client, route, hdrs)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "ApiKey"
    assert r.json()["type"] == "urn:tijdig:problem:unauthorized"


@pytest.mark.parametrize(
    "route, role",
    [
        (SCORE, "ingest"),
        (SCORE, "admin"),
        (INGEST, "collection"),
        (RELOAD, "collection"),
        (DECISION, "ingest"),
    ],
    ids=lambda x: x if isinstance(x, str) else x[1],
)
def test_key_without_the_scope_is_403(client, route, role):
    r = call(client, route, headers(role))
    assert r.status_code == 403
    assert r.json()["type"] == "urn:tijdig:problem:forbidden"


def test_key_with_the_scope_passes(client):
    assert call(client, SCORE, headers("collection")).status_code == 200
    assert call(client, INGEST, headers("ingest")).status_code == 200


def test_production_refuses_the_development_key():
    from pydantic import ValidationError

    from service.settings import ServiceSettings

    with pytest.raises(ValidationError, match="refused when env=production"):
        ServiceSettings(env="production")
    ok = ServiceSettings(env="production", api_keys={"s3cr3t-long-key": ["collection"]})
    assert list(ok.api_keys) == ["s3cr3t-long-key"]


def test_settings_read_the_environment(monkeypatch, tmp_path):
    from service.settings import ServiceSettings

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIJDIG_API_KEYS", '{"k1": ["ingest", "admin"]}')
    monkeypatch.setenv("TIJDIG_MAX_BATCH_CUSTOMERS", "")  # empty = default
    s = ServiceSettings()
    assert s.store_url == f"sqlite:///{tmp_path.as_posix()}/events.db"
    assert s.decision_log_url.endswith("/decisions.db")
    assert s.api_keys == {"k1": ["ingest", "admin"]}
    assert s.max_batch_customers == 1000
    monkeypatch.setenv("TIJDIG_DECISION_LOG_RETENTION_DAYS", "30")
    with pytest.raises(ValueError, match="183"):
        ServiceSettings()

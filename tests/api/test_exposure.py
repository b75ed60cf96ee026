"""What an unauthenticated caller and the logs get to see: which check failed, never the
error's text; route templates, never raw paths; /metrics and the docs closable."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from service.logging import error_fields
from service.settings import Scope

SECRET_URL = "postgresql+psycopg://tijdig_svc:hunter2@127.0.0.1:5999/ledger_prod"


def test_readyz_names_the_failed_checks_without_hosts_ports_databases_or_paths(
    make_client, tmp_path, capsys
):
    missing_bundle = tmp_path / "bundles" / "champion-folder"
    c = make_client(
        store_url=SECRET_URL, decision_log_url=SECRET_URL, model_uri=str(missing_bundle)
    )
    r = c.get("/readyz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["store"].startswith("unavailable")
    assert checks["decision_log"].startswith("unavailable")
    assert checks["model"].startswith("not loaded")
    for secret in ("127.0.0.1", "5999", "ledger_prod", "tijdig_svc", "hunter2", "champion-folder"):
        assert secret not in r.text, secret
    logged = capsys.readouterr().out
    assert "store_unavailable" in logged and "hunter2" not in logged  # the text is logged


def test_database_errors_are_logged_without_sql_parameters_or_passwords():
    exc = sa.exc.OperationalError(
        "SELECT * FROM decisions WHERE customer_id = ?",
        ("C-123456",),
        Exception(f"could not connect to {SECRET_URL}"),
    )
    fields = error_fields(exc)
    assert fields["error_type"] == "OperationalError"
    assert "C-123456" not in fields["error"] and "SELECT" not in fields["error"]
    assert "hunter2" not in fields["error"] and "127.0.0.1:5999" in fields["error"]


def test_an_unexpected_error_is_logged_under_the_route_template(client, monkeypatch, capsys):
    from fastapi.testclient import TestClient

    decision_id = "01a24ea0-aa17-735e-8004-3138f88b342f"
    params = {"customer_id": "C-" + "999"}  # not spelled out: the traceback shows this line

    def fail(*_args):
        raise sa.exc.ProgrammingError("SELECT secret", params, Exception("x"))

    monkeypatch.setattr(client.app.state.decision_log, "get", fail)
    capsys.readouterr()
    r = TestClient(client.app, raise_server_exceptions=False).get(
        f"/v1/decisions/{decision_id}", headers={"X-API-Key": "dev-key"}
    )
    assert r.status_code == 500
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (line,) = [x for x in lines if x["event"] == "unhandled_error"]
    assert line["route"] == "/v1/decisions/{decision_id}"
    assert decision_id not in json.dumps(line)
    assert "C-999" not in json.dumps(line)


PRODUCTION_KEYS = {
    "k-admin": [Scope.ADMIN],
    "k-metrics": [Scope.METRICS],
    "k-checkout": [Scope.CHECKOUT],
}


@pytest.mark.parametrize(
    ("overrides", "metrics_open", "docs_open"),
    [
        ({}, True, True),  # development: open
        ({"env": "production"}, False, False),
        ({"env": "production", "public_metrics": True, "public_docs": True}, True, True),
        ({"public_metrics": False, "public_docs": False}, False, False),
    ],
)
def test_metrics_and_docs_can_be_closed_by_configuration(
    make_client, overrides, metrics_open, docs_open
):
    c = make_client(api_keys=PRODUCTION_KEYS, **overrides)
    anonymous = c.get("/metrics")
    assert anonymous.status_code == (200 if metrics_open else 401)
    for key, allowed in (("k-metrics", True), ("k-admin", True), ("k-checkout", metrics_open)):
        r = c.get("/metrics", headers={"X-API-Key": key})
        assert r.status_code == (200 if allowed else 403), key
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert c.get(path).status_code == (200 if docs_open else 404), path

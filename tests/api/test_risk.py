"""POST /v1/risk/scores and GET /v1/decisions/{id}: the collection consumer's contract."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from features.build import FEATURE_NAMES
from tests.api.conftest import CUSTOMERS, headers

PROBLEM = "application/problem+json"


def score(client, body, role="collection"):
    return client.post("/v1/risk/scores", json=body, headers=headers(role))


def test_scores_one_customer_with_reasons_action_and_versions(client):
    r = score(client, {"customer_ids": ["C-risk-1"], "as_of": "2026-01-15"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_version"] == "test-v1"
    assert doc["policy_version"] == "risk-2026.11.1"
    assert doc["as_of"] == "2026-01-15"
    (res,) = doc["results"]
    assert res["customer_id"] == "C-risk-1"
    assert 0.0 <= res["probability"] <= 1.0
    assert res["band"] in {"low", "medium", "high", "very_high"}
    assert isinstance(res["early_warning"], bool)
    assert 1 <= len(res["reasons"]) <= 3
    assert set(res["reasons"][0]) == {
        "code",
        "feature",
        "value",
        "contribution",
        "text_en",
        "text_nl",
    }
    assert res["reasons"][0]["code"].startswith("R")
    assert set(res["recommended_action"]) == {"action", "channel", "text_en", "text_nl"}
    assert res["recommended_action"]["text_nl"]


def test_batch_keeps_request_order_and_logs_each_decision(client):
    ids = ["C-risk-2", "C-low-1", "C-risk-1", "C-low-2"]
    r = score(client, {"customer_ids": ids, "as_of": "2026-01-15"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["customer_id"] for x in results] == ids
    assert len({x["decision_id"] for x in results}) == 4
    for x in results:
        d = client.get(f"/v1/decisions/{x['decision_id']}", headers=headers("collection"))
        assert d.status_code == 200, d.text
        logged = d.json()
        assert logged["customer_id"] == x["customer_id"]
        assert logged["kind"] == "risk_score"
        assert logged["model_version"] == "test-v1"
        assert logged["as_of"] == "2026-01-15"
        assert logged["outputs"]["probability"] == x["probability"]
        assert logged["outputs"]["reasons"] == x["reasons"]
        assert logged["outputs"]["recommended_action"] == x["recommended_action"]
        assert logged["inputs"]["batch_size"] == 4
        assert list(logged["features"]) == list(FEATURE_NAMES)


def test_same_inputs_give_same_answer(client):
    body = {"customer_ids": ["C-risk-1"], "as_of": "2026-01-15"}
    a, b = score(client, body).json(), score(client, body).json()
    assert a["results"][0]["probability"] == b["results"][0]["probability"]
    assert a["results"][0]["decision_id"] != b["results"][0]["decision_id"]


def test_default_as_of_is_today(client):
    r = score(client, {"customer_ids": ["C-low-1"]})
    assert r.status_code == 200, r.text
    assert abs(date.fromisoformat(r.json()["as_of"]) - date.today()) <= timedelta(days=1)


def test_explain_false_gives_reasons_only_to_flagged(client):
    r = score(client, {"customer_ids": list(CUSTOMERS), "explain": False, "as_of": "2026-01-15"})
    assert r.status_code == 200, r.text
    for x in r.json()["results"]:
        assert bool(x["reasons"]) == x["early_warning"]


def test_unknown_customer_is_404_problem(client):
    r = score(client, {"customer_ids": ["nobody"]})
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    doc = r.json()
    assert doc["type"] == "urn:tijdig:problem:unknown-customer"
    assert doc["status"] == 404
    assert doc["instance"] == "/v1/risk/scores"
    assert doc["unknown_customer_ids"] == ["nobody"]


def test_batch_with_unknown_ids_is_404_naming_all_and_scores_nothing(client):
    r = score(client, {"customer_ids": ["C-low-1", "ghost-2", "C-risk-1", "ghost-1"]})
    assert r.status_code == 404
    assert r.json()["unknown_customer_ids"] == ["ghost-2", "ghost-1"]
    assert r.json()["detail"].startswith("2 of 4 customer ids")
    # counted against the whole request also when the known ids are served from rows
    # (the count was of the ids without one: "2 of 2")
    client.app.state.serving.refresh(client.app.state.bundle, date(2026, 6, 1))
    again = score(
        client,
        {"customer_ids": ["C-low-1", "ghost-2", "C-risk-1", "ghost-1"], "as_of": "2026-06-01"},
    )
    assert again.status_code == 404
    assert again.json()["detail"].startswith("2 of 4 customer ids"), again.json()["detail"]


def test_duplicate_ids_are_422(client):
    r = score(client, {"customer_ids": ["C-low-1", "C-low-1"]})
    assert r.status_code == 422
    doc = r.json()
    assert r.headers["content-type"] == PROBLEM
    assert doc["errors"][0]["loc"] == ["body", "customer_ids"]
    assert "distinct" in doc["errors"][0]["msg"]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({}, ["body", "customer_ids"]),
        ({"customer_ids": []}, ["body", "customer_ids"]),
        ({"customer_ids": "C-low-1"}, ["body", "customer_ids"]),
        ({"customer_ids": [123]}, ["body", "customer_ids", 0]),
        ({"customer_ids": [""]}, ["body", "customer_ids", 0]),
        ({"customer_ids": ["x" * 65]}, ["body", "customer_ids", 0]),
        ({"customer_ids": ["C-low-1"], "as_of": "tomorrowish"}, ["body", "as_of"]),
        ({"customer_ids": ["C-low-1"], "as_of": "1989-12-31"}, ["body", "as_of"]),
        ({"customer_ids": ["C-low-1"], "as_of": "2999-01-01"}, ["body", "as_of"]),
        ({"customer_ids": ["C-low-1"], "explain": "maybe"}, ["body", "explain"]),
        ({"customer_ids": ["C-low-1"], "surprise": 1}, ["body", "surprise"]),
    ],
)
def test_malformed_body_is_422_naming_the_field(client, body, loc):
    r = score(client, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    doc = r.json()
    assert doc["type"] == "urn:tijdig:problem:validation"
    assert loc in [e["loc"] for e in doc["errors"]]


def test_as_of_tomorrow_is_allowed(client):
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert score(client, {"customer_ids": ["C-low-1"], "as_of": tomorrow}).status_code == 200


def test_too_many_customers_is_422(client, settings):
    ids = [f"id-{i}" for i in range(settings.max_batch_customers + 1)]
    r = score(client, {"customer_ids": ids})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "customer_ids"]


def test_unknown_decision_is_404_and_bad_id_422(client):
    r = client.get("/v1/decisions/6f1d3c1e-5b8e-4c55-9a43-2f4f4e0f7a11", headers=headers())
    assert r.status_code == 404
    assert r.json()["type"] == "urn:tijdig:problem:unknown-decision"
    r = client.get("/v1/decisions/not-a-uuid", headers=headers())
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["path", "decision_id"]

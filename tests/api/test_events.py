"""POST /v1/events: validated, all-or-nothing, idempotent ingest."""

from __future__ import annotations

import copy

from tests.api import factories
from tests.api.conftest import headers


def ingest(client, body, role="ingest"):
    return client.post("/v1/events", json=body, headers=headers(role))


def test_accepted_batch_reports_counts_and_can_be_scored(client):
    body = factories.batch({"N-new-1": False, "N-new-2": True})
    r = ingest(client, body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["accepted"] is True
    expected = sum(len(v) for v in body.values())
    assert doc["received"] == doc["inserted"] == expected
    assert doc["tables"]["customers"] == {
        "received": 2,
        "inserted": 2,
        "duplicates": 0,
        "conflicts": 0,
    }
    assert doc["tables"]["invoices"]["inserted"] == 24
    s = client.post(
        "/v1/risk/scores", json={"customer_ids": ["N-new-1", "N-new-2"]}, headers=headers()
    )
    assert s.status_code == 200, s.text


def test_resending_a_batch_changes_nothing(client):
    body = factories.batch({"N-idem-1": True})
    first = ingest(client, body).json()
    second = ingest(client, body)
    assert second.status_code == 200, second.text
    doc = second.json()
    assert doc["inserted"] == 0
    assert doc["duplicates"] == first["inserted"] == first["received"]


def test_rejected_batch_is_422_naming_row_and_column_and_writes_nothing(client):
    body = factories.batch({"N-bad-1": False, "N-bad-2": False})
    body = copy.deepcopy(body)
    body["invoices"][3]["amount_cents"] = -5
    body["payments"][1]["method"] = "cash-in-a-bag"
    r = ingest(client, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["type"] == "urn:tijdig:problem:ingest-rejected"
    where = {(e["table"], e["row"], e["column"]) for e in doc["errors"]}
    assert ("invoices", 3, "amount_cents") in where
    assert ("payments", 1, "method") in where
    for e in doc["errors"]:
        assert set(e) >= {"table", "row", "column", "check", "value", "message"}
    # nothing was written: the good customers are still unknown
    s = client.post("/v1/risk/scores", json={"customer_ids": ["N-bad-1"]}, headers=headers())
    assert s.status_code == 404


def test_missing_and_unknown_columns_are_named(client):
    body = factories.batch({"N-col-1": False})
    del body["customers"][0]["household_type"]
    body["invoices"][0]["colour"] = "blue"
    r = ingest(client, body)
    assert r.status_code == 422
    cols = {(e["table"], e["column"]) for e in r.json()["errors"]}
    assert ("customers", "household_type") in cols
    assert ("invoices", "colour") in cols


def test_unknown_table_and_nested_values_are_422(client):
    r = ingest(client, {"customers": [], "bank_statements": [{"x": 1}]})
    assert r.status_code == 422
    assert ["body", "bank_statements"] in [e["loc"] for e in r.json()["errors"]]
    r = ingest(client, {"customers": [{"customer_id": {"nested": True}}]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][:4] == ["body", "customers", 0, "customer_id"]


def test_too_many_rows_is_413(client, settings):
    rows = [{"customer_id": f"X{i}"} for i in range(settings.max_ingest_rows + 1)]
    r = ingest(client, {"customers": rows})
    assert r.status_code == 413
    assert r.json()["type"] == "urn:tijdig:problem:payload-too-large"


def test_body_over_the_byte_limit_is_413_problem(make_client):
    c = make_client(max_ingest_bytes=4096)
    body = factories.batch({"N-big-1": False})  # ~10 kB of JSON
    r = c.post("/v1/events", json=body, headers=headers("ingest"))
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tijdig:problem:payload-too-large"
    r = c.post("/v1/risk/scores", json={"customer_ids": ["x" * 60] * 20_000}, headers=headers())
    assert r.status_code == 413


def test_customer_attributes_are_ingested_and_special_category_columns_refused(client):
    body = factories.batch({"N-attr-1": False})
    body["customer_attributes"] = [
        {
            "attribute_id": "N-attr-1-a",
            "customer_id": "N-attr-1",
            "effective_date": "2024-01-02",
            "birth_year": 1984,
            "declared_net_income_cents": 250_000,
            "household_type": "couple",
            "employment": "self_employed",
            "application_date": "2024-01-01",
        },
        {
            "attribute_id": "N-attr-1-b",
            "customer_id": "N-attr-1",
            "effective_date": "2024-07-01",
            "birth_year": None,
            "declared_net_income_cents": 150_000,
            "household_type": None,
            "employment": "unemployed",
            "application_date": None,
        },
    ]
    r = ingest(client, body)
    assert r.status_code == 200, r.text
    assert r.json()["tables"]["customer_attributes"]["inserted"] == 2
    sensitive = copy.deepcopy(body)
    sensitive["customer_attributes"][1]["attribute_id"] = "N-attr-1-c"
    sensitive["customer_attributes"][1]["health"] = "good"
    r = ingest(client, sensitive)
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert (error["table"], error["column"], error["check"]) == (
        "customer_attributes",
        "health",
        "special_category",
    )

"""``GET /v1/customers/{id}/debit-date`` and ``POST /v1/debit-dates`` (scope collection)."""

from __future__ import annotations

import shutil
from datetime import date

import numpy as np
import pytest

from tests.api.conftest import CUSTOMERS, headers

AS_OF = "2026-01-15"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def bundle_with_component(api_dir, bundle_v1):
    """bundle_v1 plus a small debit-failure component (synthetic, monotone in days since pay)."""
    from features.income_timing import FEATURE_NAMES
    from models.bundle import write_manifest
    from training.debit_failure import DebitRows, fit_debit_failure

    def rows(n: int, seed: int) -> DebitRows:
        rng = np.random.default_rng(seed)
        X = np.full((n, len(FEATURE_NAMES)), np.nan)
        since = rng.integers(0, 31, n).astype(float)
        X[:, 0], X[:, 1], X[:, 2] = since, 30 - since, since / 30
        y = (rng.random(n) < 1 / (1 + np.exp(-(-4 + 0.15 * since)))).astype(float)
        return DebitRows(X, y, np.zeros(n, np.int64), np.arange(n))

    folder = api_dir / "bundle-debit"
    if not folder.exists():
        shutil.copytree(bundle_v1, folder)
        fit_debit_failure(rows(4000, 1), rows(2000, 2), {"num_threads": 1}).save(
            folder / "debit_failure"
        )
        write_manifest(folder)  # the component is part of the bundle's record
    return folder


@pytest.fixture(scope="module")
def debit_client(bundle_with_component, settings):
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(
        create_app(settings.model_copy(update={"model_uri": str(bundle_with_component)}))
    ) as c:
        yield c


def test_single_customer_answer(debit_client):
    cid = "C-risk-1"
    r = debit_client.get(
        f"/v1/customers/{cid}/debit-date", params={"as_of": AS_OF}, headers=headers("collection")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_id"] == cid and body["model_version"] == "test-v1"
    assert body["as_of"] == AS_OF
    assert set(body["income"]) == {
        "pattern",
        "pay_day_of_month",
        "confidence",
        "source",
        "income_receipts",
        "next_expected_pay",
    }
    assert body["current"] is not None and 1 <= body["current"]["day_of_month"] <= 31
    assert 0 <= body["current"]["expected_failure_rate"] <= 1
    assert 1 <= body["suggested"]["day_of_month"] <= 28
    assert body["suggested"]["rule_en"] and body["suggested"]["rule_nl"]
    pre = body["pre_notification"]
    assert pre["days"] == 14
    assert date.fromisoformat(pre["effective_from"]) >= date(2026, 1, 29)
    assert pre["next_dates"][0] == pre["effective_from"]
    assert body["reasons"] and all(
        x["code"] and x["text_en"] and x["text_nl"] for x in body["reasons"]
    )
    if not body["change"]:
        assert body["suggested"]["day_of_month"] == body["current"]["day_of_month"]

    logged = debit_client.get(f"/v1/decisions/{body['decision_id']}", headers=headers())
    assert logged.status_code == 200
    assert logged.json()["kind"] == "debit_date"


def test_parameters_change_the_answer(debit_client):
    r = debit_client.get(
        "/v1/customers/C-low-1/debit-date",
        params={
            "as_of": AS_OF,
            "current_day": 3,
            "pre_notification_days": 30,
            "amount_cents": 25_000,
        },
        headers=headers(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["current"]["day_of_month"] == 3
    assert body["pre_notification"]["days"] == 30
    assert date.fromisoformat(body["pre_notification"]["effective_from"]) >= date(2026, 2, 14)


def test_batch_answers_every_customer_in_order(debit_client):
    ids = list(CUSTOMERS)
    body = {"customers": [{"customer_id": i} for i in ids], "as_of": AS_OF}
    body["customers"][0]["current_day"] = 28
    r = debit_client.post("/v1/debit-dates", json=body, headers=headers("collection"))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["customer_id"] for x in results] == ids
    assert results[0]["current"]["day_of_month"] == 28
    assert len({x["decision_id"] for x in results}) == len(ids)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/v1/customers/nobody/debit-date", {"params": {"as_of": AS_OF}}),
        (
            "post",
            "/v1/debit-dates",
            {
                "json": {
                    "customers": [{"customer_id": "C-low-1"}, {"customer_id": "nobody"}],
                    "as_of": AS_OF,
                }
            },
        ),
    ],
)
def test_unknown_customers_are_404_problems(debit_client, method, path, kwargs):
    r = getattr(debit_client, method)(path, headers=headers(), **kwargs)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "urn:tijdig:problem:unknown-customer"
    assert r.json()["unknown_customer_ids"] == ["nobody"]


@pytest.mark.parametrize(
    "params",
    [
        {"current_day": 0},
        {"current_day": 32},
        {"pre_notification_days": -1},
        {"pre_notification_days": 91},
        {"amount_cents": 0},
        {"as_of": "not-a-date"},
        {"as_of": "1900-01-01"},
    ],
)
def test_bad_parameters_are_422_problems(debit_client, params):
    r = debit_client.get("/v1/customers/C-low-1/debit-date", params=params, headers=headers())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "urn:tijdig:problem:validation"


@pytest.mark.parametrize(
    "body",
    [
        {"customers": []},
        {"customers": [{"customer_id": "C-low-1"}, {"customer_id": "C-low-1"}]},
        {"customers": [{"customer_id": "C-low-1", "current_day": 40}]},
        {"customers": [{"customer_id": "C-low-1"}], "unexpected": 1},
        {"customers": [{"customer_id": f"C{i}"} for i in range(51)]},  # settings: at most 50
    ],
)
def test_bad_batches_are_422_problems(debit_client, body):
    r = debit_client.post("/v1/debit-dates", json=body, headers=headers())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)


def test_scope_is_collection(debit_client):
    r = debit_client.get("/v1/customers/C-low-1/debit-date", headers=headers("ingest"))
    assert r.status_code == 403
    assert debit_client.get("/v1/customers/C-low-1/debit-date").status_code == 401


def test_a_bundle_without_the_component_is_a_503_problem(client):
    r = client.get("/v1/customers/C-low-1/debit-date", params={"as_of": AS_OF}, headers=headers())
    assert r.status_code == 503
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["title"] == "Model without debit-failure component"


def test_as_of_before_the_business_calendar_can_answer_is_a_422_naming_the_first_day(
    debit_client,
):
    # The suggestion reads collection dates from the month before the first month the
    # change can reach; the TARGET2 calendar starts 1 January 1990, so January 1990
    # was a 500 ("day outside the business calendar").
    from models.calendar import FIRST_YEAR

    first = date(FIRST_YEAR, 2, 1).isoformat()
    late_january = date(FIRST_YEAR, 1, 31).isoformat()
    h = headers("collection")
    get = debit_client.get(
        "/v1/customers/C-risk-1/debit-date",
        params={"as_of": late_january, "pre_notification_days": 0},
        headers=h,
    )
    post = debit_client.post(
        "/v1/debit-dates",
        json={
            "customers": [{"customer_id": "C-risk-1"}],
            "as_of": late_january,
            "pre_notification_days": 0,
        },
        headers=h,
    )
    for r, loc in ((get, ["query", "as_of"]), (post, ["body", "as_of"])):
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM
        (error,) = r.json()["errors"]
        assert error["loc"] == loc and first in error["msg"]
    ok = debit_client.get(
        "/v1/customers/C-risk-1/debit-date",
        params={"as_of": first, "pre_notification_days": 0},
        headers=h,
    )
    assert ok.status_code == 200, ok.text

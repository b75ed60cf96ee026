"""The OpenAPI document as a client generator reads it.

One schema per name (a generator cannot hold two ``ReasonOut`` types and drops what uses
them), and a Python client generated with openapi-python-client parses every endpoint's
documented example and a real answer of the service into its typed model.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest
from attrs import fields, has

import service.schemas
from tests.api import factories
from tests.api.conftest import headers

GENERATE_TIMEOUT_S = 180
CLIENT_PACKAGE = "tijdig_generated_client"
AS_OF = "2026-01-15"


def _operations(document: dict[str, Any]) -> dict[str, str]:
    """``"METHOD path"`` -> the component schema of its success answer."""
    out = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            (ok,) = [v for k, v in operation["responses"].items() if k.startswith("2")]
            ref = ok["content"]["application/json"]["schema"]["$ref"]
            out[f"{method.upper()} {path}"] = ref.rsplit("/", 1)[1]
    return out


def _unknown_keys(value: Any, where: str = "") -> list[str]:
    """Keys of ``value`` (a parsed client model) that its type does not declare: the
    generated models keep them aside in ``additional_properties`` instead of failing."""
    if has(type(value)):
        declared = [f.name for f in fields(type(value)) if f.name != "additional_properties"]
        found = [f"{where}.{k}" for k in value.additional_properties] if declared else []
        for name in declared:
            found += _unknown_keys(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, list):
        return [k for i, item in enumerate(value) for k in _unknown_keys(item, f"{where}[{i}]")]
    return []


def _instants(value: Any) -> Any:
    """``value`` with date-times as instants: the client writes back ``+00:00`` where the
    service wrote ``Z``, the same time."""
    if isinstance(value, dict):
        return {k: _instants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_instants(v) for v in value]
    if isinstance(value, str) and len(value) > 10 and value[10:11] == "T":
        return datetime.fromisoformat(value)
    return value


def _parses_typed(models: ModuleType, schema: str, doc: dict[str, Any]) -> None:
    """``doc`` parses into the generated ``schema`` model, declares every key it has and
    writes back unchanged; the service's own response model accepts it too."""
    parsed = getattr(models, schema).from_dict(doc)
    assert _unknown_keys(parsed) == [], schema
    assert _instants(parsed.to_dict()) == _instants(doc), schema
    getattr(service.schemas, schema).model_validate(doc)


@pytest.fixture(scope="module")
def served(settings, bundle_dir) -> Iterator[Any]:
    """The app on the simulator-trained bundle: it has every component, so every
    endpoint can answer."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(settings.model_copy(update={"model_uri": str(bundle_dir)}))) as c:
        yield c


@pytest.fixture(scope="module")
def document(served) -> dict[str, Any]:
    r = served.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


@pytest.fixture(scope="module")
def client_models(document, tmp_path_factory) -> Iterator[ModuleType]:
    """The ``models`` module of a client generated from ``document``."""
    root = tmp_path_factory.mktemp("generated")
    spec, config = root / "openapi.json", root / "config.yaml"
    spec.write_text(json.dumps(document))
    config.write_text("post_hooks: []\n")  # no formatter run: the test reads the code only
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec)]
    command += ["--output-path", str(root / CLIENT_PACKAGE), "--config", str(config)]
    done = subprocess.run(
        [*command, "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=GENERATE_TIMEOUT_S,
        cwd=root,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    # a schema the generator cannot use is a warning, and the endpoints using it lose
    # their typed answer; none is acceptable
    assert "Warning" not in said, said
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(f"{CLIENT_PACKAGE}.models")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def test_no_two_component_schemas_share_a_name(document):
    # FastAPI qualifies a schema name with its module ("service__schemas__X") only when
    # two models share the class name; a client generator then meets two X types.
    names = list(document["components"]["schemas"])
    bare = [n.split("__")[-1] for n in names]
    assert sorted({b for b in bare if bare.count(b) > 1}) == []
    assert [n for n in names if "__" in n] == []


def test_every_endpoints_documented_example_parses_into_the_generated_client(
    document, client_models
):
    schemas = document["components"]["schemas"]
    for operation, schema in _operations(document).items():
        examples = schemas[schema].get("examples")
        assert examples, f"{operation}: {schema} documents no example"
        for example in examples:
            _parses_typed(client_models, schema, example)


def test_every_endpoints_real_answer_parses_into_the_generated_client(
    served, settings, document, client_models
):
    from tests.api.conftest import CUSTOMERS
    from training.reports.impact import impact_report, write_report

    collection, checkout = headers("collection"), headers("checkout")
    # what `tijdig report impact` writes into the data dir the service reads
    write_report(
        impact_report(factories.frames(factories.batch(CUSTOMERS))), settings.data_dir / "reports"
    )
    scored = served.post(
        "/v1/risk/scores", json={"customer_ids": ["C-risk-1"], "as_of": AS_OF}, headers=collection
    )
    decision_id = scored.json()["results"][0]["decision_id"]
    answers = {
        "POST /v1/risk/scores": scored,
        "POST /v1/bnpl/decisions": served.post(
            "/v1/bnpl/decisions",
            json={
                "customer_id": "C-risk-1",
                "order": {"amount_cents": 12_000, "currency": "EUR"},
                "age_verification": {"verified": True, "birth_date": "1990-05-01"},
                "as_of": AS_OF,
            },
            headers=checkout,
        ),
        "POST /v1/affordability": served.post(
            "/v1/affordability",
            json={"customer_id": "C-risk-1", "debt_amount_eur": 500, "as_of": AS_OF},
            headers=collection,
        ),
        "GET /v1/customers/{customer_id}/debit-date": served.get(
            "/v1/customers/C-low-1/debit-date", params={"as_of": AS_OF}, headers=collection
        ),
        "POST /v1/debit-dates": served.post(
            "/v1/debit-dates",
            json={"customers": [{"customer_id": "C-low-1"}], "as_of": AS_OF},
            headers=collection,
        ),
        "POST /v1/decisions/{decision_id}/review": served.post(
            f"/v1/decisions/{decision_id}/review",
            json={"reviewer": "r.devries", "outcome": "upheld", "reason": "history confirms it"},
            headers=headers("review"),
        ),
        "GET /v1/decisions/{decision_id}": served.get(
            f"/v1/decisions/{decision_id}", headers=collection
        ),
        # stored events sent again: an idempotent no-op with a full answer
        "POST /v1/events": served.post(
            "/v1/events", json=factories.batch({"C-low-1": False}), headers=headers("ingest")
        ),
        "GET /v1/reports/impact": served.get("/v1/reports/impact", headers=collection),
        "GET /healthz": served.get("/healthz"),
        "GET /readyz": served.get("/readyz"),
        "POST /admin/reload": served.post("/admin/reload", headers=headers("admin")),
    }
    operations = _operations(document)
    assert sorted(answers) == sorted(operations)  # a new endpoint needs its answer here
    for operation, r in answers.items():
        assert r.status_code in (200, 201), f"{operation}: {r.text}"
        _parses_typed(client_models, operations[operation], r.json())

"""Tenancy: a key reads only its own client's decisions, and of those only the kinds its
scopes cover; an auditor reads every client's, and each such read is logged.

The whole matrix — every key x every decision kind x every client — is one table.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from service.decision_log import Decision
from service.settings import Scope
from tests.api.decision_log.support import row

CLIENTS = ("shop-a", "shop-b", "default")
KINDS = {  # decision kind -> the scope that produced it
    "bnpl_decision": Scope.CHECKOUT,
    "risk_score": Scope.COLLECTION,
    "debit_date": Scope.COLLECTION,
    "affordability": Scope.COLLECTION,
}
#: key -> (client, scopes); "legacy-collection" is configured the old way (scopes alone).
KEYS = {
    "a-checkout": ("shop-a", [Scope.CHECKOUT]),
    "b-checkout": ("shop-b", [Scope.CHECKOUT]),
    "a-collection": ("shop-a", [Scope.COLLECTION]),
    "b-collection": ("shop-b", [Scope.COLLECTION]),
    "a-review": ("shop-a", [Scope.REVIEW]),
    "b-review": ("shop-b", [Scope.REVIEW]),
    "legacy-collection": ("default", [Scope.COLLECTION]),
    "auditor": ("regulator", [Scope.AUDITOR]),
}


def _config() -> dict[str, object]:
    return {
        key: scopes if key.startswith("legacy") else {"client": client, "scopes": scopes}
        for key, (client, scopes) in KEYS.items()
    }


def _may_read(key: str, client: str, kind: str) -> bool:
    own_client, scopes = KEYS[key]
    if Scope.AUDITOR in scopes:
        return True
    if client != own_client:
        return False
    return Scope.REVIEW in scopes or KINDS[kind] in scopes


@pytest.fixture(scope="module")
def tenants(settings):
    """An app with the keys of :data:`KEYS` and one decision per client and kind."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import ServiceSettings

    keys = ServiceSettings(api_keys=_config()).api_keys  # validated, as from the environment
    app = create_app(settings.model_copy(update={"api_keys": keys}))
    with TestClient(app) as c:
        logged: dict[tuple[str, str], Decision] = {
            (client, kind): replace(row(f"C-{client}"), kind=kind, client=client)
            for client in CLIENTS
            for kind in KINDS
        }
        c.app.state.decision_log.write(list(logged.values()))
        yield c, logged


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("key", list(KEYS))
def test_a_key_reads_only_its_clients_decisions_of_the_kinds_its_scopes_cover(
    tenants, key, client, kind
):
    c, logged = tenants
    decision = logged[(client, kind)]
    r = c.get(f"/v1/decisions/{decision.decision_id}", headers={"X-API-Key": key})
    if _may_read(key, client, kind):
        assert r.status_code == 200, r.text
        assert r.json()["decision_id"] == decision.decision_id
    else:  # the same answer as an unknown id: another client's ids cannot be probed
        assert r.status_code == 404, r.text
        assert r.json()["type"] == "urn:tijdig:problem:unknown-decision"
        assert "C-" not in r.text  # nothing of the decision leaks


@pytest.mark.parametrize("key", ["a-review", "b-review"])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_reviewer_reviews_only_their_own_clients_decisions(tenants, key, client):
    c, logged = tenants
    decision = logged[(client, "bnpl_decision")]
    r = c.post(
        f"/v1/decisions/{decision.decision_id}/review",
        json={"reviewer": "ann", "outcome": "upheld", "reason": "checked"},
        headers={"X-API-Key": key},
    )
    assert r.status_code == (201 if KEYS[key][0] == client else 404), r.text


def test_every_read_by_an_auditor_is_logged(tenants, capsys):
    c, logged = tenants
    decision = logged[("shop-a", "risk_score")]
    capsys.readouterr()
    assert c.get(
        f"/v1/decisions/{decision.decision_id}", headers={"X-API-Key": "auditor"}
    ).is_success
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (read,) = [x for x in lines if x["event"] == "decision_read_by_auditor"]
    assert read["decision_id"] == decision.decision_id
    assert (read["decision_client"], read["auditor_client"]) == ("shop-a", "regulator")


def test_a_pay_later_decision_is_logged_under_the_shop_that_asked(tenants):
    """Shop B read shop A's pay-later decision through GET /v1/decisions/{id}."""
    from tests.api.test_bnpl import body

    c, _ = tenants
    given = c.post("/v1/bnpl/decisions", json=body(), headers={"X-API-Key": "a-checkout"})
    assert given.status_code == 200, given.text
    decision_id = given.json()["decision_id"]
    assert c.app.state.decision_log.get(decision_id).client == "shop-a"
    assert c.get(f"/v1/decisions/{decision_id}", headers={"X-API-Key": "a-checkout"}).is_success
    r = c.get(f"/v1/decisions/{decision_id}", headers={"X-API-Key": "b-checkout"})
    assert r.status_code == 404


def test_two_shops_using_the_same_idempotency_key_get_their_own_decisions(tenants):
    c, _ = tenants
    key = str(uuid.uuid4())
    answers = [
        c.post(
            "/v1/bnpl/decisions",
            json=body_for_key(),
            headers={"X-API-Key": api_key, "Idempotency-Key": key},
        ).json()
        for api_key in ("a-checkout", "b-checkout", "a-checkout")
    ]
    a, b, a_again = answers
    assert b["decision_id"] != a["decision_id"] and not b["idempotent_replay"]
    assert a_again["decision_id"] == a["decision_id"] and a_again["idempotent_replay"]
    log = c.app.state.decision_log
    assert (log.get(a["decision_id"]).client, log.get(b["decision_id"]).client) == (
        "shop-a",
        "shop-b",
    )


def body_for_key() -> dict[str, object]:
    from tests.api.test_bnpl import body

    return body()


def test_an_export_per_client_holds_only_that_clients_decisions(tenants, tmp_path):
    c, _ = tenants
    path = tmp_path / "shop-b.jsonl"
    n = c.app.state.decision_log.export(path, client="shop-b")
    exported = [json.loads(x) for x in path.read_text().splitlines()]
    assert n == len(exported) >= len(KINDS)
    assert {x["client"] for x in exported} == {"shop-b"}


def test_keys_configured_with_scopes_alone_act_for_the_default_client():
    from service.settings import ApiKey, ServiceSettings, grant_of

    s = ServiceSettings(
        api_keys={"old": ["collection"], "new": {"client": "shop-a", "scopes": ["checkout"]}}
    )
    assert grant_of(s.api_keys["old"]) == ApiKey(client="default", scopes=(Scope.COLLECTION,))
    assert grant_of(s.api_keys["new"]) == ApiKey(client="shop-a", scopes=(Scope.CHECKOUT,))
    rebuilt = ServiceSettings.model_validate(json.loads(json.dumps(s.model_dump(mode="json"))))
    assert rebuilt.api_keys == s.api_keys  # what `tijdig serve` hands its workers

"""POST /v1/bnpl/decisions and decision review: the checkout consumer's contract."""

from __future__ import annotations

import uuid
from datetime import date

import numpy as np
import pytest

from models.bnpl import AgeCheck, decide
from models.bundle import Bundle
from tests.api.conftest import headers

PROBLEM = "application/problem+json"
ADULT = {"verified": True, "method": "idin", "birth_date": "1990-04-01"}


def order(client, body, key=None, role="checkout"):
    h = headers(role)
    if key:
        h["Idempotency-Key"] = key
    return client.post("/v1/bnpl/decisions", json=body, headers=h)


def body(customer_id="C-low-1", amount_cents=12_000, age=None, **extra):
    doc = {
        "order": {"amount_cents": amount_cents, "currency": "EUR"},
        "age_verification": age or ADULT,
        "as_of": "2026-01-15",
        **extra,
    }
    if customer_id is not None:
        doc["customer_id"] = customer_id
    return doc


def test_a_decision_has_offer_limit_reasons_versions_and_is_logged(client):
    r = order(client, body())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert isinstance(doc["offer"], bool) and doc["limit_eur"] >= 0
    assert doc["model_version"] == "test-v1" and doc["policy_version"].startswith("bnpl-")
    logged = client.get(f"/v1/decisions/{doc['decision_id']}", headers=headers("checkout")).json()
    assert logged["kind"] == "bnpl_decision" and logged["outputs"]["offer"] == doc["offer"]
    assert "birth_date" not in str(logged["inputs"])  # minimised: the age, not the birth date
    assert logged["inputs"]["age_years"] == 35


def test_a_decline_always_names_its_reasons_and_the_review_path(client):
    r = order(client, body(age={"verified": False}))
    doc = r.json()
    assert r.status_code == 200 and not doc["offer"]
    assert doc["reasons"][0]["code"] == "B01_AGE_NOT_VERIFIED" and doc["reasons"][0]["declines"]
    assert doc["reasons"][0]["text_nl"]
    assert doc["human_review"]["how"] == f"POST /v1/decisions/{doc['decision_id']}/review"


def test_a_new_customer_without_history_gets_a_starter_limit(client):
    doc = order(client, body(customer_id=None, amount_cents=5_000)).json()
    assert doc["offer"] and doc["thin_file"] and doc["probability"] is None
    assert [r["code"] for r in doc["reasons"]] == ["B08_THIN_FILE"]


def test_a_retry_with_the_same_key_returns_the_same_decision(client):
    key = str(uuid.uuid4())
    first = order(client, body(), key=key).json()
    again = order(client, body(), key=key).json()
    assert again["decision_id"] == first["decision_id"] and again["idempotent_replay"]
    assert {k: v for k, v in again.items() if k != "idempotent_replay"} == {
        k: v for k, v in first.items() if k != "idempotent_replay"
    }
    other = order(client, body(amount_cents=99_00), key=key)
    assert other.status_code == 409 and other.headers["content-type"].startswith(PROBLEM)
    assert (
        order(client, body(), key=str(uuid.uuid4())).json()["decision_id"] != first["decision_id"]
    )


def test_the_log_entry_reproduces_the_decision(client, bundle_v1):
    doc = order(client, body(customer_id="C-risk-1", amount_cents=30_000)).json()
    logged = client.get(f"/v1/decisions/{doc['decision_id']}", headers=headers("checkout")).json()
    bundle = Bundle.load(bundle_v1)
    row = np.array(
        [
            np.nan if logged["features"][n] is None else logged["features"][n]
            for n in bundle.feature_names
        ]
    )
    p = float(bundle.predict_proba(row[None, :])[0])
    assert p == pytest.approx(doc["probability"], abs=1e-12)
    inputs = logged["inputs"]
    replayed = decide(
        bundle.bnpl_policy,
        order_eur=inputs["order"]["amount_cents"] / 100,
        currency=inputs["order"]["currency"],
        age=AgeCheck(verified=True, birth_date=date(1990, 4, 1)),
        on=date.fromisoformat(logged["as_of"]),
        features=row,
        probability=p,
        open_case=inputs["open_collection_case"],
        risk_reasons=bundle.explain(row[None, :])[0],
    )
    assert replayed.offer == doc["offer"] and replayed.limit_eur == doc["limit_eur"]
    assert [r.code.value for r in replayed.reasons] == [r["code"] for r in doc["reasons"]]


@pytest.mark.parametrize("field", ["sex", "ethnicity", "religion", "health", "Gender"])
def test_special_category_data_are_refused_and_never_model_input(client, field):
    r = order(client, body(**{field: "x"}))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert "special-category" in r.text


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (body(amount_cents=0), "amount_cents"),
        (body(amount_cents=-5), "amount_cents"),
        (
            {"order": {"amount_cents": 100, "currency": "euro"}, "age_verification": ADULT},
            "currency",
        ),
        ({"order": {"amount_cents": 100, "currency": "EUR"}}, "age_verification"),
        (body(age={"verified": True, "birth_date": "2999-01-01"}), "birth_date"),
        (body(customer_id=""), "customer_id"),
        # Not coerced: 1, 0.0 or "true" are no answer to "was the age verified?"
        (body(age={"verified": 1}), "verified"),
        (body(age={"verified": "true"}), "verified"),
        (body(amount_cents=99.5), "amount_cents"),
        (body(amount_cents="100"), "amount_cents"),
        # A number is no day (pydantic alone reads 0 as 1 Jan 1970, a plausible birth date).
        (body(age={"verified": True, "birth_date": 0}), "birth_date"),
        (body(age={"verified": True, "birth_date": 1e-231}), "birth_date"),
    ],
)
def test_bad_orders_are_422_naming_the_field(client, doc, field):
    r = order(client, doc)
    assert r.status_code == 422, r.text
    assert field in r.text


def test_unknown_customer_is_404_and_wrong_scope_403(client):
    assert order(client, body(customer_id="nobody")).status_code == 404
    assert order(client, body(), role="collection").status_code == 403


def test_a_person_reviews_a_decline_and_the_review_is_kept(client):
    declined = order(client, body(age={"verified": False})).json()
    url = f"/v1/decisions/{declined['decision_id']}/review"
    review = {"reviewer": "agent-17", "outcome": "overturned", "reason": "age verified by phone"}
    assert client.post(url, json=review, headers=headers("checkout")).status_code == 403
    r = client.post(url, json=review, headers=headers("review"))
    assert r.status_code == 201, r.text
    logged = client.get(
        f"/v1/decisions/{declined['decision_id']}", headers=headers("review")
    ).json()
    assert [(x["reviewer"], x["outcome"]) for x in logged["reviews"]] == [
        ("agent-17", "overturned")
    ]
    bad = client.post(url, json={**review, "outcome": "maybe"}, headers=headers("review"))
    assert bad.status_code == 422 and "outcome" in bad.text
    missing = client.post(
        f"/v1/decisions/{uuid.uuid4()}/review", json=review, headers=headers("review")
    )
    assert missing.status_code == 404


def test_as_of_before_the_first_legal_table_is_a_422_naming_that_day(client):
    # A customer's decision applies the legal table in force on as_of: before the first
    # one there is none (the model raised "no legal table in force": a 500).
    from models.legal import legal_tables

    first = legal_tables()[0].effective_from
    day_before = date.fromordinal(first.toordinal() - 1).isoformat()
    for customer_id in ("C-low-1", None):  # one documented range, with or without history
        r = order(client, body(customer_id=customer_id, as_of=day_before))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM
        (error,) = r.json()["errors"]
        assert error["loc"] == ["body", "as_of"] and first.isoformat() in error["msg"]
    assert order(client, body(as_of=first.isoformat())).status_code == 200


def test_idempotency_keys_belong_to_the_api_key_that_used_them(client):
    # Two checkout clients (web shops) both use their order number as the key. Before,
    # the second got the first one's decision (same body) or a 409 (another body).
    same, other = (f"order-{uuid.uuid4().hex[:8]}" for _ in range(2))
    shop_a = order(client, body(), key=same, role="checkout").json()
    shop_b = order(client, body(), key=same, role="all")
    assert shop_b.status_code == 200, shop_b.text
    assert not shop_b.json()["idempotent_replay"]
    assert shop_b.json()["decision_id"] != shop_a["decision_id"]
    order(client, body(amount_cents=10_000), key=other, role="checkout")
    assert order(client, body(amount_cents=25_000), key=other, role="all").status_code == 200
    # each client's own retry still replays its own decision
    retry_a = order(client, body(), key=same, role="checkout").json()
    assert retry_a["idempotent_replay"] and retry_a["decision_id"] == shop_a["decision_id"]
    retry_b = order(client, body(), key=same, role="all").json()
    assert retry_b["idempotent_replay"] and retry_b["decision_id"] == shop_b.json()["decision_id"]
    # stored per API-key id, never the API key itself
    from sqlalchemy import select

    from service.decision_log import idempotency_keys
    from tests.api.conftest import KEYS

    with client.app.state.decision_log.engine.connect() as conn:
        scopes = set(
            conn.execute(select(idempotency_keys.c.scope).where(idempotency_keys.c.key == same))
            .scalars()
            .all()
        )
    assert len(scopes) == 2 and all(s.startswith("checkout:") for s in scopes)
    assert not any(KEYS[role] in s for s in scopes for role in ("checkout", "all"))


def test_a_decision_log_that_cannot_check_the_key_is_a_503(make_client, monkeypatch):
    from service.decision_log import DecisionLogUnavailable

    c = make_client()

    def down(*_args, **_kwargs):
        raise DecisionLogUnavailable("the decision log could not be read (OperationalError)")

    monkeypatch.setattr(c.app.state.decision_log, "decision_for_key", down)
    r = order(c, body(), key=str(uuid.uuid4()))
    assert r.status_code == 503, r.text
    assert r.json()["type"] == "urn:tijdig:problem:decision-log-unavailable"


# ------------------------------------------------- the key is bound with its decision


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_url(request, tmp_path):
    """A fresh decision log on each back end (PostgreSQL: skipped with the reason when no
    server answers). Ask for it before ``make_client``: the app closes first."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decisions.db'}"
        return
    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("bnpl") as url:
        yield url


def _logged_with_key(c, key):
    return [
        d
        for d in c.app.state.decision_log.iter_decisions()
        if d.inputs.get("idempotency_key") == key
    ]


def test_two_concurrent_retries_with_one_key_log_one_decision(log_url, make_client, monkeypatch):
    """Both retries pass the key check before either is logged (held at the log until
    both decided): exactly one decision is logged, and both callers get that one."""
    import asyncio
    import threading

    c = make_client(decision_log_url=log_url)
    decision_log = c.app.state.decision_log
    real_log = decision_log.log
    arrived: list[asyncio.Event] = []

    async def log_once_both_decided(rows, **kwargs):
        arrived.append(asyncio.Event())
        if len(arrived) == 2:
            arrived[0].set()
        else:
            await asyncio.wait_for(arrived[0].wait(), 5)
        return await real_log(rows, **kwargs)

    monkeypatch.setattr(decision_log, "log", log_once_both_decided)
    key = str(uuid.uuid4())
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(order(c, body(), key=key))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(arrived) == 2  # both went past the key check and decided
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    docs = [a.json() for a in answers]
    (logged,) = _logged_with_key(c, key)
    assert {d["decision_id"] for d in docs} == {logged.decision_id}
    assert sorted(d["idempotent_replay"] for d in docs) == [False, True]
    monkeypatch.undo()
    again = order(c, body(), key=key).json()
    assert again["decision_id"] == logged.decision_id and again["idempotent_replay"]


def _refuse_inserts(c, table, when):
    """A trigger that makes the log's database refuse some inserts into ``table``."""
    import sqlalchemy as sa

    engine = c.app.state.decision_log.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN {when} "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW "
                    f"WHEN ({when}) EXECUTE FUNCTION refuse()"
                )
            )


def test_a_key_that_cannot_be_bound_is_a_503_and_nothing_is_logged(log_url, make_client):
    """Binding the key and logging the decision commit together: when the binding fails
    the decision is not logged either (it was logged, and never given, and a 500)."""
    c = make_client(decision_log_url=log_url)
    _refuse_inserts(c, "idempotency_keys", "NEW.key LIKE 'refused-%'")
    before = c.app.state.decision_log.count()
    r = order(c, body(), key="refused-1")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "urn:tijdig:problem:decision-log-unavailable"
    assert c.app.state.decision_log.count() == before
    assert order(c, body(), key=str(uuid.uuid4())).status_code == 200  # other keys work


def test_a_decision_that_cannot_be_logged_leaves_its_key_free(log_url, make_client):
    """The decision's commit fails after its key was bound in the same transaction: the
    binding is rolled back with it, so a retry with the key decides afresh (no 409)."""
    import sqlalchemy as sa

    c = make_client(decision_log_url=log_url)
    _refuse_inserts(c, "decisions", "NEW.customer_id = 'C-risk-2'")
    key = str(uuid.uuid4())
    r = order(c, body(customer_id="C-risk-2"), key=key)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    with c.app.state.decision_log.engine.begin() as conn:
        conn.execute(
            sa.text(
                "DROP TRIGGER refuse_decisions" + ("" if "sqlite" in log_url else " ON decisions")
            )
        )
    retry = order(c, body(customer_id="C-low-2"), key=key)  # another request, same key
    assert retry.status_code == 200, retry.text
    assert not retry.json()["idempotent_replay"]
    assert [d.decision_id for d in _logged_with_key(c, key)] == [retry.json()["decision_id"]]
    assert order(c, body(customer_id="C-low-2"), key=key).json()["idempotent_replay"]


def test_a_decline_in_the_log_sticks_from_the_next_day_and_never_before(
    make_client, bundle_v1, tmp_path
):
    """The decline memory reads the creditor's own decision log: a decision on risk dated
    D declines the customer's orders from D + 1 (B11), not on D itself or before it. The
    shipped policy has no sticky declines (the evidence chose none), so this bundle's
    policy states bnpl-2026.12.1's: a decline on risk sticks for 90 days."""
    from dataclasses import replace

    import sqlalchemy as sa

    from models.bundle import Bundle
    from service.decision_log.records import decisions

    sticky = Bundle.load(bundle_v1)
    sticky.bnpl_policy = replace(
        sticky.bnpl_policy, sticky_codes=("B05_HIGH_RISK",), sticky_days=90
    )
    client = make_client(model_uri=str(sticky.save(tmp_path / "bundle-sticky")))
    d0 = date(2025, 12, 1)
    first = order(client, body(customer_id="C-low-2", as_of=d0.isoformat())).json()
    log = client.app.state.decision_log
    log.flush()
    with log.engine.begin() as conn:  # as if the model had declined it on risk
        outputs = conn.execute(
            sa.select(decisions.c.outputs).where(decisions.c.decision_id == first["decision_id"])
        ).scalar_one()
        outputs = {
            **outputs,
            "offer": False,
            "reasons": [{"code": "B05_HIGH_RISK", "declines": True, "text_en": "", "text_nl": ""}],
        }
        conn.execute(
            decisions.update()
            .where(decisions.c.decision_id == first["decision_id"])
            .values(outputs=outputs)
        )

    def codes(day: date) -> list[str]:
        doc = order(client, body(customer_id="C-low-2", as_of=day.isoformat())).json()
        return [r["code"] for r in doc["reasons"] if r["declines"]]

    assert "B11_RECENT_DECLINE" not in codes(d0)
    assert "B11_RECENT_DECLINE" not in codes(date(2025, 11, 30))
    assert "B11_RECENT_DECLINE" in codes(date(2025, 12, 2))
    later = order(client, body(customer_id="C-low-2", as_of="2025-12-20")).json()
    logged = client.get(f"/v1/decisions/{later['decision_id']}", headers=headers("checkout"))
    memory = logged.json()["inputs"]["decline_memory"]
    # four decisions before the day (on Nov 30, Dec 1 twice, Dec 2); the edited one on risk
    assert memory["declines_90d"] >= 2 and memory["risk_declines_90d"] >= 1
    assert 18 <= memory["days_since_risk_decline"] <= 20
    assert later["limit_raise"] is None and not later["offer"]


def test_a_bundle_s_pay_later_adjustment_applies_online_from_the_day_after_a_decline(
    make_client, bundle_v1, tmp_path
):
    """With a pay-later adjustment in the bundle the service logs the probability the
    cut-off applied to: the adjustment of the model's probability with the decline memory
    it read from its own log (the computation the loop runs), raised from the day after
    a decline on risk and never on that day or before."""
    import sqlalchemy as sa

    from models.bnpl_adjustment import BnplAdjustment
    from service.decision_log.records import decisions

    adjustment = BnplAdjustment(-4.0, 1.0, (0.5, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0))
    bundle = Bundle.load(bundle_v1)
    bundle.components["bnpl_adjustment"] = adjustment
    # its own decision log: no other test's decisions in the memory, no lock shared
    c = make_client(
        model_uri=str(bundle.save(tmp_path / "adjusted")),
        decision_log_url=f"sqlite:///{tmp_path / 'decisions.db'}",
    )

    def decided(day: date) -> tuple[dict, dict]:
        doc = order(c, body(customer_id="C-low-1", as_of=day.isoformat())).json()
        logged = c.get(f"/v1/decisions/{doc['decision_id']}", headers=headers("checkout"))
        return doc, logged.json()["inputs"]

    d0 = date(2025, 10, 1)
    first, inputs = decided(d0)
    memory = {k: (np.nan if v is None else v) for k, v in inputs["decline_memory"].items()}
    assert inputs["pay_later_probability"] == adjustment.adjust_one(first["probability"], memory)
    log = c.app.state.decision_log
    log.flush()
    with log.engine.begin() as conn:  # as if it had been declined on risk
        outputs = conn.execute(
            sa.select(decisions.c.outputs).where(decisions.c.decision_id == first["decision_id"])
        ).scalar_one()
        conn.execute(
            decisions.update()
            .where(decisions.c.decision_id == first["decision_id"])
            .values(
                outputs={
                    **outputs,
                    "offer": False,
                    "reasons": [
                        {"code": "B05_HIGH_RISK", "declines": True, "text_en": "", "text_nl": ""}
                    ],
                }
            )
        )
    _, same_inputs = decided(d0)
    assert same_inputs["decline_memory"]["risk_declines_90d"] == memory["risk_declines_90d"]
    assert same_inputs["pay_later_probability"] == inputs["pay_later_probability"]
    after, after_inputs = decided(date(2025, 10, 2))
    remembered = {
        k: (np.nan if v is None else v) for k, v in after_inputs["decline_memory"].items()
    }
    assert remembered["risk_declines_90d"] >= 1
    adjusted = after_inputs["pay_later_probability"]
    assert adjusted == adjustment.adjust_one(after["probability"], remembered)
    assert adjusted > after["probability"]

"""POST /v1/affordability: budget, plan with P(kept), referral; bad input is 422 naming the field."""

from __future__ import annotations

import pytest

from tests.api.conftest import headers

PROBLEM = "application/problem+json"
URL = "/v1/affordability"


@pytest.fixture(scope="module")
def plan_client(make_client_module):
    return make_client_module


@pytest.fixture(scope="module")
def make_client_module(settings, bundle_dir):
    from fastapi.testclient import TestClient

    from service.app import create_app

    c = TestClient(create_app(settings.model_copy(update={"model_uri": str(bundle_dir)})))
    c.__enter__()
    yield c
    c.__exit__(None, None, None)


def ask(client, body, role="collection"):
    return client.post(URL, json=body, headers=headers(role))


BODY = {
    "customer_id": "C-risk-1",
    "debt_amount_eur": 500,
    "as_of": "2026-01-15",
    "budget": {"net_income_eur": 1650, "housing_costs_eur": 650, "household_type": "single"},
}


def test_answer_names_budget_plan_versions_and_is_logged(plan_client):
    r = ask(plan_client, BODY)
    assert r.status_code == 200, r.text
    doc = r.json()
    b = doc["budget"]
    assert b["household_type"] == "single"
    assert b["income"]["method"] == "declared_by_caller"
    assert {"method", "confidence", "detail"} <= set(b["detected_income"])
    assert b["protected_minimum_eur"] > 0 and b["free_room_eur"] is not None
    assert doc["legal_table_version"].startswith("nl-")
    assert doc["plan_policy_version"] and doc["plan_model_version"] and doc["model_version"]
    assert doc["escalation"]["wik_costs_eur"] == 75.0  # WIK on EUR 500
    if doc["referral"]["refer_to_debt_help"]:
        assert doc["suggested_plan"] is None and doc["referral"]["reason"]
    else:
        plan = doc["suggested_plan"]
        # issue 20: P(kept) is no cut-off; plans run up to the policy's 24 months
        assert 0 < plan["p_kept"] <= 1 and plan["months"] <= 24
        assert plan["monthly_amount_eur"] * (plan["months"] - 1) + plan[
            "last_instalment_eur"
        ] == pytest.approx(500)
    got = plan_client.get(f"/v1/decisions/{doc['decision_id']}", headers=headers("collection"))
    assert got.status_code == 200, got.text
    assert got.json()["kind"] == "affordability"


def test_no_free_room_is_a_referral_with_reason(plan_client):
    body = {
        **BODY,
        "budget": {"net_income_eur": 900, "housing_costs_eur": 700, "household_type": "couple"},
    }
    doc = ask(plan_client, body).json()
    assert doc["referral"]["refer_to_debt_help"] is True
    assert doc["referral"]["reason"] == "no_free_room"
    assert doc["suggested_plan"] is None
    assert "schuldhulp" in doc["referral"]["text_nl"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"debt_amount_eur": 0}, "debt_amount_eur"),
        ({"debt_amount_eur": 0.004}, "debt_amount_eur"),  # rounds to no cents: was a 500
        ({"debt_amount_eur": -5}, "debt_amount_eur"),
        ({"debt_amount_eur": 5e9}, "debt_amount_eur"),
        ({"budget": {"household_type": "commune"}}, "household_type"),
        ({"budget": {"net_income_eur": -1}}, "net_income_eur"),
        ({"budget": {"housing_costs_eur": 1e12}}, "housing_costs_eur"),
    ],
)
def test_bad_input_is_422_naming_the_field(plan_client, patch, field):
    r = ask(plan_client, {**BODY, **patch})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    assert any(field in e["loc"] for e in r.json()["errors"])


def test_unknown_customer_is_404(plan_client):
    r = ask(plan_client, {**BODY, "customer_id": "nobody"})
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_bundle_without_plan_component_is_503_not_500(client):
    r = ask(client, BODY)
    assert r.status_code == 503
    assert r.headers["content-type"].startswith(PROBLEM)


def test_needs_collection_scope(plan_client):
    assert ask(plan_client, BODY, role="ingest").status_code == 403


def test_declared_money_is_taken_in_whole_cents(plan_client):
    """A declared income under a cent is no income (found by the schema fuzz test: 5e-324
    overflowed the P(kept) model's amount-to-income ratio)."""
    import warnings

    tiny = {**BODY, "budget": {"net_income_eur": 5e-324, "household_type": "single"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow was only a RuntimeWarning
        r = ask(plan_client, tiny)
    assert r.status_code == 200, r.text
    none = ask(plan_client, {**BODY, "budget": {"net_income_eur": 0, "household_type": "single"}})
    assert r.json()["budget"] == none.json()["budget"]


def test_as_of_runs_from_the_first_legal_table_to_tomorrow(plan_client):
    # Before the first legal table there is no protected minimum (was a 500); after
    # tomorrow it is a typo, as on every other route (9999-12-31 was accepted).
    from datetime import date

    from models.legal import legal_tables
    from service.schemas import today

    first = legal_tables()[0].effective_from
    for day in (
        date.fromordinal(first.toordinal() - 1),
        date.fromordinal(today().toordinal() + 2),
        date(9999, 12, 31),
    ):
        r = ask(plan_client, {**BODY, "as_of": day.isoformat()})
        assert r.status_code == 422, (day, r.text)
        assert r.headers["content-type"] == PROBLEM
        (error,) = r.json()["errors"]
        assert error["loc"] == ["body", "as_of"] and first.isoformat() in error["msg"]
    assert ask(plan_client, {**BODY, "as_of": first.isoformat()}).status_code == 200


def test_euros_become_cents_as_written_rounded_half_up():
    """0.285 * 100 is 28.4999... in binary floating point; ``round`` gave 28 cents."""
    from service.schemas import eur_to_cents

    assert [eur_to_cents(x) for x in (0.285, 1.005, 266.70, 100, 0.01, 5e-324)] == [
        29,
        101,
        26670,
        10000,
        1,
        0,
    ]


ROOMY = {**BODY, "budget": {**BODY["budget"], "net_income_eur": 2400}}


def test_a_plan_carries_its_pause_and_expected_figures(plan_client):
    doc = ask(plan_client, ROOMY).json()
    plan, net = doc["suggested_plan"], doc["safety_net"]
    assert plan is not None and not doc["referral"]["refer_to_debt_help"]
    assert net["pause_max_months"] >= 1 and net["pause_times"] >= 1
    assert 1 <= net["check_in_month"] <= plan["months"]
    assert f"{net['pause_max_months']} month" in net["text_en"]
    assert f"{net['pause_max_months']} maand" in net["text_nl"]
    assert doc["horizon_months"] >= plan["months"]
    for p in [plan, *doc["alternatives"]]:
        assert 0 < p["expected_repaid_eur"] <= 500
        assert 0 <= p["expected_costs_eur"] <= p["costs_if_broken_eur"]
    assert doc["debt_signals"]["income_below_protected_minimum"] is False


@pytest.mark.parametrize(
    "budget",
    [
        {"net_income_eur": 900, "housing_costs_eur": 700, "household_type": "couple"},
        {"net_income_eur": 1650, "housing_costs_eur": 650, "household_type": "single"},
        {"net_income_eur": 0, "household_type": "single"},
    ],
)
def test_every_referral_has_structural_reason_codes_with_both_texts(plan_client, budget):
    from models.plans import ReferralReason

    doc = ask(plan_client, {**BODY, "budget": budget}).json()
    referral = doc["referral"]
    assert referral["refer_to_debt_help"] and referral["reasons"]
    assert doc["suggested_plan"] is None and doc["safety_net"] is None
    codes = [r["code"] for r in referral["reasons"]]
    assert set(codes) <= {r.value for r in ReferralReason} and referral["reason"] == codes[0]
    assert all(
        r["text_en"] and r["text_nl"] and r["text_en"] != r["text_nl"] for r in referral["reasons"]
    )
    if budget["net_income_eur"] < doc["budget"]["protected_minimum_eur"]:
        assert "income_below_protected_minimum" in codes


@pytest.mark.parametrize("income", [1800, 2000, 2400, 4000])
@pytest.mark.parametrize("debt", [80, 500, 3000])
def test_the_suggestion_never_exceeds_the_capacity(plan_client, income, debt):
    body = {**BODY, "debt_amount_eur": debt, "budget": {**BODY["budget"], "net_income_eur": income}}
    from models.plans import PlanPolicy

    short = PlanPolicy.default().short_plan_max_months
    doc = ask(plan_client, body).json()
    budget = doc["budget"]
    for plan in filter(None, [doc["suggested_plan"], *doc["alternatives"]]):
        assert plan["monthly_amount_eur"] <= budget["maximum_capacity_eur"] + 1e-9
        if plan["months"] > short:  # short plans may use the maximum capacity, longer the standard
            assert plan["monthly_amount_eur"] <= budget["standard_capacity_eur"] + 1e-9

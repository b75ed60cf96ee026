"""Debit-failure model and debit-date suggestion: behaviour, thin evidence, persistence."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from features.events import EventArrays, from_day, to_day
from features.income_timing import FEATURE_NAMES
from models.calendar import target2
from models.debit_date import DebitDatePolicy, ReasonCode, suggest_debit_dates
from models.debit_failure import DebitFailureModel
from training.debit_failure import DebitRows, compare_components, fit_debit_failure

AS_OF = date(2026, 7, 1)


def _synthetic_rows(n: int, seed: int) -> DebitRows:
    """Failures rise with days since pay and with a bad history (the domain's shape)."""
    rng = np.random.default_rng(seed)
    X = np.full((n, len(FEATURE_NAMES)), np.nan)
    since = rng.integers(0, 31, n).astype(float)
    X[:, FEATURE_NAMES.index("days_since_pay")] = since
    X[:, FEATURE_NAMES.index("days_to_next_pay")] = 30 - since
    X[:, FEATURE_NAMES.index("pay_cycle_position")] = since / 30
    X[:, FEATURE_NAMES.index("debit_failure_rate_365d")] = rate = rng.beta(1, 8, n)
    X[:, FEATURE_NAMES.index("timing_confidence")] = 0.9
    X[:, FEATURE_NAMES.index("timing_pattern")] = 0
    X[:, FEATURE_NAMES.index("timing_source")] = 1
    z = -4.0 + 0.12 * since + 6 * rate
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return DebitRows(X, y, np.zeros(n, np.int64), np.arange(n))


@pytest.fixture(scope="module")
def model() -> DebitFailureModel:
    m = fit_debit_failure(_synthetic_rows(6000, 1), _synthetic_rows(3000, 2), {"num_threads": 1})
    assert m.informative
    return m


def _events(pay_dom: int | None, debit_dom: int, fail: bool, months: int = 12) -> EventArrays:
    cal = target2()
    inc, deb = [], []
    for k in range(months):
        y, m = divmod(2026 * 12 + 5 - k, 12)  # June 2026 backwards
        if pay_dom is not None:
            pay = from_day(int(cal.previous_business_day(to_day(date(y, m + 1, pay_dom)))))
            inc.append(
                {
                    "receipt_id": f"r{k}",
                    "customer_id": "c",
                    "received_at": pd.Timestamp(pay),
                    "amount_cents": 200_000,
                    "source": "salary",
                }
            )
        d = from_day(int(cal.next_business_day(to_day(date(y, m + 1, debit_dom)))))
        deb.append(
            {
                "attempt_id": f"a{k}",
                "customer_id": "c",
                "invoice_id": f"i{k}",
                "attempted_at": pd.Timestamp(d),
                "amount_cents": 15_000,
                "result": "failed" if fail else "success",
                "reason_code": "AM04" if fail else None,
            }
        )
    frames = {
        "customers": pd.DataFrame(
            {
                "customer_id": ["c"],
                "household_type": ["single"],
                "birth_year": [1980],
                "declared_net_income_cents": [None],
                "created_at": [pd.Timestamp("2020-01-01")],
            }
        ),
        "debit_attempts": pd.DataFrame(deb),
    }
    if inc:
        frames["income_receipts"] = pd.DataFrame(inc)
    return EventArrays.from_frames(frames, ["c"])


def test_failure_risk_rises_with_days_since_pay(model):
    X = np.full((31, len(FEATURE_NAMES)), np.nan)
    X[:, 0] = np.arange(31)
    X[:, 1] = 30 - np.arange(31)
    X[:, 2] = np.arange(31) / 30
    p = model.predict_proba(X)
    assert np.all(np.diff(p) >= -1e-12)  # monotone: never lower further from pay
    assert p[1] < p[27]


def test_suggests_just_after_payday_when_collecting_just_before(model):
    events = _events(pay_dom=25, debit_dom=22, fail=True)
    [s] = suggest_debit_dates(events, AS_OF, model)
    assert s.income_pattern == "monthly_day" and s.pay_day_of_month == 25
    assert s.current_day == 22
    assert s.change
    assert 25 <= s.suggested_day <= 28
    assert s.suggested_failure_rate < s.current_failure_rate
    codes = {r.code for r in s.reasons}
    assert ReasonCode.COLLECT_AFTER_PAYDAY in codes and ReasonCode.PAYDAY_DETECTED in codes
    assert all(r.text_en and r.text_nl for r in s.reasons)
    # SEPA pre-notification: the change reaches the first collection >= 14 days away
    assert s.effective_from >= AS_OF + timedelta(days=14)
    assert all(target2().is_business_day(to_day(d)) for d in s.next_dates)
    assert s.next_dates[0] == s.effective_from


def test_pre_notification_period_is_configurable(model):
    events = _events(pay_dom=25, debit_dom=22, fail=True)
    [short] = suggest_debit_dates(
        events, AS_OF, model, policy=DebitDatePolicy(pre_notification_days=3)
    )
    [long] = suggest_debit_dates(
        events, AS_OF, model, policy=DebitDatePolicy(pre_notification_days=40)
    )
    assert short.effective_from >= AS_OF + timedelta(days=3)
    assert long.effective_from >= AS_OF + timedelta(days=40)
    assert long.effective_from > short.effective_from
    with pytest.raises(ValueError, match="pre_notification_days"):
        DebitDatePolicy(pre_notification_days=-1)


def test_thin_evidence_keeps_the_current_day(model):
    events = _events(pay_dom=None, debit_dom=22, fail=False)  # no income data, no failures
    [s] = suggest_debit_dates(events, AS_OF, model)
    assert not s.change and s.suggested_day == s.current_day == 22
    assert ReasonCode.EVIDENCE_TOO_THIN in {r.code for r in s.reasons}


def test_a_prior_only_model_never_moves_anyone():
    prior = DebitFailureModel(kind="prior", prior=0.05)
    [s] = suggest_debit_dates(_events(pay_dom=25, debit_dom=22, fail=True), AS_OF, prior)
    assert not s.change and s.suggested_day == 22
    assert ReasonCode.MODEL_WITHOUT_DATA in {r.code for r in s.reasons}


def test_a_creditor_day_of_31_is_scored_and_suggestions_stay_within_28(model):
    events = _events(pay_dom=25, debit_dom=20, fail=True)
    [s] = suggest_debit_dates(events, AS_OF, model, current_days=np.array([31]))
    assert s.current_day == 31 and s.current_failure_rate is not None
    assert 1 <= s.suggested_day <= 28


def test_save_load_round_trip_and_self_check(model, tmp_path):
    model.save(tmp_path / "m")
    back = DebitFailureModel.load(tmp_path / "m")
    back.self_check()
    X = _synthetic_rows(50, 3).X
    np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X))
    bad = DebitFailureModel(kind="prior", prior=0.1, feature_names=("x",))
    with pytest.raises(ValueError, match="differ"):
        bad.self_check()
    with pytest.raises(ValueError, match="kind"):
        DebitFailureModel(kind="magic", prior=0.1).self_check()


def test_thin_training_data_give_the_conservative_prior_model():
    few = _synthetic_rows(30, 4)
    m = fit_debit_failure(few, few)
    assert m.kind == "prior" and not m.informative
    m.self_check()
    assert compare_components(m, None, few)[0][0]


def test_gate_compares_with_the_champion(model):
    valid = _synthetic_rows(2000, 5)
    checks = compare_components(model, model, valid)
    assert all(ok for ok, _ in checks), checks
    constant = DebitFailureModel(kind="prior", prior=0.3)
    checks = compare_components(model, constant, valid)
    assert all(ok for ok, _ in checks)
    assert not compare_components(constant, model, valid)[0][0]


def test_trained_bundle_carries_a_gated_debit_failure_component(trained):
    fitted = trained.components["debit_failure"]
    comp = trained.bundle.components["debit_failure"]
    assert comp.informative
    assert fitted.metrics["roc_auc"] >= 0.6 and fitted.metrics["ece"] <= 0.05
    assert all(ok for ok, _ in fitted.compare(None))


def test_simulator_reruns_a_customers_months_with_another_debit_day():
    from training.simulation import CollectionPolicy, SimulationConfig, build_population, simulate

    config = SimulationConfig(
        n_customers=60, months=4, seed=5, end_date=date(2026, 7, 1), late_joiner_share=0.0
    )
    pop = build_population(config)
    base = simulate(config, population=pop)
    days = pop.debit_day.copy()
    who = int(np.flatnonzero(pop.method == 0)[0])
    days[who] = 3 if days[who] != 3 else 17
    moved = simulate(
        config,
        population=pop,
        policy=CollectionPolicy().with_debit_days(days, effective_from=date(2026, 5, 1)),
    )
    cid = pop.customer_ids[who]

    def doms(result):
        d = result.tables["debit_attempts"]
        d = d[(d["customer_id"] == cid) & (d["attempted_at"] >= pd.Timestamp("2026-05-01"))]
        return sorted(set(d["attempted_at"].dt.day))

    assert doms(base) != doms(moved)
    others = base.tables["income_receipts"]
    pd.testing.assert_frame_equal(others, moved.tables["income_receipts"])  # incomes unchanged

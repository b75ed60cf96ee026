"""The pay-later adjustment (models.bnpl_adjustment): bounded fit, one computation online
and in the loop, point in time, the decision it feeds and the bundle round trip."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from features.events import to_day
from models.bnpl import AgeCheck, BnplPolicy, BnplReasonCode, decide
from models.bnpl_adjustment import (
    BOUNDED,
    TERM_NAMES,
    BnplAdjustment,
    fit_adjustment,
)
from models.checkout import pay_later_probability
from models.decline_memory import DecisionHistory, customer_memory, decline_memory

AS_OF = date(2026, 6, 1)


def _synthetic(n: int, decline_effect: float, seed: int = 0):
    """Orders with a probability and a memory; the outcome depends on logit(p) and, by
    ``decline_effect``, on the declines of the last 90 days."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 20, n)
    declines = rng.poisson(0.3, n).astype(float)
    memory = {name: np.zeros(n) for name in _names()}
    memory.update(
        declines_30d=np.minimum(declines, rng.poisson(0.2, n)),
        declines_90d=declines,
        situation_declines_90d=declines,
        situation_declines_365d=declines + rng.poisson(0.1, n),
        days_since_situation_decline=np.where(declines > 0, rng.integers(1, 90, n), np.nan),
        approved_90d=rng.poisson(1.0, n).astype(float),
        approved_recent_eur=rng.exponential(50, n) * (rng.random(n) < 0.3),
    )
    z = -3.0 + 1.0 * np.log(p / (1 - p)) + decline_effect * np.log1p(declines)
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    return p, memory, y


def _names() -> tuple[str, ...]:
    from models.decline_memory import DeclineMemory

    return tuple(DeclineMemory.__dataclass_fields__)


ADJUSTMENT = BnplAdjustment(
    intercept=-3.0,
    logit_coef=0.9,
    coefs=(0.3, 0.4, 0.2, 0.1, 0.5, -0.1, 0.05),
)


def test_decline_coefficients_are_never_negative_even_when_the_data_say_so():
    # declines *lower* the outcome here: the bounded fit keeps them at 0, not below
    p, memory, y = _synthetic(20_000, decline_effect=-1.5)
    fitted = fit_adjustment(p, memory, y)
    bounded = [c for c, b in zip(fitted.coefs, BOUNDED, strict=True) if b]
    assert all(c >= 0 for c in bounded) and min(bounded) == 0.0
    fitted.self_check()
    # and where declines raise it, the fit finds a positive effect
    p, memory, y = _synthetic(20_000, decline_effect=1.5, seed=1)
    raised = fit_adjustment(p, memory, y)
    assert all(c >= 0 for c, b in zip(raised.coefs, BOUNDED, strict=True) if b)
    assert sum(c for c, b in zip(raised.coefs, BOUNDED, strict=True) if b) > 0.5
    assert raised.logit_coef > 0.5 and raised.metadata["reached_agency"] == int(y.sum())


def test_a_negative_decline_coefficient_is_refused():
    bad = BnplAdjustment(-3.0, 1.0, (-0.1, *ADJUSTMENT.coefs[1:]))
    with pytest.raises(ValueError, match="decline terms"):
        bad.self_check()
    with pytest.raises(ValueError, match="slope"):
        BnplAdjustment(-3.0, 0.0, ADJUSTMENT.coefs).self_check()


def test_an_empty_memory_keeps_the_model_s_probability_and_a_decline_raises_it():
    p = np.array([0.0, 0.01, 0.2, 0.9, 1.0])
    empty = customer_memory([], AS_OF)
    np.testing.assert_array_equal(ADJUSTMENT.adjust(p, empty | {}), p)
    declined = customer_memory(
        [(AS_OF - timedelta(days=5), False, 10_000, ["B05_HIGH_RISK"])], AS_OF
    )
    raised = ADJUSTMENT.adjust(p[1:4], declined)
    assert (raised > p[1:4]).all()
    # same agency probability as the raised probability with an empty memory
    np.testing.assert_allclose(
        ADJUSTMENT.agency_probability(raised, empty),
        ADJUSTMENT.agency_probability(p[1:4], declined),
    )


def _history(seed: int = 3, customers: int = 25):
    """Random pay-later decisions around AS_OF: as the service logs them (per customer:
    day, offered, cents, declining codes) and as the loop keeps them (columnar)."""
    rng = np.random.default_rng(seed)
    codes = [
        [],
        ["B05_HIGH_RISK"],
        ["B03_OPEN_ARREARS"],
        ["B04_COLLECTION_CASE"],
        ["B06_EXPOSURE_LIMIT"],
    ]
    logged: dict[int, list] = {c: [] for c in range(customers)}
    for c in range(customers):
        for _ in range(rng.integers(0, 8)):
            day = AS_OF + timedelta(days=int(rng.integers(-400, 10)))  # some on or after as_of
            offer = bool(rng.random() < 0.5)
            declined_by = [] if offer else codes[int(rng.integers(1, len(codes)))]
            logged[c].append((day, offer, int(rng.integers(1_000, 90_000)), declined_by))
    flat = [(c, *row) for c, rows in logged.items() for row in rows]
    history = DecisionHistory.of(
        [f[0] for f in flat],
        [to_day(f[1]) for f in flat],
        [f[2] for f in flat],
        [f[3] for f in flat],
        [f[4] for f in flat],
    )
    return logged, history


def test_the_adjusted_probability_is_the_same_online_and_in_the_loop():
    """The service's path (its decision log's rows -> customer_memory -> the bundle's
    adjustment, models.checkout) and the loop's (columnar decline_memory -> adjust)."""
    logged, history = _history()
    bundle = SimpleNamespace(components={"bnpl_adjustment": ADJUSTMENT})
    rng = np.random.default_rng(5)
    customers = np.array(sorted(logged) * 3)
    days = np.array([AS_OF - timedelta(days=int(d)) for d in rng.integers(0, 200, len(customers))])
    p = rng.beta(1, 10, len(customers))
    loop = ADJUSTMENT.adjust(p, decline_memory(history, customers, [to_day(d) for d in days]))
    online = [
        pay_later_probability(bundle, float(p[i]), customer_memory(logged[c], days[i]))
        for i, c in enumerate(customers)
    ]
    np.testing.assert_allclose(online, loop, rtol=1e-12, atol=0)
    assert (loop > p).any() and (loop == p).any()  # some remembered declines, some none
    # a bundle without an adjustment: None (the cut-off applies to the model's own)
    assert pay_later_probability(SimpleNamespace(components={}), 0.1, None) is None


def test_a_decision_on_or_after_as_of_never_counts():
    later = [
        (AS_OF, False, 50_000, ["B05_HIGH_RISK"]),
        (AS_OF + timedelta(days=3), False, 50_000, ["B03_OPEN_ARREARS"]),
    ]
    bundle = SimpleNamespace(components={"bnpl_adjustment": ADJUSTMENT})
    assert pay_later_probability(bundle, 0.08, customer_memory(later, AS_OF)) == 0.08
    history = DecisionHistory.of(
        [0, 0], [to_day(d[0]) for d in later], [False] * 2, [1] * 2, [d[3] for d in later]
    )
    assert (
        ADJUSTMENT.adjust(np.array([0.08]), decline_memory(history, [0], [to_day(AS_OF)]))[0]
        == 0.08
    )
    # the day after, the first one counts
    after = customer_memory(later, AS_OF + timedelta(days=1))
    assert pay_later_probability(bundle, 0.08, after) > 0.08


def _order(policy: BnplPolicy, p: float, memory: dict[str, float], adjusted: float | None):
    features = None  # the order and the cut-off alone: no limit from features
    return decide(
        policy,
        order_eur=10.0,
        currency="EUR",
        age=AgeCheck(verified=True, birth_date=date(1980, 1, 1)),
        on=AS_OF,
        features=features,
        probability=p,
        open_case=False,
        memory=memory,
        pay_later_probability=adjusted,
    )


def test_the_cut_off_applies_to_the_adjusted_probability_with_an_honest_reason():
    policy = BnplPolicy.default().with_cutoff(0.3)
    policy = BnplPolicy.from_dict(
        policy.to_dict() | {"decline_memory": {"sticky_codes": [], "sticky_days": 0}}
    )
    declined = customer_memory(
        [(AS_OF - timedelta(days=20), False, 10_000, ["B05_HIGH_RISK"])], AS_OF
    )
    empty = customer_memory([], AS_OF)
    # without an adjustment: the model's probability decides, as before
    assert _order(policy, 0.2, declined, None).offer
    # lifted over the cut-off by an earlier decline: declined on it (B11), not on B05
    lifted = _order(policy, 0.2, declined, 0.35)
    assert lifted.declined_by == [BnplReasonCode.RECENT_DECLINE]
    assert lifted.pay_later_probability == 0.35 and lifted.probability == 0.2
    # over it by the model alone: B05 as always
    assert _order(policy, 0.4, declined, 0.6).declined_by == [BnplReasonCode.HIGH_RISK]
    # a customer without declines, recalibrated over the cut-off: B05
    assert _order(policy, 0.2, empty, 0.31).declined_by == [BnplReasonCode.HIGH_RISK]
    assert _order(policy, 0.2, empty, 0.2).offer


def test_the_bundle_keeps_its_adjustment_and_a_bundle_without_one_is_unchanged(tmp_path):
    from models.bundle import Bundle
    from tests.api.conftest import _train_bundle

    path = _train_bundle(tmp_path / "plain", "test-plain", seed=1)
    plain = Bundle.load(path)
    assert "bnpl_adjustment" not in plain.components
    assert pay_later_probability(plain, 0.1, customer_memory([], AS_OF)) is None
    fitted = fit_adjustment(*_synthetic(5_000, decline_effect=1.0), metadata={"world_seed": 101})
    plain.components["bnpl_adjustment"] = fitted
    loaded = Bundle.load(plain.save(tmp_path / "adjusted"))
    got = loaded.components["bnpl_adjustment"]
    assert got == fitted and got.metadata["world_seed"] == 101
    assert dict(zip(TERM_NAMES, got.coefs, strict=True)).keys() == set(TERM_NAMES)
    declined = customer_memory(
        [(AS_OF - timedelta(days=9), False, 5_000, ["B05_HIGH_RISK"])], AS_OF
    )
    assert pay_later_probability(loaded, 0.1, declined) == fitted.adjust_one(0.1, declined)

"""Promotion gate and registry: a worse or broken model never becomes the champion."""

from __future__ import annotations

import numpy as np
import pytest

from models.bundle import Bundle, BundleError
from training.registry import CANDIDATE, CHAMPION, GateRules, Registry, promotion_gate


def _validation(trained, snapshots):
    va = snapshots.subset(trained.split.validation)
    return va.X, va.y


def _worse_bundle(trained, snapshots) -> Bundle:
    """The same bundle whose calibrated output ignores the booster's ranking half the time."""
    rng = np.random.default_rng(0)
    worse = Bundle.load(trained.bundle.save(_tmp() / "w"))
    # a booster trained on shuffled labels: valid probabilities, no signal
    X = snapshots.X[snapshots.customer % 2 == 0]
    y = rng.permutation(snapshots.y[snapshots.customer % 2 == 0])
    import lightgbm as lgb

    worse.booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), 30
    )
    worse.version = "worse"
    return worse


def _tmp():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp())


def test_gate_passes_a_first_model_that_meets_the_floors(trained, snapshots):
    X, y = _validation(trained, snapshots)
    decision = promotion_gate(trained.bundle, X, y, champion=None)
    assert decision.promote, decision.reasons


def test_gate_refuses_a_candidate_worse_than_the_champion(trained, snapshots):
    X, y = _validation(trained, snapshots)
    worse = _worse_bundle(trained, snapshots)
    decision = promotion_gate(worse, X, y, champion=trained.bundle)
    assert not decision.promote
    assert any("worse than champion" in r for r in decision.reasons)
    # and the same candidate against itself is not worse
    assert promotion_gate(trained.bundle, X, y, champion=trained.bundle).promote


def test_gate_refuses_an_uncalibrated_first_model(trained, snapshots):
    X, y = _validation(trained, snapshots)
    worse = _worse_bundle(trained, snapshots)
    worse.calibrator = {"slope": 1.0, "intercept": 4.0}  # everything pushed towards 1
    decision = promotion_gate(worse, X, y, champion=None, rules=GateRules())
    assert not decision.promote
    assert any("ECE" in r for r in decision.reasons)


def test_a_broken_bundle_folder_cannot_be_loaded(trained, tmp_path):
    folder = trained.bundle.save(tmp_path / "b")
    (folder / "booster.txt").write_text("not a model")
    with pytest.raises(BundleError):
        Bundle.load(folder)
    (folder / "calibrator.json").unlink()
    with pytest.raises(BundleError, match=r"missing calibrator\.json"):
        Bundle.load(folder)


@pytest.mark.slow
def test_registry_moves_the_champion_only_through_the_gate(trained, snapshots, mlflow_uri):
    X, y = _validation(trained, snapshots)
    registry = Registry(mlflow_uri)
    assert registry.champion() is None

    first = promotion_gate(trained.bundle, X, y, registry.champion())
    v1 = registry.log_and_register(trained.bundle, {"p": 1}, trained.metrics, [], {"t": "1"})
    registry.record_gate(v1, first)
    champion = registry.champion()
    assert champion is not None and champion.version.endswith(f"/{v1}")
    np.testing.assert_allclose(champion.predict_proba(X[:50]), trained.bundle.predict_proba(X[:50]))

    worse = _worse_bundle(trained, snapshots)
    second = promotion_gate(worse, X, y, champion)
    v2 = registry.log_and_register(worse, {"p": 2}, trained.metrics, [], {"t": "2"})
    registry.record_gate(v2, second)
    assert not second.promote
    assert (
        str(registry.client.get_model_version_by_alias(registry.model_name, CHAMPION).version) == v1
    )
    assert (
        str(registry.client.get_model_version_by_alias(registry.model_name, CANDIDATE).version)
        == v2
    )
    tags = registry.client.get_model_version(registry.model_name, v2).tags
    assert tags["gate"] == "refused" and "worse than champion" in tags["gate_reasons"]
    rows = {r["version"]: r for r in registry.versions()}
    assert CHAMPION in rows[v1]["aliases"] and CANDIDATE in rows[v2]["aliases"]


def test_a_champion_this_code_cannot_load_is_named_in_the_gate_reasons(
    trained, snapshots, mlflow_uri, monkeypatch
):
    """After a feature-set change the champion's bundle no longer loads: the gate judges
    the candidate on the floors alone and says so, instead of "no champion yet"."""
    import training.registry as registry_module
    from models.bundle import BundleError

    X, y = _validation(trained, snapshots)
    registry = Registry(mlflow_uri)
    v1 = registry.log_and_register(trained.bundle, {"p": 1}, trained.metrics, [], {"t": "1"})
    registry.record_gate(v1, promotion_gate(trained.bundle, X, y, None))
    assert registry.champion_or_why_not()[1] is None

    def incompatible(*_a, **_k):
        raise BundleError("plan_kept feature names differ from this code's feature set")

    monkeypatch.setattr(registry_module, "load_bundle", incompatible)
    champion, why = registry.champion_or_why_not()
    assert champion is None and f"champion version {v1} cannot be loaded" in why
    decision = promotion_gate(trained.bundle, X, y, champion, unusable_champion=why)
    assert decision.promote  # a loadable model that meets the floors replaces it ...
    assert "feature set" in decision.summary()  # ... and the reasons say why no comparison
    assert "no champion yet" not in decision.summary()


def test_a_promotion_by_hand_refuses_a_bundle_the_service_could_not_serve(
    trained, mlflow_uri, monkeypatch
):
    """`tijdig models promote` only loaded the bundle: one trained on another feature set
    became champion, and the service then refused it at its next start."""
    import dataclasses

    from models.bundle import BundleError

    registry = Registry(mlflow_uri)
    good = registry.log_and_register(trained.bundle, {"p": 1}, trained.metrics, [], {"t": "1"})
    registry.promote(good)
    other_features = dataclasses.replace(
        trained.bundle, feature_names=tuple(reversed(trained.bundle.feature_names))
    )
    stale = registry.log_and_register(other_features, {"p": 2}, trained.metrics, [], {"t": "2"})
    with pytest.raises(BundleError, match="other features"):
        registry.promote(stale)
    champion = registry.client.get_model_version_by_alias(registry.model_name, CHAMPION)
    assert str(champion.version) == str(good)

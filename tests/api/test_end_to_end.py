"""The whole slice on simulated data: events -> store -> features -> trained bundle -> HTTP.

Online (the service reading one customer from the store) must equal offline (the batch
feature function over the simulator's frames) for the same as_of, and the training
pipeline must run from the store through MLflow to a champion the service can load.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.events import EventArrays
from models.bundle import Bundle
from models.scoring import assess

AS_OF = date(2026, 6, 1)


@pytest.fixture(scope="module")
def simulated_store(population, tmp_path_factory):
    from features.store import EventStore

    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'events.db'}"
    store = EventStore(url)
    store.create_schema()
    report = store.ingest(population.tables)
    assert report.accepted
    store.dispose()
    return url


@pytest.fixture(scope="module")
def e2e_client(settings, simulated_store, bundle_dir):
    from service.app import create_app

    app = create_app(
        settings.model_copy(update={"store_url": simulated_store, "model_uri": str(bundle_dir)})
    )
    with TestClient(app) as client:
        yield client


def test_online_scores_equal_offline_scores(e2e_client, population, bundle_dir):
    bundle = Bundle.load(bundle_dir)
    offline = {
        a.customer_id: a for a in assess(bundle, EventArrays.from_frames(population.tables), AS_OF)
    }
    ids = population.tables["customers"]["customer_id"].iloc[[0, 5, 50, 333, 699]].tolist()
    response = e2e_client.post(
        "/v1/risk/scores",
        json={"customer_ids": ids, "as_of": AS_OF.isoformat()},
        headers={"X-API-Key": "dev-key"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == bundle.version
    for result in body["results"]:
        expected = offline[result["customer_id"]]
        assert result["probability"] == pytest.approx(expected.probability, abs=1e-12)
        assert result["band"] == expected.band.value
        assert [r["code"] for r in result["reasons"]] == [r.code.value for r in expected.reasons]
        assert result["recommended_action"]["action"] == expected.action.value


def test_the_decision_log_reproduces_the_decision(e2e_client, population, bundle_dir):
    bundle = Bundle.load(bundle_dir)
    cid = population.tables["customers"]["customer_id"].iloc[42]
    scored = e2e_client.post(
        "/v1/risk/scores",
        json={"customer_ids": [cid], "as_of": AS_OF.isoformat()},
        headers={"X-API-Key": "dev-key"},
    ).json()["results"][0]
    logged = e2e_client.get(
        f"/v1/decisions/{scored['decision_id']}", headers={"X-API-Key": "dev-key"}
    ).json()
    features = logged["features"]
    row = np.array([[np.nan if features[n] is None else features[n] for n in bundle.feature_names]])
    assert bundle.predict_proba(row)[0] == pytest.approx(scored["probability"], abs=1e-12)
    assert logged["model_version"] == bundle.version


@pytest.mark.slow
def test_training_pipeline_from_the_store_to_a_served_champion(
    population, simulated_store, tmp_path, settings
):
    from service.app import create_app
    from training.pipeline import run_training
    from training.settings import TrainingSettings

    population.write(tmp_path / "sim")
    train_settings = TrainingSettings(
        data_dir=tmp_path,
        store_url=simulated_store,
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    reported: list[str] = []
    first = run_training(
        train_settings,
        truth_dir=tmp_path / "sim",
        progress=lambda step, done, total: reported.append(step),
    )
    assert first.gate.promote and "oracle" in first.candidate.metrics
    # every stage and component reports while it runs, not only the result at the end
    stages = ("model", "oracle", "component plan_kept", "component debit_failure")
    assert {*stages, "pay-later operating point", "log to MLflow", "promotion gate"} <= set(
        reported
    )
    # the bundle's pay-later policy and where it came from are on the run (issue 21)
    import mlflow

    run = mlflow.MlflowClient(train_settings.mlflow_tracking_uri).get_run(
        first.candidate.bundle.metadata["run_id"]
    )
    bnpl = first.candidate.bundle.metadata["bnpl_operating_point"]
    assert run.data.params["bnpl.source"] == bnpl["source"]
    assert float(run.data.params["bnpl.cutoff"]) == first.candidate.bundle.bnpl_policy.risk_cutoff
    again = run_training(train_settings)  # same data, same seed: not worse -> promoted
    assert again.gate.promote, again.gate.reasons
    assert any("not worse than champion" in r for r in again.gate.reasons)
    # where training's time went, per stage; the oracles only where the truth was given
    stages = {"read events", "build snapshots", "model", "logistic_regression", "log to MLflow"}
    assert stages | {"oracle", "oracle_observable"} <= set(first.candidate.timings)
    assert stages <= set(again.candidate.timings)
    assert not {"oracle", "oracle_observable"} & set(again.candidate.timings)
    assert all(s >= 0 for s in first.candidate.timings.values())

    app = create_app(
        settings.model_copy(
            update={
                "store_url": simulated_store,
                "model_uri": "models:/tijdig-risk@champion",
                "mlflow_tracking_uri": train_settings.mlflow_tracking_uri,
            }
        )
    )
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["model_version"] == f"tijdig-risk/{again.version}"

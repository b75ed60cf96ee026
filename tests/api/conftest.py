"""API test fixtures, built once per session: an event store, bundles, settings, a client.

The bundles are tiny LightGBM models on random features over ``FEATURE_NAMES`` with an
identity calibrator — enough to exercise the service, not to mean anything (the lead
swaps in a simulator-trained bundle later). ``bundle_v1`` and ``bundle_v2`` differ in
version so a hot swap is visible; ``broken_bundle`` has a corrupt booster.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api import factories

CUSTOMERS = {"C-low-1": False, "C-low-2": False, "C-risk-1": True, "C-risk-2": True}

KEYS = {
    "all": "dev-key",
    "collection": "key-collection",
    "ingest": "key-ingest",
    "admin": "key-admin",
    "checkout": "key-checkout",
    "review": "key-review",
}


def headers(role: str = "all") -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def _train_bundle(directory: Path, version: str, seed: int) -> Path:
    import lightgbm as lgb

    from features.build import FEATURE_NAMES, FEATURE_SET_VERSION
    from models.bundle import Bundle
    from models.policy import RiskPolicy

    rng = np.random.default_rng(seed)
    n, k = 400, len(FEATURE_NAMES)
    X = rng.normal(size=(n, k))
    X[rng.random((n, k)) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 15]) + rng.normal(size=n) > 0.5).astype(int)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 7,
            "min_data_in_leaf": 10,
            "verbose": -1,
            "num_threads": 1,
            "seed": seed,
        },
        lgb.Dataset(X, y, feature_name=list(FEATURE_NAMES)),
        num_boost_round=20,
    )
    bundle = Bundle(
        booster=booster,
        calibrator={"slope": 1.0, "intercept": 0.0},
        feature_names=tuple(FEATURE_NAMES),
        policy=RiskPolicy.default(),
        metadata={"version": version, "feature_set_version": FEATURE_SET_VERSION},
        version=version,
    )
    return bundle.save(directory)


@pytest.fixture(scope="session")
def api_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="session")
def bundle_v1(api_dir) -> Path:
    return _train_bundle(api_dir / "bundle-v1", "test-v1", seed=1)


@pytest.fixture(scope="session")
def bundle_v2(api_dir) -> Path:
    return _train_bundle(api_dir / "bundle-v2", "test-v2", seed=2)


@pytest.fixture(scope="session")
def broken_bundle(api_dir, bundle_v1) -> Path:
    folder = api_dir / "bundle-broken"
    shutil.copytree(bundle_v1, folder)
    (folder / "booster.txt").write_text("this is not a LightGBM model\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def seeded_store(api_dir) -> str:
    """The event store URL, with :data:`CUSTOMERS` ingested."""
    from features.store import EventStore

    url = f"sqlite:///{api_dir / 'events.db'}"
    store = EventStore(url)
    store.create_schema()
    store.ingest(factories.frames(factories.batch(CUSTOMERS)))
    store.dispose()
    return url


@pytest.fixture(scope="session")
def settings(api_dir, seeded_store, bundle_v1):
    from service.settings import Scope, ServiceSettings

    return ServiceSettings(
        data_dir=api_dir,
        store_url=seeded_store,
        model_uri=str(bundle_v1),
        api_keys={
            KEYS["all"]: list(Scope),
            KEYS["collection"]: [Scope.COLLECTION],
            KEYS["ingest"]: [Scope.INGEST],
            KEYS["admin"]: [Scope.ADMIN],
            KEYS["checkout"]: [Scope.CHECKOUT],
            KEYS["review"]: [Scope.REVIEW],
        },
        max_batch_customers=50,
        max_ingest_rows=500,
    )


@pytest.fixture(scope="session")
def client(settings) -> Iterator[TestClient]:
    """A shared client on the real app (lifespan run). Tests must not swap its bundle."""
    from service.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def make_client(settings):
    """Fresh apps (own state) for tests that reload bundles or change settings."""
    from service.app import create_app

    opened: list[TestClient] = []

    def make(**overrides) -> TestClient:
        c = TestClient(create_app(settings.model_copy(update=overrides)))
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)

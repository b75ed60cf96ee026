"""The README's worked example (issue 3): EUR 500 open, a single person, net income EUR 1,900,
housing EUR 700 a month. Prints the answer of ``POST /v1/affordability``.

    .venv/bin/python docs/examples/affordability_example.py BUNDLE_DIR

``BUNDLE_DIR`` is a bundle with a ``plan_kept`` component, e.g. the one
``tijdig plan-eval --out DIR`` saves in ``DIR/bundle``. The customer's history comes from a
300-customer simulation (seed 7, ending 2026-07-01) ingested into a throw-away event store;
the service runs in-process with that store and bundle (nothing listens on a port).
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from features.store import EventStore
from service.app import create_app
from service.settings import ServiceSettings
from training.simulation import SimulationConfig, simulate

CUSTOMER = "C000173"
REQUEST = {
    "customer_id": CUSTOMER,
    "as_of": "2026-06-01",
    "debt_amount_eur": 500,
    "budget": {"net_income_eur": 1900, "housing_costs_eur": 700, "household_type": "single"},
}


def main(bundle_dir: str) -> None:
    with tempfile.TemporaryDirectory(prefix="tijdig-example-") as tmp:
        sim = simulate(SimulationConfig(n_customers=300, seed=7, end_date=date(2026, 7, 1)))
        store = EventStore(f"sqlite:///{tmp}/events.db")
        store.create_schema()
        store.ingest(sim.tables)
        settings = ServiceSettings(
            data_dir=Path(tmp), model_uri=str(Path(bundle_dir).resolve()), serving_rows=False
        )
        with TestClient(create_app(settings)) as client:
            answer = client.post(
                "/v1/affordability", json=REQUEST, headers={"X-API-Key": "dev-key"}
            )
        answer.raise_for_status()
        print(json.dumps(answer.json(), indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

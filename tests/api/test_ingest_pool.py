"""POST /v1/events through the app's ingest pool: the same answers as in-process, a pool
that outlives bad batches and lost processes, and the settings that configure it."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import tempfile
import time

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.errors import install_error_handlers
from service.ingest_pool import IngestPool, IngestWorkerLost
from service.json_body import StrictJSONRoute
from service.schemas import EventBatch
from service.settings import ServiceSettings
from tests.api import factories
from tests.api.conftest import headers

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    """Where the route spools bodies (the system's temp folder, here one of the test's)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def two_apps(make_client, tmp_path):
    """The app without a pool and with one, each on an empty store of its own."""

    def make(workers: int) -> TestClient:
        return make_client(
            ingest_workers=workers, store_url=f"sqlite:///{tmp_path / f'events-{workers}.db'}"
        )

    return make(0), make(1)


def _without_instance(r) -> tuple[int, dict]:
    doc = r.json()
    doc.pop("instance", None)
    return r.status_code, doc


def test_the_pool_answers_exactly_as_in_process(two_apps, settings, spool_dir):
    bad = copy.deepcopy(factories.batch({"P-bad-1": False}))
    bad["invoices"][3]["amount_cents"] = -5
    bad["payments"][1]["method"] = "cash-in-a-bag"
    missing = copy.deepcopy(factories.batch({"P-col-1": False}))
    del missing["customers"][0]["household_type"]
    missing["invoices"][0]["colour"] = "blue"
    good = factories.batch({"P-ok-1": False, "P-ok-2": True})
    too_many = {
        "customers": [{"customer_id": f"X{i}"} for i in range(settings.max_ingest_rows + 1)]
    }
    answers = []
    for client in two_apps:
        answers.append(
            [
                _without_instance(client.post("/v1/events", json=body, headers=headers("ingest")))
                for body in (good, good, bad, missing, too_many)
            ]
        )
    in_process, pooled = answers
    assert [status for status, _ in in_process] == [200, 200, 422, 422, 413]
    assert in_process[1][1]["duplicates"] == in_process[0][1]["inserted"]  # the resend
    assert pooled == in_process
    assert list(spool_dir.iterdir()) == []  # every spooled body removed


def _reference_app() -> FastAPI:
    """The route as it was before the pool: FastAPI decodes and validates the body."""
    app = FastAPI()
    router = APIRouter(route_class=StrictJSONRoute)

    @router.post("/v1/events")
    def ingest(batch: EventBatch) -> dict:  # pragma: no cover - only invalid bodies sent
        return {}

    app.include_router(router)
    install_error_handlers(app)
    return app


BAD_BODIES = {
    "not JSON": (b'{"customers": [', JSON),
    "not UTF-8": ('{"customers": []}'.encode("utf-16"), JSON),
    "a key twice": (b'{"customers": [], "customers": []}', JSON),
    "a list": (b"[]", JSON),
    "null": (b"null", JSON),
    "empty": (b"", JSON),
    "no content type": (b'{"customers": []}', {}),
    "text/plain": (b'{"customers": []}', {"Content-Type": "text/plain"}),
    "an unknown table": (b'{"customers": [], "bank_statements": [{"x": 1}]}', JSON),
    "a nested value": (b'{"customers": [{"customer_id": {"nested": true}}]}', JSON),
    "a boolean value": (b'{"invoices": [{"amount_cents": true}]}', JSON),
    "a control character": (b'{"customers": [{"customer_id": "a\\u0000b"}]}', JSON),
    "rows not a list": (b'{"customers": {"customer_id": "a"}}', JSON),
}


@pytest.mark.parametrize("workers", [0, 1])
def test_undecodable_and_invalid_bodies_get_the_answers_fastapi_gave(make_client, workers):
    client = make_client(ingest_workers=workers)
    with TestClient(_reference_app()) as reference:
        for name, (body, hdrs) in BAD_BODIES.items():
            expected = reference.post("/v1/events", content=body, headers=hdrs)
            got = client.post("/v1/events", content=body, headers={**headers("ingest"), **hdrs})
            assert expected.status_code == 422, name
            assert _without_instance(got) == _without_instance(expected), name


def test_the_key_is_checked_before_the_body_is_read(make_client):
    client = make_client(ingest_workers=1)
    r = client.post("/v1/events", content=b"{not json", headers={**headers("checkout"), **JSON})
    assert r.status_code == 403
    r = client.post("/v1/events", content=b"{not json", headers=JSON)
    assert r.status_code == 401


def test_a_body_over_the_limit_is_a_413_and_leaves_no_spooled_file(make_client, spool_dir):
    client = make_client(ingest_workers=1, max_ingest_bytes=4096)
    body = json.dumps(factories.batch({"P-size-1": False})).encode()
    r = client.post(
        "/v1/events",
        content=iter([body[:1000], body[1000:]]),
        headers={**headers("ingest"), **JSON},
    )
    assert r.status_code == 413, r.text
    assert r.json()["type"] == "urn:tijdig:problem:payload-too-large"
    assert list(spool_dir.iterdir()) == []


def test_the_pool_outlives_a_rejected_batch_and_a_killed_process(make_client, tmp_path):
    client = make_client(
        ingest_workers=1,
        ingest_worker_max_batches=100,  # the same process takes the batches that follow
        store_url=f"sqlite:///{tmp_path / 'events.db'}",
    )
    pool = client.app.state.ingest_pool
    bad = copy.deepcopy(factories.batch({"P-kill-0": False}))
    bad["invoices"][0]["amount_cents"] = -1
    assert client.post("/v1/events", json=bad, headers=headers("ingest")).status_code == 422
    first = client.post(
        "/v1/events", json=factories.batch({"P-kill-1": False}), headers=headers("ingest")
    )
    assert first.status_code == 200, first.text
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGKILL)
    # The executor learns of the death from the process's sentinel; a batch sent before
    # that is answered 503 (it may have run), one sent after runs in a new process.
    answers = [
        client.post(
            "/v1/events", json=factories.batch({f"P-kill-{i}": False}), headers=headers("ingest")
        )
        for i in (2, 3)
    ]
    assert answers[0].status_code in (200, 503), answers[0].text
    if answers[0].status_code == 503:
        assert answers[0].json()["type"] == "urn:tijdig:problem:ingest-worker-lost"
    assert answers[1].status_code == 200, answers[1].text
    assert pid not in pool.pids()


def test_a_process_that_dies_mid_batch_is_a_lost_worker_and_is_replaced():
    pool = IngestPool(1, max_batches=100, nice=0)
    try:
        with pytest.raises(IngestWorkerLost):
            asyncio.run(pool.run(os._exit, 3))
        started = time.monotonic()
        pid = asyncio.run(pool.run(os.getpid))
        assert pid != os.getpid() and time.monotonic() - started < 60
    finally:
        pool.close()


@pytest.mark.parametrize(
    "overrides",
    [
        {"ingest_workers": -1},
        {"ingest_workers": 33},
        {"ingest_worker_max_batches": 0},
        {"ingest_worker_nice": 20},
        {"ingest_worker_nice": -1},
    ],
)
def test_ingest_pool_settings_out_of_range_are_refused(overrides):
    with pytest.raises(ValidationError):
        ServiceSettings(**overrides)


def test_a_large_body_limit_in_production_needs_an_ingest_pool():
    keys = {"prod-key": ["ingest"]}
    big = 64 * 1024 * 1024
    with pytest.raises(ValidationError, match="TIJDIG_INGEST_WORKERS"):
        ServiceSettings(env="production", api_keys=keys, max_ingest_bytes=big)
    assert (
        ServiceSettings(
            env="production", api_keys=keys, max_ingest_bytes=big, ingest_workers=1
        ).ingest_workers
        == 1
    )
    assert ServiceSettings(max_ingest_bytes=big).ingest_workers == 0  # development: allowed


def test_more_batches_than_processes_all_get_answered():
    """Python 3.11's executor can deadlock a queued backlog when a process leaves at its
    task limit (CPython gh-115634); the pool never queues one there."""
    pool = IngestPool(1, max_batches=2, nice=0)

    async def many() -> list[int]:
        return await asyncio.wait_for(
            asyncio.gather(*(pool.run(os.getpid) for _ in range(7))), timeout=300
        )

    try:
        pids = asyncio.run(many())
        assert len(pids) == 7 and len(set(pids)) >= 4  # a new process every 2 batches
    finally:
        pool.close()

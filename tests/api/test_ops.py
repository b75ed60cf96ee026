"""Operations: health, readiness, metrics, and the bundle hot swap (also under load)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import CUSTOMERS, headers

SCORE_BODY = {"customer_ids": ["C-risk-1", "C-low-1"], "as_of": "2026-01-15"}


def test_healthz_needs_no_key(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_the_model_version(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "ready"
    assert doc["model_version"] == "test-v1"
    assert doc["checks"] == {"model": "ok", "store": "ok", "decision_log": "ok"}


def test_without_a_bundle_the_app_starts_not_ready_then_reload_makes_it_ready(
    make_client, tmp_path, bundle_v1
):
    c = make_client(model_uri=str(tmp_path / "no-bundle-here"))
    r = c.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tijdig:problem:not-ready"
    assert "model" in r.json()["detail"]
    s = c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers())
    assert s.status_code == 503
    assert s.json()["type"] == "urn:tijdig:problem:no-model"
    assert c.get("/healthz").status_code == 200

    r = c.post("/admin/reload", json={"model_uri": str(bundle_v1)}, headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["previous_version"] is None
    assert c.get("/readyz").json()["model_version"] == "test-v1"
    assert c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers()).status_code == 200


def test_unreachable_store_is_not_ready_and_scores_503(make_client, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    c = make_client(store_url=f"sqlite:///{blocker}/events.db")  # a folder that cannot exist
    r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["store"].startswith("unavailable")
    s = c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers())
    assert s.status_code == 503
    assert s.json()["type"] == "urn:tijdig:problem:store-unavailable"


def test_metrics_expose_requests_latency_bands_and_model(client):
    client.post("/v1/risk/scores", json=SCORE_BODY, headers=headers())
    client.post("/v1/risk/scores", json={"customer_ids": ["ghost"]}, headers=headers())
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'tijdig_http_requests_total{method="POST",route="/v1/risk/scores",status="200"}' in text
    assert 'tijdig_http_requests_total{method="POST",route="/v1/risk/scores",status="404"}' in text
    assert (
        'tijdig_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/risk/scores"}'
        in text
    )
    assert "tijdig_risk_scores_total{band=" in text
    assert 'tijdig_model_info{model_version="test-v1",policy_version="risk-2026.11.1"} 1.0' in text


def test_metrics_in_multiprocess_mode(monkeypatch, tmp_path, settings):
    from fastapi.testclient import TestClient

    from service.app import create_app

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import prometheus_client.values as values

    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers()).status_code == 200
        r = c.get("/metrics")
        assert r.status_code == 200
        assert "tijdig_http_requests_total" in r.text
        assert 'tijdig_model_info{model_version="test-v1"' in r.text


def test_reload_swaps_the_version(make_client, bundle_v2):
    c = make_client()
    before = c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers()).json()
    r = c.post("/admin/reload", json={"model_uri": str(bundle_v2)}, headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["previous_version"] == "test-v1"
    assert r.json()["model_version"] == "test-v2"
    after = c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers()).json()
    assert before["model_version"] == "test-v1"
    assert after["model_version"] == "test-v2"
    assert c.get("/readyz").json()["model_version"] == "test-v2"
    assert 'model_version="test-v2"' in c.get("/metrics").text
    assert 'tijdig_model_info{model_version="test-v1"' not in c.get("/metrics").text
    # without a body: back to the configured bundle
    r = c.post("/admin/reload", headers=headers("admin"))
    assert r.status_code == 200
    assert r.json()["model_version"] == "test-v1"


def test_broken_bundle_is_refused_and_the_old_keeps_serving(make_client, broken_bundle, tmp_path):
    c = make_client()
    for uri in (str(broken_bundle), str(tmp_path / "missing"), "models:/no-such-model@champion"):
        r = c.post("/admin/reload", json={"model_uri": uri}, headers=headers("admin"))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:tijdig:problem:bundle-refused"
        s = c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers())
        assert s.status_code == 200
        assert s.json()["model_version"] == "test-v1"


def test_bundle_with_other_features_is_refused(make_client, bundle_v1, tmp_path):
    import json
    import shutil

    from models.bundle import write_manifest

    folder = tmp_path / "renamed"
    shutil.copytree(bundle_v1, folder)
    doc = json.loads((folder / "features.json").read_text())
    doc["names"] = list(reversed(doc["names"]))
    (folder / "features.json").write_text(json.dumps(doc))
    write_manifest(folder)  # a bundle built that way, not one altered after
    c = make_client()
    r = c.post("/admin/reload", json={"model_uri": str(folder)}, headers=headers("admin"))
    assert r.status_code == 422
    assert "other features" in r.json()["detail"]


def test_reload_under_concurrent_requests_loses_none(make_client, bundle_v1, bundle_v2):
    c = make_client()
    stop = threading.Event()
    seen: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    ids = list(CUSTOMERS)

    def hammer(k: int) -> None:
        i = 0
        while not stop.is_set() or i < 5:
            body = {"customer_ids": [ids[(k + i) % len(ids)]], "as_of": "2026-01-15"}
            r = c.post("/v1/risk/scores", json=body, headers=headers())
            with lock:
                seen.append((r.status_code, r.json().get("model_version")))
            i += 1

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(hammer, k) for k in range(5)]
        reloads = []
        for n in range(6):
            target = bundle_v2 if n % 2 == 0 else bundle_v1
            r = c.post("/admin/reload", json={"model_uri": str(target)}, headers=headers("admin"))
            reloads.append(r.status_code)
        stop.set()
        for f in futures:
            f.result()
    assert reloads == [200] * 6
    assert len(seen) >= 30
    assert {s for s, _ in seen} == {200}, seen
    assert {v for _, v in seen} <= {"test-v1", "test-v2"}
    assert {v for _, v in seen} == {"test-v1", "test-v2"}  # the swaps happened under load
    assert c.get("/readyz").json()["model_version"] == "test-v1"


def test_a_second_concurrent_reload_is_409(make_client, bundle_v2):
    c = make_client()
    lock = c.app.state.reload_lock
    lock.acquire()
    try:
        r = c.post("/admin/reload", json={"model_uri": str(bundle_v2)}, headers=headers("admin"))
    finally:
        lock.release()
    assert r.status_code == 409
    assert r.json()["type"] == "urn:tijdig:problem:reload-in-progress"


def _until(condition, timeout_s: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _version(c) -> str | None:
    return c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers()).json().get("model_version")


def test_a_reload_taken_by_one_worker_reaches_the_others(
    make_client, tmp_path, bundle_v1, bundle_v2
):
    """Two apps sharing one announcement file stand for two worker processes: the reload
    reaches one; the other swaps at its next look; one started later serves it too."""
    from service.reload import ReloadAnnouncements

    path = tmp_path / "reload.json"
    ReloadAnnouncements.create(path, str(bundle_v1))
    workers = dict(reload_signal_file=path, reload_poll_seconds=0.05)
    a, b = make_client(**workers), make_client(**workers)
    assert _version(a) == _version(b) == "test-v1"

    r = a.post("/admin/reload", json={"model_uri": str(bundle_v2)}, headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == 1
    assert _until(lambda: _version(b) == "test-v2"), "the other worker kept test-v1"
    assert b.app.state.generation == 1
    assert _version(a) == "test-v2"
    # a worker started after the reload (the supervisor replacing a dead one) serves what
    # the reload brought, not the configured bundle
    late = make_client(**workers)
    assert _version(late) == "test-v2" and late.app.state.generation == 1
    assert late.get("/readyz").status_code == 200


def test_a_worker_that_cannot_load_an_announced_bundle_keeps_serving_and_is_not_ready(
    make_client, tmp_path, bundle_v1, bundle_v2, broken_bundle
):
    from service.reload import ReloadAnnouncements

    path = tmp_path / "reload.json"
    announcements = ReloadAnnouncements.create(path, str(bundle_v1))
    b = make_client(reload_signal_file=path, reload_poll_seconds=0.05)
    announcements.announce(str(broken_bundle))  # as if another worker could load it
    assert _until(lambda: b.get("/readyz").status_code == 503)
    ready = b.get("/readyz").json()
    assert ready["checks"]["model"].startswith("behind the other workers: reload 1 did not load")
    assert _version(b) == "test-v1"  # it still answers, with what it has
    announcements.announce(str(bundle_v2))  # the next reload loads here: in step again
    assert _until(lambda: b.get("/readyz").status_code == 200)
    assert _version(b) == "test-v2" and b.app.state.generation == 2

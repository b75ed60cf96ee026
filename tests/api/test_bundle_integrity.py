"""A corrupt or truncated bundle is refused by name, and never takes the process down.

LightGBM ends the process that parses some malformed model files (SIGABRT, exit 134)
before any ``except`` runs; these tests would kill the test process itself if the
service parsed such a file in-process.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import pytest

from models.bundle import MANIFEST, BundleError, verify_manifest, write_manifest
from tests.api.conftest import headers

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the real-server test uses Linux process groups"
)
SCORE_BODY = {"customer_ids": ["C-risk-1", "C-low-1"], "as_of": "2026-01-15"}


def _truncated_copy(source: Path, folder: Path, *, manifest: bool) -> Path:
    shutil.copytree(source, folder)
    booster = folder / "booster.txt"
    text = booster.read_text(encoding="utf-8")
    booster.write_text(text[: len(text) // 2], encoding="utf-8")
    if not manifest:  # a bundle written before manifests existed
        (folder / MANIFEST).unlink()
    return folder


@pytest.fixture(params=[True, False], ids=["with-manifest", "without-manifest"])
def truncated_bundle(request, bundle_v1, tmp_path) -> Path:
    return _truncated_copy(bundle_v1, tmp_path / "truncated", manifest=request.param)


def test_a_truncated_booster_via_reload_is_refused_by_name_and_the_old_model_serves(
    make_client, truncated_bundle
):
    c = make_client()
    r = c.post("/admin/reload", json={"model_uri": str(truncated_bundle)}, headers=headers("admin"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:tijdig:problem:bundle-refused"
    assert problem["file"] == "booster.txt"
    assert "booster.txt" in problem["detail"]
    s = c.post("/v1/risk/scores", json=SCORE_BODY, headers=headers())
    assert s.status_code == 200
    assert s.json()["model_version"] == "test-v1"


def test_a_service_started_on_a_truncated_booster_is_not_ready_and_says_why(
    make_client, truncated_bundle
):
    c = make_client(model_uri=str(truncated_bundle))
    r = c.get("/readyz")
    assert r.status_code == 503
    model_check = r.json()["checks"]["model"]
    assert model_check.startswith("not loaded: the bundle was refused: booster.txt")
    assert str(truncated_bundle) not in r.text  # no paths to the unauthenticated
    assert c.get("/healthz").status_code == 200


def test_save_records_every_file_and_load_refuses_any_change(bundle_v1, tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(bundle_v1, folder)
    recorded = json.loads((folder / MANIFEST).read_text())["sha256"]
    assert set(recorded) == {p.name for p in folder.iterdir() if p.name != MANIFEST}
    assert verify_manifest(folder) is not None

    (folder / "risk_policy.json").write_text("{}")
    with pytest.raises(BundleError, match=r"risk_policy\.json does not match") as refused:
        verify_manifest(folder)
    assert refused.value.file == "risk_policy.json"
    write_manifest(folder)
    (folder / "extra.txt").write_text("smuggled")
    with pytest.raises(BundleError, match=r"extra\.txt is not listed"):
        verify_manifest(folder)
    (folder / MANIFEST).unlink()
    assert verify_manifest(folder) is None  # an old bundle: parse-checked only


@linux_only
@pytest.mark.slow
def test_a_truncated_bundle_reloaded_under_load_fails_no_request(settings, bundle_v1, tmp_path):
    """A real server answering score requests on 4 connections while an admin reloads a
    truncated bundle: the reload is refused by name, every score request is answered by
    the old model, and the server process lives on."""
    import threading
    import time

    from tests.api.conftest import KEYS
    from tests.api.test_server import _free_port, _request, start_tijdig, stop_tijdig

    truncated = _truncated_copy(bundle_v1, tmp_path / "truncated", manifest=True)
    port = _free_port()
    proc = start_tijdig(settings, tmp_path, port, workers=1)
    answers: list[tuple[int | None, str]] = []
    stop = threading.Event()
    body = json.dumps(SCORE_BODY).encode()

    def score_loop() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            while not stop.is_set():
                try:
                    answer = _request(conn, "POST", "/v1/risk/scores", body, key=KEYS["all"])
                    answers.append(
                        (200 if "results" in answer else None, answer.get("model_version", ""))
                    )
                except OSError as exc:  # a dropped connection is a failed request
                    answers.append((None, repr(exc)))
                    return

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                    if _request(probe, "GET", "/readyz").get("model_version") == "test-v1":
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        loops = [threading.Thread(target=score_loop) for _ in range(4)]
        for loop in loops:
            loop.start()
        time.sleep(1.0)
        with socket.create_connection(("127.0.0.1", port), timeout=120) as admin:
            refused = _request(
                admin,
                "POST",
                "/admin/reload",
                json.dumps({"model_uri": str(truncated)}).encode(),
                key=KEYS["admin"],
            )
        time.sleep(1.0)
        stop.set()
        for loop in loops:
            loop.join(timeout=60)
        assert refused.get("file") == "booster.txt", refused
        assert proc.poll() is None, "the server process died"
        assert len(answers) > 20
        assert all(status == 200 and version == "test-v1" for status, version in answers), [
            a for a in answers if a != (200, "test-v1")
        ][:5]
    finally:
        stop.set()
        stop_tijdig(proc)

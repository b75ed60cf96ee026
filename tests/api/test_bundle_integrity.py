"""A corrupt or truncated bundle is refused by name, and never takes the process down.

LightGBM ends the process that parses some malformed model files (SIGABRT, exit 134)
before any ``except`` runs; these tests would kill the test process itself if the
service parsed such a file in-process.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.bundle import MANIFEST, BundleError, verify_manifest, write_manifest
from tests.api.conftest import headers

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

"""serve(): uvicorn with the app factory, OMP_NUM_THREADS=1, settings passed to workers."""

from __future__ import annotations

import os
import sys


def test_serve_runs_the_factory_without_loading_a_model_in_the_parent(monkeypatch, tmp_path):
    import uvicorn

    from service import server
    from service.settings import ServiceSettings

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    # serve() exports to the environment: give it a private copy, restored afterwards
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIJDIG_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    monkeypatch.setattr(os, "environ", env)
    server.serve(
        ServiceSettings(data_dir=tmp_path, model_uri="/some/bundle"), "0.0.0.0", 8123, workers=2
    )
    assert calls["app"] == "service.app:create_app"
    assert calls["factory"] is True
    assert calls["workers"] == 2 and calls["port"] == 8123
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["TIJDIG_MODEL_URI"] == "/some/bundle"
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"].endswith("prometheus")
    # the workers rebuild the same settings from the environment
    assert ServiceSettings().model_uri == "/some/bundle"


def test_importing_the_app_loads_no_model_and_no_mlflow():
    import subprocess

    code = "import sys, service.app, service.server; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # MLflow is imported only to load a registry bundle

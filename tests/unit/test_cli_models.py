"""`tijdig models card` and `tijdig models ui`: the card of a registered version, and
MLflow's UI when (and only when) the full mlflow package is installed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture
def registered(trained, tmp_path, monkeypatch) -> str:
    """A data dir whose registry holds the session's trained bundle; its version."""
    from training.registry import Registry
    from training.settings import TrainingSettings

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    registry = Registry.from_settings(TrainingSettings())
    return str(registry.log_and_register(trained.bundle, {}, {}, [], {}))


def test_the_card_of_a_version_names_it_and_its_obligations(registered, tmp_path):
    printed = runner.invoke(app, ["models", "card", registered])
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith(f"# Model card: tijdig-risk/{registered}")
    assert "AI Act" in printed.output and "art. 26" in printed.output
    out = tmp_path / "card.md"
    written = runner.invoke(app, ["models", "card", registered, "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8").strip() == printed.output.strip()


def test_the_card_of_an_unknown_version_lists_the_versions(registered):
    result = runner.invoke(app, ["models", "card", "99"])
    assert result.exit_code == 2
    assert f"version 99 does not exist; versions: {registered}" in " ".join(result.output.split())


def test_the_card_without_a_registry_creates_none(tmp_path, monkeypatch):
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    result = runner.invoke(app, ["models", "card", "1"])
    assert result.exit_code == 2 and "no model registry" in result.output
    assert not (tmp_path / "state").exists()


def test_ui_without_the_mlflow_package_says_how_to_install_it(registered, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version

    def skinny_only(name: str) -> str:
        if name == "mlflow":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", skinny_only)
    result = runner.invoke(app, ["models", "ui"])
    assert result.exit_code == 1
    assert "pip install -e '.[ui]'" in " ".join(result.output.split())


def test_ui_runs_mlflow_on_the_tracking_store_bound_to_localhost(registered, tmp_path, monkeypatch):
    import importlib.metadata
    import shutil
    import subprocess

    calls: list[list[str]] = []
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.16.0")
    monkeypatch.setattr(shutil, "which", lambda name, path=None: "/opt/bin/mlflow")
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)
    result = runner.invoke(app, ["models", "ui", "--port", "0"])
    assert result.exit_code == 0, result.output
    (command,) = calls
    state = tmp_path / "state"
    assert command[:2] == ["/opt/bin/mlflow", "ui"]
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{state / 'mlflow.db'}"
    assert command[command.index("--default-artifact-root") + 1] == (
        (state / "mlartifacts").resolve().as_uri()
    )
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_challenger_points_the_alias_the_shadow_loads(registered):
    from training.registry import Registry
    from training.settings import TrainingSettings

    result = runner.invoke(app, ["models", "challenger", registered])
    assert result.exit_code == 0, result.output
    assert f"challenger → version {registered}" in result.output
    (row,) = Registry.from_settings(TrainingSettings()).versions()
    assert "challenger" in row["aliases"]
    assert runner.invoke(app, ["models", "challenger", "99"]).exit_code == 2


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--dask", "http://127.0.0.1:8786"], "--dask"),
        (["--offline", "no-such-folder"], "--offline"),
        (["--labels", "{labels}", "--partitioned"], "--labels"),
        (["--labels", "{labels}", "--sample-customers", "10"], "--labels"),
    ],
)
def test_train_refuses_scale_options_it_cannot_honour(args, hint, tmp_path, monkeypatch):
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    labels = tmp_path / "labels.csv"
    labels.write_text("customer_id,as_of,label\n")
    result = runner.invoke(app, ["train", *(a.format(labels=labels) for a in args)])
    assert result.exit_code == 2, result.output
    assert hint in result.output

"""A creditor's own data through the command line, as the README's "Your own data" runs it:
`import` (long records + attributes) → `ingest` → `train --labels` → `evaluate --cv`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "own-data"
runner = CliRunner()


@pytest.mark.slow
def test_from_files_to_a_trained_cross_validated_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    events = tmp_path / "events"
    imported = runner.invoke(
        app,
        [
            "import",
            str(EXAMPLE / "records.csv"),
            "--attributes",
            str(EXAMPLE / "attributes.csv"),
            "--mapping",
            str(EXAMPLE / "mapping.json"),
            "--out",
            str(events),
        ],
    )
    assert imported.exit_code == 0, imported.output
    said = " ".join(imported.output.split())  # as read, whatever the terminal's width
    assert "imported 160 accounts" in said
    assert "no labels: the mapping names no label_column" in said
    assert not list(events.glob("labels.*"))  # no silent empty labels file
    assert "not read (special-category data, GDPR art. 9): gender" in said

    ingested = runner.invoke(app, ["ingest", str(events)])
    assert ingested.exit_code == 0, ingested.output
    assert "warning" not in ingested.output  # side_attributes are expected beside the tables
    assert "customer_attributes 160" in " ".join(ingested.output.split())  # dated, employment

    labels = EXAMPLE / "labels.csv"
    trained = runner.invoke(app, ["train", "--labels", str(labels)])
    assert trained.exit_code in (0, 3), trained.output  # 3: the gate kept it as candidate
    said = " ".join(trained.output.split())
    assert "labels: external labels, horizon 92 days" in said
    # no pay-later orders in a card book: the bundle keeps the policy file's cut-off
    assert "pay-later policy: kept the policy file's defaults: 0 pay-later orders" in said
    assert "version 1" in trained.output

    out = tmp_path / "cv"
    evaluated = runner.invoke(
        app, ["evaluate", "--labels", str(labels), "--cv", "3", "--out", str(out)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((out / "cv_report.json").read_text())
    assert report["k"] == 3 and report["customers"] == 160
    assert report["rows"] == len(pd.read_csv(labels))
    assert set(report["summary"]) == {"model", "logistic_regression"}
    assert report["summary"]["model"]["roc_auc"] > 0.6  # the history carries signal
    assert "StratifiedGroupKFold" in report["protocol"]  # several dates per customer
    assert report["mlflow_run_id"]
    assert "| model |" in (out / "cv_report.md").read_text()


def test_evaluate_refuses_labels_it_cannot_use_without_a_traceback(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    events = tmp_path / "events"
    shutil.copytree(EXAMPLE, tmp_path / "example")
    runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "example" / "records.csv"),
            "--mapping",
            str(tmp_path / "example" / "mapping.json"),
            "--attributes",
            str(tmp_path / "example" / "attributes.csv"),
            "--out",
            str(events),
        ],
    )
    assert runner.invoke(app, ["ingest", str(events)]).exit_code == 0
    labels = pd.read_csv(EXAMPLE / "labels.csv").iloc[:6]  # one customer's, all zeros
    labels.to_csv(tmp_path / "few.csv", index=False)
    result = runner.invoke(app, ["evaluate", "--labels", str(tmp_path / "few.csv")])
    assert result.exit_code == 1
    assert "5-fold cross-validation needs at least 5 rows of each label" in result.output
    assert "Traceback" not in result.output

"""The label horizon is stated, used and recorded: 12-month labels purged at 90 days put
training labels inside the validation period, scored higher for it, and the gate
promoted that model over the correctly purged one."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.events import to_day
from features.labels import LabelConfig
from tests.unit.test_cli import _ingest_first
from training.dataset import Snapshots, out_of_time_split
from training.label_definition import (
    EXTERNAL,
    LabelDefinition,
    LabelFileRejected,
    definition_of,
    label_config_of,
    read_label_file,
)
from training.registry import promotion_gate
from training.rejected import TrainingDataRejected

runner = CliRunner()
TWELVE_MONTHS = 365


def _monthly_snaps(first: str, n: int) -> Snapshots:
    days = np.array([to_day(d.date()) for d in pd.date_range(first, periods=n, freq="MS")])
    return Snapshots(
        X=np.zeros((n, 1)),
        y=np.zeros(n),
        customer=np.zeros(n, np.int64),
        as_of=days.astype(np.int64),
        feature_names=("f",),
        source="external labels",
    )


def _label_window_overlaps(split, horizon_days: int) -> bool:
    """Whether a training label window (as_of + horizon) reaches the validation period."""
    last_train = pd.Timestamp(split.dates["train"][-1])
    first_validation = pd.Timestamp(split.dates["validation"][0])
    return last_train + pd.Timedelta(days=horizon_days) > first_validation


def test_twelve_month_labels_are_purged_by_their_stated_horizon_not_90_days() -> None:
    snaps = _monthly_snaps("2023-01-01", 36)
    at_default = out_of_time_split(snaps, 90)
    assert _label_window_overlaps(at_default, TWELVE_MONTHS)  # the leak the user found
    stated = out_of_time_split(snaps, TWELVE_MONTHS)
    assert not _label_window_overlaps(stated, TWELVE_MONTHS)
    first_cal = pd.Timestamp(stated.dates["calibration"][0])
    assert pd.Timestamp(stated.dates["train"][-1]) + pd.Timedelta(days=365) <= first_cal


def _write_labels(path, sidecar: dict | None = None) -> None:
    pd.DataFrame({"customer_id": ["a"], "as_of": ["2025-01-01"], "label": [1]}).to_csv(
        path, index=False
    )
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))


def test_the_horizon_comes_from_the_sidecar_or_the_flag_else_the_default_with_a_warning(
    tmp_path,
) -> None:
    labels = tmp_path / "labels.csv"
    _write_labels(labels, {"horizon_days": 365, "definition": "90+ dpd within 12 months"})
    read = read_label_file(labels, None, 90)
    assert read.definition == LabelDefinition(365, EXTERNAL, "90+ dpd within 12 months")
    assert read.warning is None
    assert read_label_file(labels, 365, 90).definition.horizon_days == 365  # agreeing

    bare = tmp_path / "bare.csv"
    _write_labels(bare)
    assert read_label_file(bare, 180, 90).definition.horizon_days == 180
    unstated = read_label_file(bare, None, 90)
    assert unstated.definition.horizon_days == 90
    assert "state no horizon" in unstated.warning and "default 90 days" in unstated.warning
    assert "--horizon-days N" in unstated.warning and "bare.json" in unstated.warning


@pytest.mark.parametrize(
    ("sidecar", "flag", "message"),
    [
        ({"horizon_days": 365}, 90, "--horizon-days 90 contradicts the horizon_days 365"),
        ({"horizon_days": "12 months"}, None, "positive whole number of days; got '12 months'"),
        ({"horizon_days": 0}, None, "positive whole number of days; got 0"),
        ({"horizon": 365}, None, "unknown keys ['horizon']"),
        ({"definition": ""}, None, "definition must be a text"),
    ],
)
def test_a_sidecar_that_contradicts_or_cannot_be_read_is_refused(
    tmp_path, sidecar, flag, message
) -> None:
    labels = tmp_path / "labels.csv"
    _write_labels(labels, sidecar)
    with pytest.raises(LabelFileRejected) as refused:
        read_label_file(labels, flag, 90)
    assert message in str(refused.value)
    assert isinstance(refused.value, TrainingDataRejected)  # `tijdig train` reports it


def _with_label(bundle, **label):
    metadata = json.loads(json.dumps(bundle.metadata))
    metadata["label"].update(label)
    return dataclasses.replace(bundle, metadata=metadata)


def test_the_events_model_records_its_label_definition(trained) -> None:
    label = trained.bundle.metadata["label"]
    assert label["horizon_days"] == 90 and label["source"] == "events"
    assert label["definition"] == "an invoice 30+ days past due within the horizon"
    assert label_config_of(trained.bundle.metadata) == LabelConfig()  # what monitoring reads
    # a bundle trained before the definition was recorded reads as the same labels
    old = {"label": {"horizon_days": 90, "dpd_threshold": 30, "min_tenure_days": 90}}
    assert definition_of(old) == definition_of(trained.bundle.metadata)


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ({"horizon_days": 365}, "label horizon 365 days differs from the champion's 90 days"),
        (
            {"source": EXTERNAL, "definition": "90+ dpd within 3 months"},
            "label definition '90+ dpd within 3 months' (external labels) differs",
        ),
    ],
)
def test_the_gate_refuses_a_model_trained_on_other_labels_than_the_champion(
    trained, snapshots, label, why
) -> None:
    va = snapshots.subset(trained.split.validation)
    other = _with_label(trained.bundle, **label)
    decision = promotion_gate(other, va.X, va.y, trained.bundle, candidate_version="7")
    assert not decision.promote and decision.checks["label_comparable"] is False
    assert decision.champion_metrics is None  # not compared
    summary = decision.summary()
    assert why in summary
    assert "not comparable; promote explicitly with `tijdig models promote 7`" in summary
    # the same labels compare as ever
    assert promotion_gate(trained.bundle, va.X, va.y, trained.bundle).checks.get(
        "roc_auc_vs_champion"
    )


@pytest.fixture
def store_with_customers(population, tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    return _ingest_first(population, 30, tmp_path / "events")


def _twelve_month_labels(ids: list[str], path) -> None:
    dates = pd.date_range("2023-01-01", periods=36, freq="MS").strftime("%Y-%m-%d")
    rows = [(c, d, (i + j) % 2) for i, c in enumerate(ids) for j, d in enumerate(dates)]
    pd.DataFrame(rows, columns=["customer_id", "as_of", "label"]).to_csv(path, index=False)


@pytest.fixture
def captured(monkeypatch) -> dict:
    """What `tijdig train` hands the trainer; training stops there (fitting is tested elsewhere)."""
    import training.pipeline

    seen: dict = {}

    def capture(events, snaps, label_config, **kwargs):
        seen["horizon_days"] = label_config.horizon_days
        seen["definition"] = kwargs["label_definition"]
        seen["split"] = out_of_time_split(snaps, label_config.horizon_days)
        raise TrainingDataRejected("stopped by the test")

    monkeypatch.setattr(training.pipeline, "train_candidate", capture)
    return seen


def test_train_uses_the_horizon_stated_beside_the_labels(
    store_with_customers, captured, tmp_path
) -> None:
    labels = tmp_path / "labels.csv"
    _twelve_month_labels(store_with_customers, labels)
    labels.with_suffix(".json").write_text(
        json.dumps({"horizon_days": 365, "definition": "90+ dpd within 12 months"})
    )
    result = runner.invoke(app, ["train", "--labels", str(labels)])
    assert "stopped by the test" in result.output and "warning" not in result.output
    assert captured["horizon_days"] == 365
    assert captured["definition"].as_metadata() == {
        "horizon_days": 365,
        "source": EXTERNAL,
        "definition": "90+ dpd within 12 months",
    }
    assert not _label_window_overlaps(captured["split"], TWELVE_MONTHS)


def test_train_on_labels_without_a_horizon_warns_and_takes_the_default(
    store_with_customers, captured, tmp_path
) -> None:
    labels = tmp_path / "labels.csv"
    _twelve_month_labels(store_with_customers, labels)
    result = runner.invoke(app, ["train", "--labels", str(labels)])
    output = " ".join(result.output.split())
    assert "warning: the labels labels.csv state no horizon" in output
    assert captured["horizon_days"] == 90
    flagged = runner.invoke(app, ["train", "--labels", str(labels), "--horizon-days", "365"])
    assert "warning" not in flagged.output and captured["horizon_days"] == 365


def test_the_horizon_option_applies_to_labels_from_the_events(
    store_with_customers, captured
) -> None:
    runner.invoke(app, ["train", "--horizon-days", "60"])
    assert captured["horizon_days"] == 60
    assert captured["definition"].horizon_days == 60 and captured["definition"].source == "events"

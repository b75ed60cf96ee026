"""`tijdig run`'s bootstrap (training.bootstrap) on a data dir that holds a champion."""

from __future__ import annotations

import json
import os
from datetime import date

import pytest

from features.io import write_event_dir
from training.bootstrap import DefaultDayInvalid, bootstrap, default_day, ingest_folder


class RecordingView:
    """Every call the bootstrap makes, by method name."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, args[0] if args else None))


def test_a_data_dir_with_a_champion_is_only_refreshed_for_the_simulated_day(
    population, trained, tmp_path, monkeypatch
):
    from training.registry import GateDecision, Registry
    from training.settings import TrainingSettings

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("TIJDIG_DEFAULT_AS_OF", raising=False)
    settings = TrainingSettings()
    ids = population.tables["customers"]["customer_id"].iloc[:20].tolist()
    events = tmp_path / "events"
    write_event_dir(
        {name: df[df["customer_id"].isin(ids)] for name, df in population.tables.items()},
        events,
        fmt="parquet",
    )
    assert ingest_folder(events, settings).report.summary()
    registry = Registry.from_settings(settings)
    version = registry.log_and_register(trained.bundle, {}, {}, [], {})
    registry.record_gate(
        version, GateDecision(promote=True, reasons=["test"], candidate_metrics={})
    )
    truth = settings.simulation_dir / "truth"
    truth.mkdir(parents=True)
    (truth / "simulation.json").write_text(json.dumps({"config": {"end_date": "2026-06-01"}}))

    view = RecordingView()
    assert bootstrap(settings, view, today=date(2030, 1, 1)) is True
    names = [name for name, _ in view.calls]
    assert names == ["champion_found", "default_day_set", "stage", "refreshed"]
    assert os.environ["TIJDIG_DEFAULT_AS_OF"] == "2026-06-01"
    rows = view.calls[-1][1]
    assert (rows.day, rows.computed, rows.total) == (date(2026, 6, 1), 20, 20)
    again = RecordingView()
    assert bootstrap(settings, again, today=date(2030, 1, 1)) is True
    assert [name for name, _ in again.calls] == ["champion_found", "stage", "refreshed"]
    assert again.calls[-1][1].computed == 0  # the rows of the first start are still valid


def test_the_default_day_is_the_variable_then_the_simulated_world_then_today(tmp_path, monkeypatch):
    from training.settings import TrainingSettings

    monkeypatch.delenv("TIJDIG_DEFAULT_AS_OF", raising=False)
    settings = TrainingSettings(data_dir=tmp_path)
    assert default_day(settings, date(2030, 1, 1)) == date(2030, 1, 1)
    truth = settings.simulation_dir / "truth"
    truth.mkdir(parents=True)
    (truth / "simulation.json").write_text(json.dumps({"config": {"end_date": "2026-06-01"}}))
    assert default_day(settings, date(2030, 1, 1)) == date(2026, 6, 1)
    monkeypatch.setenv("TIJDIG_DEFAULT_AS_OF", "2026-03-01")
    assert default_day(settings, date(2030, 1, 1)) == date(2026, 3, 1)
    monkeypatch.setenv("TIJDIG_DEFAULT_AS_OF", "1 March")
    with pytest.raises(DefaultDayInvalid, match="YYYY-MM-DD"):
        default_day(settings, date(2030, 1, 1))

"""`tijdig report impact`: the impact report of the data dir's event store (or a folder),
written where the service serves it from."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def event_folder(population, tmp_path_factory):
    from features.io import write_event_dir

    folder = tmp_path_factory.mktemp("impact") / "events"
    write_event_dir(population.tables, folder, fmt="parquet")
    return folder


def test_impact_of_a_folder_is_written_into_the_data_dirs_reports(event_folder, tmp_path):
    state = tmp_path / "state"
    args = ["report", "impact", "--events", str(event_folder), "--data-dir", str(state)]
    result = runner.invoke(app, [*args, "--split-at", "2025-07-01"])
    assert result.exit_code == 0, result.output
    report = json.loads((state / "reports" / "impact.json").read_text(encoding="utf-8"))
    assert report["empty_reason"] is None and report["split_at"] == "2025-07-01"
    assert report["total"]["invoices"]["invoices"] > 0 and report["before"] is not None
    assert (state / "reports" / "impact.html").is_file()
    printed = " ".join(result.output.split())
    assert " ".join(report["headlines"][0].split()) in printed and "wrote" in printed


def test_impact_reads_the_event_store_by_default(population, tmp_path):
    from features.store import EventStore

    state = tmp_path / "state"
    store = EventStore(f"sqlite:///{state / 'events.db'}")
    store.create_schema()
    ids = population.tables["customers"]["customer_id"].iloc[:50]
    store.ingest({n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()})
    store.dispose()
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "impact", "--data-dir", str(state), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "impact.json").read_text(encoding="utf-8"))
    assert report["total"]["invoices"]["customers"] <= 50


def test_impact_refuses_a_data_dir_without_a_store_and_creates_nothing(tmp_path):
    state = tmp_path / "nodata"
    result = runner.invoke(app, ["report", "impact", "--data-dir", str(state)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert str(state / "events.db") in message and "tijdig ingest" in message
    assert not state.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "2026-02-01", "--until", "2026-01-01"],
        ["--split-at", "01-07-2025"],
        ["--events", "/no/such/folder"],
    ],
)
def test_impact_refuses_bad_options_naming_them(tmp_path, args):
    result = runner.invoke(app, ["report", "impact", "--data-dir", str(tmp_path / "s"), *args])
    assert result.exit_code == 2
    assert args[-2] in result.output
    assert not (tmp_path / "s").exists()

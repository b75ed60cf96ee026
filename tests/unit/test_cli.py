"""The command line: `tijdig ingest` is all or nothing and says what was wrong."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from features.io import write_event_dir
from features.store import EventStore

runner = CliRunner()


def test_ingest_a_folder_then_again_changes_nothing(population, tmp_path, monkeypatch):
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    folder = tmp_path / "events"
    write_event_dir(population.tables, folder, fmt="parquet")
    first = runner.invoke(app, ["ingest", str(folder)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["ingest", str(folder)])
    assert again.exit_code == 0 and "0 inserted" in again.output.replace("\n", " ")
    store = EventStore(f"sqlite:///{tmp_path / 'state' / 'events.db'}")
    assert store.count("invoices") == len(population.tables["invoices"])
    store.dispose()


def test_a_bad_folder_is_rejected_naming_the_column_and_writes_nothing(
    population, tmp_path, monkeypatch
):
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    tables = {name: df.copy() for name, df in population.tables.items()}
    tables["invoices"].loc[3, "amount_cents"] = -500
    folder = tmp_path / "bad"
    write_event_dir(tables, folder, fmt="csv")
    result = runner.invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 1
    assert "rejected, nothing written" in result.output and "amount_cents" in result.output
    store = EventStore(f"sqlite:///{tmp_path / 'state' / 'events.db'}")
    assert store.count("customers") == 0 and store.count("invoices") == 0
    store.dispose()


def test_features_refresh_then_score_batch_read_the_rows(
    population, bundle_dir, tmp_path, monkeypatch
):
    import pandas as pd

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    ids = population.tables["customers"]["customer_id"].iloc[:40].tolist()
    folder = tmp_path / "events"
    write_event_dir(
        {n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()},
        folder,
        fmt="parquet",
    )
    assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    args = ["--as-of", "2026-06-01", "--model-uri", str(bundle_dir)]
    first = runner.invoke(app, ["features", "refresh", *args])
    assert first.exit_code == 0, first.output
    assert "40 of 40 customers computed" in first.output.replace("\n", " ")
    again = runner.invoke(app, ["features", "refresh", *args])
    assert "0 of 40 customers computed, 40 still valid" in again.output.replace("\n", " ")
    out = tmp_path / "scores.parquet"
    scored = runner.invoke(app, ["score-batch", *args, "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    assert sorted(pd.read_parquet(out)["customer_id"]) == sorted(ids)


def test_the_default_world_ends_on_a_fixed_day_so_its_figures_reproduce(tmp_path):
    import json
    from datetime import date

    from training.simulation.config import DEFAULT_END_DATE, SimulationConfig

    assert SimulationConfig().period() == (date(2024, 11, 1), DEFAULT_END_DATE)
    out = tmp_path / "sim"
    result = runner.invoke(
        app, ["simulate", "--customers", "20", "--months", "6", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((out / "truth" / "simulation.json").read_text())["config"]
    assert written["end_date"] == DEFAULT_END_DATE.isoformat()


def test_simulate_now_ends_the_world_this_month_and_a_bad_end_is_refused(tmp_path):
    import json
    from datetime import date

    out = tmp_path / "sim"
    now = runner.invoke(
        app, ["simulate", "--customers", "20", "--months", "6", "--end", "now", "--out", str(out)]
    )
    assert now.exit_code == 0, now.output
    end = json.loads((out / "truth" / "simulation.json").read_text())["config"]["end_date"]
    assert end == date.today().replace(day=1).isoformat()
    bad = runner.invoke(app, ["simulate", "--customers", "20", "--end", "1 Nov", "--out", str(out)])
    assert bad.exit_code == 2 and "--end" in bad.output


def test_train_with_unusable_labels_says_why_without_a_traceback(population, tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    ids = population.tables["customers"]["customer_id"].iloc[:40].tolist()
    folder = tmp_path / "events"
    write_event_dir(
        {n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()},
        folder,
        fmt="parquet",
    )
    assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {"customer_id": ids[:3], "as_of": ["2026-05-01", "01/05/2026", ""], "label": [0, 1, 1]}
    ).to_csv(labels, index=False)
    result = runner.invoke(app, ["train", "--labels", str(labels)])
    assert result.exit_code == 1
    assert "external labels rejected" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_every_command_scores_a_simulated_world_on_its_last_day(
    population, bundle_dir, tmp_path, monkeypatch
):
    """A new user's walk through the README (1 Dec 2026): `run` served the simulated
    world's last day, `score-batch` and `features refresh` the real date, so one customer
    got two answers and a refresh purged the rows the server read."""
    import json

    import pandas as pd

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("TIJDIG_DEFAULT_AS_OF", raising=False)
    ids = population.tables["customers"]["customer_id"].iloc[:20].tolist()
    folder = tmp_path / "events"
    write_event_dir(
        {n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()},
        folder,
        fmt="parquet",
    )
    assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    truth = tmp_path / "state" / "simulation" / "truth"
    truth.mkdir(parents=True)
    (truth / "simulation.json").write_text(json.dumps({"config": {"end_date": "2026-06-01"}}))
    model = ["--model-uri", str(bundle_dir)]
    refreshed = runner.invoke(app, ["features", "refresh", *model])
    assert refreshed.exit_code == 0, refreshed.output
    assert "as of 2026-06-01" in refreshed.output.replace("\n", " ")
    out = tmp_path / "scores.parquet"
    scored = runner.invoke(app, ["score-batch", *model, "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    assert set(pd.read_parquet(out)["as_of"].astype(str)) == {"2026-06-01"}

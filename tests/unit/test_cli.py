"""The command line: `tijdig ingest` is all or nothing and says what was wrong."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from features.io import write_event_dir
from features.store import EventStore

runner = CliRunner()


def _ingest_first(population, n: int, folder) -> list[str]:
    """Write the first ``n`` customers' events to ``folder`` and ingest them into the data
    dir of ``TIJDIG_DATA_DIR``; returns their ids."""
    ids = population.tables["customers"]["customer_id"].iloc[:n].tolist()
    write_event_dir(
        {name: df[df["customer_id"].isin(ids)] for name, df in population.tables.items()},
        folder,
        fmt="parquet",
    )
    assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    return ids


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
    ids = _ingest_first(population, 40, tmp_path / "events")
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
    ids = _ingest_first(population, 40, tmp_path / "events")
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
    _ingest_first(population, 20, tmp_path / "events")
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


# ---------------------------------------------------------------------------- user mistakes
# A new user's walk through the README: each mistake below printed a traceback, created
# empty state or reported success. Each now prints one message and exits non-zero.


def _one_message(result, code: int) -> str:
    """The output of a refused command: exit ``code``, no traceback; returned flattened."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("command", "needs"),
    [
        (["export", "OUT", "--format", "csv"], "events.db"),
        (["train"], "events.db"),
        (["score-batch", "--out", "OUT"], "events.db"),
        (["features", "refresh"], "events.db"),
        (["decisions", "export", "OUT"], "decisions.db"),
        (["decisions", "purge"], "decisions.db"),
        (["models", "list"], "mlflow.db"),
        (["models", "promote", "1"], "mlflow.db"),
    ],
)
def test_a_command_that_reads_refuses_a_data_dir_without_its_state_and_creates_nothing(
    command, needs, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default .tijdig must not appear either
    monkeypatch.delenv("TIJDIG_DATA_DIR", raising=False)
    data_dir = tmp_path / "nodata"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    message = _one_message(runner.invoke(app, [*args, "--data-dir", str(data_dir)]), 2)
    assert str(data_dir / needs) in message and "--data-dir" in message
    assert not data_dir.exists() and not (tmp_path / ".tijdig").exists()
    assert not (tmp_path / "out").exists()


def test_the_data_dir_from_the_environment_is_checked_too(tmp_path, monkeypatch):
    """`tijdig decisions export` without a log said "exported 0 decisions" and created
    ./.tijdig/decisions.db; `tijdig export` created an empty events.db and failed on it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIJDIG_DATA_DIR", raising=False)
    message = _one_message(runner.invoke(app, ["decisions", "export", "audit.jsonl"]), 2)
    assert "decisions.db does not exist" in message
    assert not (tmp_path / ".tijdig").exists() and not (tmp_path / "audit.jsonl").exists()
    # an empty events.db (left by an earlier version) is no store either
    state = tmp_path / "state"
    state.mkdir()
    (state / "events.db").touch()
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(state))
    message = _one_message(runner.invoke(app, ["export", "out"]), 2)
    assert "holds no event tables" in message and "tijdig ingest" in message


def test_scoring_without_a_model_says_to_train_first_and_creates_no_registry(tmp_path, monkeypatch):
    """`tijdig score-batch` printed ~70 lines ending in BundleError and created the registry."""
    state = tmp_path / "state"
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(state))
    store = EventStore(f"sqlite:///{state / 'events.db'}")
    store.create_schema()
    store.dispose()
    for command in (["score-batch", "--out", str(tmp_path / "s.parquet")], ["features", "refresh"]):
        message = _one_message(runner.invoke(app, command), 2)
        assert "no model registry" in message and "tijdig train" in message
        assert not (state / "mlflow.db").exists()
    missing = tmp_path / "no-bundle"
    message = _one_message(runner.invoke(app, ["score-batch", "--model-uri", str(missing)]), 2)
    assert "cannot load the model" in message


def test_decisions_export_and_purge_read_the_log_of_data_dir(tmp_path, monkeypatch):
    from service.decision_log import DecisionLog

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIJDIG_DATA_DIR", raising=False)
    monkeypatch.delenv("TIJDIG_DECISION_LOG_URL", raising=False)
    state = tmp_path / "state"
    DecisionLog(f"sqlite:///{state / 'decisions.db'}").open().close()
    out = tmp_path / "audit.jsonl"
    exported = runner.invoke(app, ["decisions", "export", str(out), "--data-dir", str(state)])
    assert exported.exit_code == 0, exported.output
    assert "exported 0 decisions" in exported.output and out.is_file()
    purged = runner.invoke(app, ["decisions", "purge", "--data-dir", str(state)])
    assert purged.exit_code == 0 and "purged 0 decisions" in purged.output
    assert not (tmp_path / ".tijdig").exists()


def test_serve_passes_data_dir_to_the_workers(tmp_path, monkeypatch):
    import service.server

    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "elsewhere"))  # restored after
    served = []
    monkeypatch.setattr(service.server, "serve", lambda settings, **kw: served.append(settings))
    result = runner.invoke(app, ["serve", "--port", "0", "--data-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert served[0].data_dir == state and served[0].store_url.endswith("state/events.db")
    import os

    assert os.environ["TIJDIG_DATA_DIR"] == str(state)  # what the workers read
    message = _one_message(runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "x")]), 2)
    assert "no data dir" in message and len(served) == 1


def test_promoting_a_version_that_does_not_exist_lists_the_versions(trained, tmp_path, monkeypatch):
    """`tijdig models promote 3` printed ~120 lines ending in BundleError ... not found."""
    from training.registry import GateDecision, Registry
    from training.settings import TrainingSettings

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    registry = Registry.from_settings(TrainingSettings())
    version = registry.log_and_register(trained.bundle, {}, {}, [], {})
    registry.record_gate(
        version, GateDecision(promote=True, reasons=["test"], candidate_metrics={})
    )
    message = _one_message(runner.invoke(app, ["models", "promote", "3"]), 2)
    assert f"version 3 does not exist; versions: {version} (champion)" in message


def test_ordinary_mistakes_get_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    message = _one_message(runner.invoke(app, ["ingest", "/no/such/folder"]), 2)
    assert "/no/such/folder does not exist" in message and "customers" in message
    message = _one_message(runner.invoke(app, ["train", "--labels", "nolabels.csv"]), 2)
    assert "nolabels.csv" in message
    for command in (
        ["decisions", "export", "x.jsonl", "--since", "01-01-2026"],
        ["decisions", "export", "x.jsonl", "--until", "2026-13-01"],
        ["score-batch", "--as-of", "1/2/2026"],
        ["features", "refresh", "--as-of", "yesterday"],
    ):
        message = _one_message(runner.invoke(app, command), 2)
        assert "YYYY-MM-DD" in message, command
    assert not (tmp_path / "state").exists()


def test_ingest_of_a_folder_without_event_tables_fails_naming_the_files(tmp_path, monkeypatch):
    """A misnamed export printed warnings and "Accepted: 0 rows received", exit 0: a cron
    job would take it for success."""
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Customers.csv").write_text("customer_id\nC1\n")
    (folder / "invoice.csv").write_text("invoice_id\nI1\n")
    message = _one_message(runner.invoke(app, ["ingest", str(folder)]), 2)
    assert "no event table" in message and "Customers.csv" in message
    assert "customers, invoices, payments" in message and "lower case" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no event table" in _one_message(runner.invoke(app, ["ingest", str(empty)]), 2)
    assert not (tmp_path / "state").exists()


def test_ingest_rejected_by_another_world_in_the_store_says_so(population, tmp_path, monkeypatch):
    """Re-simulating into a data dir holding another world printed ~60 immutable_event
    errors and no hint."""
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    ids = population.tables["customers"]["customer_id"].iloc[:10].tolist()
    tables = {n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()}
    write_event_dir(tables, tmp_path / "first", fmt="parquet")
    assert runner.invoke(app, ["ingest", str(tmp_path / "first")]).exit_code == 0
    other = {n: df.copy() for n, df in tables.items()}
    other["invoices"]["amount_cents"] = other["invoices"]["amount_cents"] + 100
    write_event_dir(other, tmp_path / "second", fmt="parquet")
    message = _one_message(runner.invoke(app, ["ingest", str(tmp_path / "second")]), 1)
    assert "immutable_event" in message
    assert "another simulation?" in message and "make clean" in message


def test_a_port_in_use_is_named_before_anything_starts(tmp_path, monkeypatch):
    """A second `make run` printed the "tijdig is serving" banner, then `[Errno 98]
    address already in use`."""
    import socket

    import service.server
    from cli.checks import port_problem

    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(service.server, "serve", lambda *a, **k: pytest.fail("served"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        problem = port_problem("127.0.0.1", port)
        assert problem and f"port {port} on 127.0.0.1 is in use (another tijdig?)" in problem
        assert f"make run PORT={port + 1}" in problem
        for command in ("run", "serve"):
            result = runner.invoke(app, [command, "--port", str(port)])
            message = _one_message(result, 1)
            assert f"port {port} on 127.0.0.1 is in use" in message
            assert "tijdig is serving" not in message
    assert not (tmp_path / "state").exists()  # `run` refused before creating its state
    assert port_problem("127.0.0.1", port) is None


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("command", "variable", "needs"),
    [
        (["train"], "TIJDIG_STORE_URL", "holds no customers table"),
        (["score-batch", "--out", "OUT"], "TIJDIG_STORE_URL", "holds no customers table"),
        (["decisions", "export", "OUT"], "TIJDIG_DECISION_LOG_URL", "holds no decisions table"),
    ],
)
def test_a_server_without_the_tables_is_refused_and_nothing_is_created(
    command, variable, needs, tmp_path, monkeypatch
):
    """A PostgreSQL store or log without tables: `tijdig train` printed a traceback
    (relation "customers" does not exist) and `features refresh` created empty tables."""
    import sqlalchemy as sa

    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("cli") as url:
        monkeypatch.setenv(variable, url)
        args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
        message = _one_message(runner.invoke(app, [*args, "--data-dir", str(tmp_path)]), 2)
        assert needs in message
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert sa.inspect(conn).get_table_names() == []  # nothing created
        finally:
            engine.dispose()


def test_a_server_that_does_not_answer_is_named_with_the_password_masked(tmp_path, monkeypatch):
    """Port 1 on 127.0.0.1 refuses at once: the message names the server and what to check,
    never the password, and no traceback."""
    monkeypatch.setenv("TIJDIG_STORE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    message = _one_message(runner.invoke(app, ["train", "--data-dir", str(tmp_path)]), 2)
    assert "u:***@127.0.0.1:1/x cannot be reached" in message and "TIJDIG_STORE_URL" in message
    assert "secret" not in message


def test_decisions_purge_keeps_the_retention_minimum_counts_first_and_asks(tmp_path):
    from datetime import UTC, datetime, timedelta

    from service.decision_log import DecisionLog
    from tests.api.decision_log.support import row

    state = tmp_path / "state"
    log = DecisionLog(f"sqlite:///{state / 'decisions.db'}").open()
    now = datetime.now(UTC)
    log.write([row("OLD", now - timedelta(days=400)), row("NEW", now - timedelta(days=1))])
    log.close()
    where = ["--data-dir", str(state)]

    # a period under the minimum deletes nothing, whatever the flag says
    refused = runner.invoke(app, ["decisions", "purge", "--days", "0", "--yes", *where])
    assert refused.exit_code == 2 and "refusing to purge" in refused.output
    dry = runner.invoke(app, ["decisions", "purge", "--dry-run", *where])
    assert dry.exit_code == 0 and dry.output.startswith("1 decisions created before")
    declined = runner.invoke(app, ["decisions", "purge", *where], input="n\n")
    assert declined.exit_code == 1 and "nothing deleted" in declined.output
    purged = runner.invoke(app, ["decisions", "purge", "--yes", *where])
    assert purged.exit_code == 0 and "purged 1 decisions" in purged.output

    log = DecisionLog(f"sqlite:///{state / 'decisions.db'}").open()
    try:
        assert {d.customer_id for d in log.iter_decisions()} == {"NEW"}
    finally:
        log.close()

"""`tijdig ingest` with TIJDIG_OFFLINE_DIR writes the offline copy in the same run;
`tijdig offline check` says whether it holds the store's events; `score-batch --offline`
scores from it."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from cli.main import app
from features.io import write_event_dir

runner = CliRunner()


def test_ingest_writes_the_copy_check_finds_a_loss_and_sync_repairs_it(
    population, bundle_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TIJDIG_OFFLINE_DIR", str(tmp_path / "offline"))
    ids = population.tables["customers"]["customer_id"].iloc[:30].tolist()
    folder = tmp_path / "events"
    write_event_dir(
        {n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()},
        folder,
        fmt="parquet",
    )
    for _ in range(2):  # the second ingest stores nothing new, and adds nothing to the copy
        assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    ok = runner.invoke(app, ["offline", "check"])
    assert ok.exit_code == 0, ok.output
    assert "same events as the store" in ok.output

    out = tmp_path / "scores.parquet"
    args = ["--as-of", "2026-06-01", "--model-uri", str(bundle_dir), "--out", str(out)]
    scored = runner.invoke(app, ["score-batch", *args, "--offline", str(tmp_path / "offline")])
    assert scored.exit_code == 0, scored.output
    assert sorted(pd.read_parquet(out)["customer_id"]) == sorted(ids)

    no_dask = runner.invoke(
        app, ["score-batch", *args, "--offline", str(tmp_path / "offline"), "--dask", "local"]
    )
    assert no_dask.exit_code == 2 and "tcp://HOST:PORT" in no_dask.output.replace("\n", " ")

    lost = next((tmp_path / "offline" / "payments").rglob("part-*.parquet"))
    lost.unlink()
    bad = runner.invoke(app, ["offline", "check"])
    assert bad.exit_code == 1
    assert "payments: store" in bad.output.replace("\n", " ")
    assert runner.invoke(app, ["offline", "sync"]).exit_code == 0
    assert runner.invoke(app, ["offline", "check"]).exit_code == 0


def test_score_batch_refuses_a_missing_copy(bundle_dir, tmp_path):
    args = ["--model-uri", str(bundle_dir), "--as-of", "2026-06-01"]
    missing = runner.invoke(app, ["score-batch", *args, "--offline", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no offline copy" in missing.output.replace("\n", " ")

"""`tijdig monitor drift` and `monitor outcomes`: a Markdown report on standard output;
exit 0 without an alert to act on, 1 with one, 2 when there is nothing to compare."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    from models.bundle import Bundle

    return Bundle.load(bundle_dir)


def _scores_like_the_reference(bundle, path, shift: float = 0.0):
    """A scores file whose probabilities fill the reference's score bins in its shares
    (PSI about 0), moved to 0.99 when ``shift`` is set."""
    from training.monitoring.drift import SCORE_KEY

    entry = bundle.reference[SCORE_KEY]
    edges, shares = entry["edges"], entry["shares"]
    values = [*edges, edges[-1] + 1e-6]  # one value inside each right-closed bin
    counts = np.round(np.asarray(shares) * 10_000).astype(int)
    probability = np.repeat(values, counts)
    if shift:
        probability = np.full_like(probability, 0.99)
    pd.DataFrame(
        {"customer_id": "c", "as_of": date(2026, 1, 1), "probability": probability}
    ).to_parquet(path)
    return path


def _log(state, decisions):
    from service.decision_log import DecisionLog

    log = DecisionLog(f"sqlite:///{state / 'decisions.db'}").open()
    try:
        log.write(decisions)
    finally:
        log.close()


def _decision(n: int, created: datetime, kind: str, features: dict):
    from service.decision_log import Decision, new_decision_id

    return Decision(
        decision_id=new_decision_id(),
        created_at=created,
        kind=kind,
        customer_id=f"C{n}",
        as_of=created.date(),
        model_version="test",
        policy_version="p",
        inputs={},
        features=features,
        outputs={"probability": 0.99},
    )


def test_drift_reads_the_risk_decisions_since_the_day_and_exits_1_on_act(
    bundle, bundle_dir, tmp_path
):
    state = tmp_path / "state"
    odd = dict.fromkeys(bundle.feature_names, 1e9)  # far beyond every training value
    new, old = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    _log(
        state,
        [_decision(i, new, "risk_score", odd) for i in range(30)]
        + [_decision(i, old, "risk_score", odd) for i in range(7)]
        + [_decision(i, new, "affordability", odd) for i in range(5)],
    )
    args = ["--model-uri", str(bundle_dir), "--data-dir", str(state)]
    result = runner.invoke(app, ["monitor", "drift", "--since", "2026-03-01", *args])
    assert result.exit_code == 1, result.output
    assert "risk decisions logged since 2026-03-01" in result.output
    assert "(30 rows)" in result.output and "ACT: score PSI" in result.output


def test_drift_of_a_scores_file_exits_0_when_it_matches_and_1_when_it_moved(
    bundle, bundle_dir, tmp_path
):
    args = ["monitor", "drift", "--since", "2026-01-01", "--model-uri", str(bundle_dir)]
    args += ["--data-dir", str(tmp_path / "no-log")]  # with --scores the log is optional
    same = _scores_like_the_reference(bundle, tmp_path / "same.parquet")
    result = runner.invoke(app, [*args, "--scores", str(same)])
    assert result.exit_code == 0, result.output
    assert "Score PSI: 0.0" in result.output
    moved = _scores_like_the_reference(bundle, tmp_path / "moved.parquet", shift=1)
    assert runner.invoke(app, [*args, "--scores", str(moved)]).exit_code == 1


def test_drift_with_nothing_to_compare_is_refused(bundle_dir, tmp_path):
    state = tmp_path / "state"
    args = ["--model-uri", str(bundle_dir), "--data-dir", str(state)]
    missing = runner.invoke(app, ["monitor", "drift", "--since", "2026-01-01", *args])
    assert missing.exit_code == 2 and "no decision log" in missing.output
    assert not state.exists()
    _log(state, [])
    empty = runner.invoke(app, ["monitor", "drift", "--since", "2026-01-01", *args])
    assert empty.exit_code == 2 and "nothing to compare" in empty.output
    bad_day = runner.invoke(app, ["monitor", "drift", "--since", "1/3/2026", *args])
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.output


def test_outcomes_alert_on_a_miscalibrated_cohort_and_pass_a_calibrated_one(
    population, population_events, snapshots, label_config, bundle_dir, tmp_path
):
    from features.events import from_day
    from features.store import EventStore
    from training.monitoring.outcomes import LABEL, matured_labels

    state = tmp_path / "state"
    store = EventStore(f"sqlite:///{state / 'events.db'}")
    store.create_schema()
    store.ingest(population.tables)
    store.dispose()
    day = int(np.unique(snapshots.as_of)[-1])
    rows = snapshots.subset(snapshots.as_of == day)
    scored = pd.DataFrame(
        {
            "customer_id": population_events.customer_ids[rows.customer],
            "as_of": from_day(day),
            "probability": 0.99,
        }
    )
    labelled = matured_labels(scored, population_events, label_config)
    assert len(labelled) >= 200  # one cohort large enough for alerts (the policy's minimum)
    args = ["monitor", "outcomes", "--model-uri", str(bundle_dir), "--data-dir", str(state)]
    wrong = tmp_path / "wrong.parquet"
    scored.to_parquet(wrong)
    result = runner.invoke(app, [*args, "--scores", str(wrong)])
    assert result.exit_code == 1, result.output
    assert "ALERT" in result.output and "ECE" in result.output
    right = tmp_path / "right.parquet"
    labelled.assign(probability=0.005 + 0.99 * labelled[LABEL]).drop(columns=LABEL).to_parquet(
        right
    )
    result = runner.invoke(app, [*args, "--scores", str(right)])
    assert result.exit_code == 0, result.output
    assert "- no alert" in result.output

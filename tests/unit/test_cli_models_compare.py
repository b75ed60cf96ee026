"""`tijdig models compare` on a hand-built shadow log: agreement at once, both models'
metrics on the same rows once outcomes have matured."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from training.monitoring.compare import agreement, compare_report

runner = CliRunner()


def _shadow(customer_ids, as_of, champion, challenger, threshold=0.5, versions=("1", "2")):
    return [
        {
            "decision_id": f"d{i}-{versions[1]}",
            "created_at": datetime(2026, 3, 2, 12, tzinfo=UTC),
            "customer_id": str(c),
            "as_of": as_of,
            "champion_version": f"tijdig-risk/{versions[0]}",
            "challenger_version": f"tijdig-risk/{versions[1]}",
            "champion_probability": float(a),
            "challenger_probability": float(b),
            "champion_flag": bool(a >= threshold),
            "challenger_flag": bool(b >= threshold),
        }
        for i, (c, a, b) in enumerate(zip(customer_ids, champion, challenger, strict=True))
    ]


def _log(state, rows):
    from service.decision_log import DecisionLog

    log = DecisionLog(f"sqlite:///{state / 'decisions.db'}").open()
    try:
        log.log_shadow(rows)
    finally:
        log.close()


def test_agreement_of_hand_built_rows():
    rows = pd.DataFrame(
        _shadow(
            ["a", "b", "c", "d"],
            date(2026, 3, 1),
            [0.1, 0.2, 0.6, 0.9],
            [0.2, 0.1, 0.4, 0.8],
        )
    )
    a = agreement(rows)
    assert a.rows == 4
    assert a.rank_correlation == pytest.approx(0.8)  # one swapped pair: 1 - 6*2/(4*15)
    assert a.flag_agreement == pytest.approx(0.75)  # c: 0.6 flagged, 0.4 not
    assert a.mean_abs_difference == pytest.approx((0.1 + 0.1 + 0.2 + 0.1) / 4)
    assert (a.champion_flag_rate, a.challenger_flag_rate) == (0.5, 0.25)


def test_pairs_are_compared_apart():
    rows = _shadow("ab", date(2026, 3, 1), [0.1, 0.9], [0.1, 0.9])
    rows += _shadow("ab", date(2026, 3, 1), [0.1, 0.9], [0.9, 0.1], versions=("1", "3"))
    report = compare_report(pd.DataFrame(rows))
    by_pair = {p.challenger_version: p.agreement for p in report.pairs}
    assert by_pair["tijdig-risk/2"].flag_agreement == 1.0
    assert by_pair["tijdig-risk/3"].rank_correlation == pytest.approx(-1.0)
    assert "agreement only" in report.render()


def test_compare_prints_agreement_and_refuses_an_empty_period(tmp_path):
    state = tmp_path / "state"
    _log(
        state,
        _shadow(["a", "b", "c", "d"], date(2026, 3, 1), [0.1, 0.2, 0.6, 0.9], [0.2, 0.1, 0.4, 0.8]),
    )
    args = ["models", "compare", "--data-dir", str(state)]
    result = runner.invoke(app, [*args, "--since", "2026-03-01"])
    assert result.exit_code == 0, result.output
    assert "| tijdig-risk/1 | tijdig-risk/2 | 4 | 0.8000 | 75.00% | 0.1250 |" in result.output
    assert "no shadowed row has a matured outcome yet" in result.output
    later = runner.invoke(app, [*args, "--since", "2026-03-03"])
    assert later.exit_code == 2 and "no shadowed decision" in later.output


def test_compare_shows_both_models_on_the_same_matured_rows(
    population, population_events, snapshots, tmp_path
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
    ids = population_events.customer_ids[rows.customer]
    frame = pd.DataFrame({"customer_id": ids, "as_of": from_day(day), "probability": 0.5})
    label = matured_labels(frame, population_events).set_index("customer_id")[LABEL]
    y = label.reindex(ids).fillna(0).to_numpy()
    rng = np.random.default_rng(3)
    knows = 0.05 + 0.9 * y  # the champion knows the outcome
    guesses = rng.random(len(ids))  # the challenger does not
    _log(state, _shadow(ids, from_day(day), knows, guesses))
    result = runner.invoke(
        app, ["models", "compare", "--since", "2026-01-01", "--data-dir", str(state)]
    )
    assert result.exit_code == 0, result.output
    assert "Matured outcomes, same rows" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("| tijdig-risk/1 |"))
    matured = [x for x in result.output.splitlines() if x.startswith("| tijdig-risk/1 |")][-1]
    assert line != matured
    cells = [c.strip() for c in matured.strip("|").split("|")]
    assert int(cells[2].replace(",", "")) == len(label)
    assert float(cells[4]) == pytest.approx(1.0)  # champion ROC AUC
    assert 0.3 < float(cells[5]) < 0.7  # challenger ROC AUC: a coin

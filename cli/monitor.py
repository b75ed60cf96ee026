"""Monitoring commands (AI Act art. 26): `tijdig monitor drift` and `monitor outcomes`.

Both read a scored population: the risk decisions the service logged (the decision log
of the data dir) and, with ``--scores``, a `tijdig score-batch --out` file. Both print a
Markdown report on standard output and exit

* 0 when nothing calls for action (``watch`` lines may be printed: look, no alarm),
* 1 when there is an alert to act on: a column's PSI at the policy's ``act`` level
  (drift), or a cohort's ECE or ROC AUC beyond the policy's bounds (outcomes),
* 2 when there is nothing to compare (no decision log, no scored rows, no champion).

Thresholds are the versioned ``models/config/monitoring_policy.json``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.checks import (
    DataDir,
    console,
    decision_log_missing,
    fail,
    load_model,
    parse_day,
    require_decision_log,
    require_store,
    service_settings,
    training_settings,
)

monitor_app = typer.Typer(
    help="Monitor the champion: drift of its inputs and score, outcomes once matured.",
    no_args_is_help=True,
)

#: The decision kind whose features and probability are the risk model's.
RISK_DECISION_KIND = "risk_score"
#: Exit status when an alert calls for action.
EXIT_ACT = 1

Scores = Annotated[
    Path | None,
    typer.Option(help="a batch-scoring output (Parquet from `tijdig score-batch --out`)"),
]
_SINCE_HELP = "decisions from this day (YYYY-MM-DD), inclusive"
Until = Annotated[str | None, typer.Option(help="decisions until this day (YYYY-MM-DD), exclusive")]
ModelUri = Annotated[
    str | None, typer.Option(help="a bundle folder or models:/ URI instead of the champion")
]


def _day(text: str | None, option: str) -> date | None:
    return None if text is None else parse_day(text, option)


def _start_of(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def logged_scores(settings: Any, since: date | None, until: date | None) -> Any:
    """The risk decisions logged in [``since``, ``until``) as a scored frame (features,
    ``customer_id``, ``as_of``, ``probability``, ``model_version``)."""
    from service.decision_log import DecisionLog
    from training.monitoring.drift import scored_frame_from_decisions

    log = DecisionLog(settings.decision_log_url).open()
    try:
        records = [
            d.to_dict()
            for d in log.iter_decisions(_start_of(since), _start_of(until))
            if d.kind == RISK_DECISION_KIND
        ]
    finally:
        log.close()
    return scored_frame_from_decisions(records)


def _read_scores(scores: Path) -> Any:
    import pandas as pd

    if not scores.is_file():
        raise typer.BadParameter(f"no such file: {scores}", param_hint="--scores")
    try:
        frame = pd.read_parquet(scores)
    except (OSError, ValueError) as exc:  # not Parquet, unreadable
        fail(f"cannot read the scores {scores}: {exc}")
    if "probability" not in frame.columns:
        fail(f"{scores} has no probability column: give a `tijdig score-batch --out` file")
    return frame


def _populations(
    data_dir: Path | None, since: date | None, until: date | None, scores: Path | None
) -> list[tuple[str, Any]]:
    """(name, scored frame) of every population asked for: the logged decisions (needed
    unless ``--scores`` is given) and the scores file. Refuses (exit 2) when all are empty."""
    settings = service_settings(data_dir)
    populations: list[tuple[str, Any]] = []
    if scores is None:
        require_decision_log(settings)
    if scores is None or decision_log_missing(settings) is None:
        period = f"since {since}" if since else "so far"
        logged = logged_scores(settings, since, until)
        name = f"risk decisions logged {period}{f' until {until}' if until else ''}"
        if logged.empty:
            console.print(f"no {name}", markup=False)
        else:
            populations.append((name, logged))
    if scores is not None:
        populations.append((f"batch scores {scores}", _read_scores(scores)))
    if not populations:
        fail(
            "nothing to compare: no risk decision in the period; widen it, or give "
            "--scores FILE (from `tijdig score-batch --out`)"
        )
    return populations


@monitor_app.command("drift")
def monitor_drift(
    since: Annotated[str, typer.Option(help=_SINCE_HELP)],
    until: Until = None,
    scores: Scores = None,
    model_uri: ModelUri = None,
    data_dir: DataDir = None,
) -> None:
    """PSI of every feature and of the score against the champion's training reference.
    Exit 0: no column at the act level (watch lines may show); 1: at least one; 2: nothing
    to compare."""
    from training.monitoring.drift import drift_report

    start, end = parse_day(since, "--since"), _day(until, "--until")
    settings = training_settings(data_dir)
    bundle = load_model(settings, model_uri)
    act = False
    for name, frame in _populations(data_dir, start, end, scores):
        report = drift_report(bundle.reference, frame)
        typer.echo(f"# {name}, against {bundle.version}\n\n{report.render()}")
        act = act or any(c.status == "act" for c in [report.score, *report.features] if c)
    if act:
        raise typer.Exit(code=EXIT_ACT)


@monitor_app.command("outcomes")
def monitor_outcomes(
    since: Annotated[str | None, typer.Option(help=_SINCE_HELP)] = None,
    until: Until = None,
    scores: Scores = None,
    model_uri: ModelUri = None,
    data_dir: DataDir = None,
) -> None:
    """ROC AUC, PR AUC and ECE per monthly cohort of the scored rows whose labels have
    matured in the event store, against the champion's validation figures. Exit 0: no
    alert; 1: a cohort's ECE or ROC AUC beyond the policy's bounds; 2: nothing to compare."""
    from features.store import EventStore
    from training.label_definition import label_config_of
    from training.monitoring.outcomes import matured_labels, outcome_report
    from training.pipeline import read_events

    start, end = _day(since, "--since"), _day(until, "--until")
    settings = training_settings(data_dir)
    require_store(settings)
    bundle = load_model(settings, model_uri)
    populations = _populations(data_dir, start, end, scores)
    store = EventStore(settings.store_url)
    try:
        events = read_events(store)
    finally:
        store.dispose()
    config = label_config_of(bundle.metadata)
    validation = bundle.metadata.get("metrics", {})
    alerts = False
    for name, frame in populations:
        scored = frame.drop_duplicates(["customer_id", "as_of"], keep="last")
        labelled = matured_labels(scored, events, config)
        report = outcome_report(labelled, validation, model_version=bundle.version)
        typer.echo(f"# {name}\n\n{report.render()}")
        alerts = alerts or bool(report.alerts())
    if alerts:
        raise typer.Exit(code=EXIT_ACT)

"""Report commands: `tijdig report impact`.

The impact report (:mod:`training.reports.impact`) is written as ``impact.json`` and
``impact.html`` into ``<data_dir>/reports`` by default: the folder the service reads for
``GET /v1/reports/impact``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.checks import DataDir, console, fail, parse_day, require_store, training_settings

reports_app = typer.Typer(
    help="Reports on the event store: where invoices get paid, what collection costs.",
    no_args_is_help=True,
)

#: The data dir's folder the reports are written to and the service serves them from.
REPORTS_FOLDER = "reports"


def _day(text: str | None, option: str) -> Any:
    return None if text is None else parse_day(text, option)


@reports_app.command("impact")
def report_impact(
    events: Annotated[
        Path | None,
        typer.Option(help="an event folder (CSV/Parquet) instead of the data dir's event store"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="folder for impact.json and impact.html (default <data_dir>/reports)"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="first invoice issue day counted (YYYY-MM-DD), inclusive")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="end of the period (YYYY-MM-DD), exclusive")
    ] = None,
    split_at: Annotated[
        str | None,
        typer.Option(help="the day tijdig was adopted (YYYY-MM-DD): figures before and from it"),
    ] = None,
    mlflow: Annotated[
        bool, typer.Option(help="also log the report and its headline figures to MLflow")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Impact figures: stage outcomes, collection costs on top of the principal, failed
    debits and kept plans, per monthly invoice cohort."""
    start, end = _day(since, "--since"), _day(until, "--until")
    split = _day(split_at, "--split-at")
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter(
            f"must be after --since ({start}); got {end}", param_hint="--until"
        )
    if events is not None and not events.is_dir():
        raise typer.BadParameter(f"no such folder: {events}", param_hint="--events")
    settings = training_settings(data_dir)
    if events is None:
        require_store(settings)
    report = _measure(settings, events, start, end, split)
    json_path, html_path = _write(report, out or settings.data_dir / REPORTS_FOLDER)
    for line in _headlines(report):
        console.print(line, markup=False, highlight=False)
    console.print(f"wrote {html_path} and {json_path}", markup=False, highlight=False)
    if mlflow:
        from training.reports.impact import log_to_mlflow

        run_id = log_to_mlflow(report, settings.mlflow_tracking_uri)
        console.print(f"logged to MLflow run {run_id}")


def _measure(settings: Any, events: Path | None, start: Any, end: Any, split: Any) -> Any:
    from training.reports.impact import impact_report

    if events is not None:
        try:
            return impact_report(events, since=start, until=end, split_at=split)
        except (OSError, ValueError) as exc:  # unreadable files, bad columns
            fail(f"cannot read the events in {events}: {exc}", code=1)
    from features.store import EventStore

    store = EventStore(settings.store_url)
    try:
        return impact_report(store, since=start, until=end, split_at=split)
    except ValueError as exc:  # a store without any event
        fail(f"no impact to measure in {settings.store_url}: {exc}", code=1)
    finally:
        store.dispose()


def _write(report: Any, out: Path) -> tuple[Path, Path]:
    from training.reports.impact import write_report

    return write_report(report, out)


def _headlines(report: Any) -> list[str]:
    from training.reports.impact import headlines

    return headlines(report)

"""The decision log's commands: `tijdig decisions export` and `decisions purge`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.checks import DataDir, console, fail, missing_database, parse_day, service_settings

decisions_app = typer.Typer(
    help="The decision log: export for audits, apply retention.", no_args_is_help=True
)


def _require_decision_log(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without a decision log: an empty one
    would be created and "0 decisions" reported as if the log had been read."""
    missing = missing_database(
        settings.decision_log_url,
        "decisions",
        what="decision log",
        variable="TIJDIG_DECISION_LOG_URL",
        sqlite_lacks_table=None,  # a log file is the log's, whatever it holds yet
    )
    if missing is None:
        return
    where, state = missing
    fail(
        f"no decision log: {where} {state}. Decisions are logged by the service "
        "(`tijdig serve`, `make run`) in its data dir: point --data-dir (TIJDIG_DATA_DIR) "
        "at that folder."
    )


@decisions_app.command("export")
def decisions_export(
    path: Annotated[Path, typer.Argument(help="output file (JSON lines, one decision per line)")],
    since: Annotated[
        str | None, typer.Option(help="from this date (YYYY-MM-DD), inclusive")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="until this date (YYYY-MM-DD), exclusive")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Export logged decisions (inputs, features, outputs, versions) for an audit."""
    from datetime import UTC, datetime

    from service.decision_log import DecisionLog

    def day(text: str | None, option: str) -> datetime | None:
        if not text:
            return None
        return datetime.combine(parse_day(text, option), datetime.min.time(), tzinfo=UTC)

    start, end = day(since, "--since"), day(until, "--until")
    settings = service_settings(data_dir)
    _require_decision_log(settings)
    log = DecisionLog(settings.decision_log_url).open()
    try:
        n = log.export(path, start, end)
    finally:
        log.close()
    console.print(f"exported {n:,} decisions to {path}")


@decisions_app.command("purge")
def decisions_purge(
    days: Annotated[
        int | None, typer.Option(help="keep this many days (default: the retention setting)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Delete decisions older than the retention period (default at least 183 days)."""
    from service.decision_log import DecisionLog

    settings = service_settings(data_dir)
    _require_decision_log(settings)
    log = DecisionLog(settings.decision_log_url).open()
    try:
        n = log.purge_older_than(days if days is not None else settings.decision_log_retention_days)
    finally:
        log.close()
    console.print(f"purged {n:,} decisions")

"""The decision log's commands: `tijdig decisions export` and `decisions purge`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.checks import DataDir, console, parse_day, require_decision_log, service_settings

decisions_app = typer.Typer(
    help="The decision log: export for audits, apply retention.", no_args_is_help=True
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
    require_decision_log(settings)
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
    require_decision_log(settings)
    log = DecisionLog(settings.decision_log_url).open()
    try:
        n = log.purge_older_than(days if days is not None else settings.decision_log_retention_days)
    finally:
        log.close()
    console.print(f"purged {n:,} decisions")

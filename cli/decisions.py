"""The decision log's commands: `tijdig decisions export` and `decisions purge`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.checks import (
    DataDir,
    console,
    fail,
    parse_day,
    require_decision_log,
    service_settings,
)

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
    customer: Annotated[
        str | None, typer.Option(help="only this customer's decisions (a GDPR access request)")
    ] = None,
    client: Annotated[str | None, typer.Option(help="only this client's decisions")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export logged decisions (inputs, features, outputs, versions, reviews) for an audit,
    a customer's access request or a client."""
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
        n = log.export(path, start, end, customer_id=customer, client=client)
    finally:
        log.close()
    console.print(f"exported {n:,} decisions to {path}")


@decisions_app.command("purge")
def decisions_purge(
    days: Annotated[
        int | None, typer.Option(help="keep this many days (default: the retention setting)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="only count what would be deleted")] = False,
    yes: Annotated[bool, typer.Option(help="delete without asking")] = False,
    data_dir: DataDir = None,
) -> None:
    """Delete decisions older than the retention period, with their reviews and idempotency
    keys. Refuses a period shorter than the configured retention (at least 183 days, AI Act
    art. 26), shows what it would delete and asks first unless --yes."""
    from service.decision_log import DecisionLog, RetentionRefused

    settings = service_settings(data_dir)
    require_decision_log(settings)
    keep = days if days is not None else settings.decision_log_retention_days
    log = DecisionLog(
        settings.decision_log_url, min_retention_days=settings.decision_log_retention_days
    ).open()
    try:
        try:
            planned = log.purge_count(keep)
        except RetentionRefused as refused:
            fail(str(refused))
        console.print(
            f"{planned.decisions:,} decisions created before {planned.cutoff:%Y-%m-%d %H:%M} UTC, "
            f"with {planned.reviews:,} reviews and {planned.idempotency_keys:,} idempotency keys"
        )
        if dry_run:
            return
        if planned.decisions and not yes and not typer.confirm("Delete them?", default=False):
            fail("nothing deleted", code=1)
        n = log.purge_older_than(keep)
    finally:
        log.close()
    console.print(f"purged {n:,} decisions")

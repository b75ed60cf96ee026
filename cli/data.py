"""Data commands: `tijdig simulate`, `ingest`, `export` and `import`."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.checks import DataDir, console, fail, parse_day, require_store, training_settings
from training.simulation.config import DEFAULT_END_DATE

if TYPE_CHECKING:
    from features.ingest import IngestRejected
    from training.bootstrap import Ingested, SimulatedWorld


def print_simulated(world: SimulatedWorld) -> None:
    """What `tijdig simulate` (and `run`'s first stage) says it wrote."""
    console.print(
        f"simulated {world.customers:,} customers × {world.months} months in "
        f"{world.seconds:.1f} s → {world.target}"
    )
    console.print(", ".join(f"{name} {count:,}" for name, count in world.rows.items()))


def print_ingested(ingested: Ingested) -> None:
    """What `tijdig ingest` (and `run`'s second stage) says it stored."""
    console.print(f"{ingested.report.summary()} ({ingested.seconds:.1f} s)")


def print_warning(text: str) -> None:
    """A file in the event folder that was ignored."""
    console.print(f"[yellow]warning:[/] {text}")


def refuse_rejected(rejected: IngestRejected) -> None:
    """Say why an ingest was rejected (the first 50 errors; a hint when most of them are
    events the store holds with other content) and exit 1."""
    console.print(f"[red]rejected, nothing written:[/] {rejected.report.summary()}")
    errors = rejected.report.errors
    for error in errors[:50]:
        console.print(
            f"  {error.table} row {error.row} column {error.column}: {error.check} (value {error.value})"
        )
    if sum(e.check == "immutable_event" for e in errors) * 2 > len(errors):
        console.print(
            "hint: the store already holds different events with these ids (another "
            "simulation?): use a fresh --data-dir or `make clean`",
            style="yellow",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(code=1) from None


def simulate(
    customers: Annotated[int, typer.Option(min=10, help="number of customers")] = 20_000,
    months: Annotated[int, typer.Option(min=6, help="months of history")] = 24,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    end: Annotated[
        str,
        typer.Option(
            help="first day after the simulated period (YYYY-MM-DD; the default world's end, "
            "so its figures reproduce), or 'now' for the first day of the current month"
        ),
    ] = DEFAULT_END_DATE.isoformat(),
    out: Annotated[
        Path | None, typer.Option(help="output folder (default <data_dir>/simulation)")
    ] = None,
    income_shock_from: Annotated[
        str | None,
        typer.Option(
            help="an income shock from the first of this month (YYYY-MM-DD): a share of "
            "customers lose a share of their pay or benefit for the rest of the period "
            "(to show drift monitoring); off by default"
        ),
    ] = None,
    income_shock_share: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="with --income-shock-from: share of customers hit"),
    ] = None,
    income_shock_cut: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="with --income-shock-from: share of their main income lost"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Simulate a population with hidden ground truth; write event tables as Parquet."""
    from cli.checks import progress
    from training.bootstrap import simulate_world
    from training.simulation import SimulationConfig

    settings = training_settings(data_dir)
    target = out or settings.simulation_dir
    try:
        end_date = None if end == "now" else date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter(
            f"not a date (YYYY-MM-DD) or 'now': {end!r}", param_hint="--end"
        ) from None
    shock: dict[str, Any] = {}
    if (income_shock_from is None) != (income_shock_share is None or income_shock_cut is None):
        raise typer.BadParameter(
            "give --income-shock-from, --income-shock-share and --income-shock-cut together",
            param_hint="--income-shock-from",
        )
    if income_shock_from is not None:
        shock = {
            "income_shock_from": parse_day(income_shock_from, "--income-shock-from"),
            "income_shock_share": income_shock_share,
            "income_shock_cut": income_shock_cut,
        }
    config = SimulationConfig(
        n_customers=customers, months=months, seed=seed, end_date=end_date, **shock
    )
    with progress() as update:
        world = simulate_world(config, target, update)
    print_simulated(world)


def ingest(
    directory: Annotated[
        Path, typer.Argument(help="folder with <table>.parquet or <table>.csv files")
    ],
    store_url: Annotated[
        str | None, typer.Option(help="event store URL (default from settings)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Validate and ingest an event folder in one transaction (all or nothing, idempotent)."""
    from features.ingest import IngestRejected
    from features.io import FORMATS
    from features.schemas import TABLES
    from training.bootstrap import UnreadableEvents, ingest_folder

    expected = ", ".join(TABLES)
    formats = " or ".join(f".{f}" for f in FORMATS)
    if not directory.is_dir():
        what = "is a file, not a folder" if directory.exists() else "does not exist"
        fail(
            f"{directory} {what}: give the folder holding the event tables, one file per "
            f"table named <table>{formats} ({expected}); e.g. .tijdig/simulation after "
            "`tijdig simulate`"
        )
    found = [t for t in TABLES if any((directory / f"{t}.{f}").is_file() for f in FORMATS)]
    if not found:  # a misnamed export must not read as "accepted" (to a cron job, say)
        present = sorted(f.name for f in directory.iterdir() if not f.name.startswith("."))
        fail(
            f"no event table in {directory} (found: {', '.join(present) or 'no files'}); "
            f"nothing ingested. Expected files named <table>{formats}, in lower case, "
            f"for one or more of: {expected}"
        )
    settings = training_settings(data_dir)
    try:
        ingested = ingest_folder(directory, settings, store_url=store_url, warn=print_warning)
    except UnreadableEvents as exc:  # corrupt Parquet, bad CSV
        fail(f"cannot read {directory}: {exc}; nothing ingested")
    except IngestRejected as rejected:
        refuse_rejected(rejected)
    print_ingested(ingested)


def export(
    directory: Annotated[Path, typer.Argument(help="output folder")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    data_dir: DataDir = None,
) -> None:
    """Export every event table from the store (for audits and other tools)."""
    from features.io import export_store
    from features.store import EventStore

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter(f"--format must be parquet or csv; got {fmt!r}")
    settings = training_settings(data_dir)
    require_store(settings)
    store = EventStore(settings.store_url)
    try:
        export_store(store, directory, fmt="csv" if fmt == "csv" else "parquet")
    finally:
        store.dispose()
    console.print(f"exported to {directory}")


def import_statements(
    source: Annotated[
        Path, typer.Argument(help="CSV or Parquet: one row per account, column groups per month")
    ],
    mapping: Annotated[
        Path, typer.Option(help="mapping config JSON (e.g. training/importers/taiwan.json)")
    ],
    out: Annotated[Path, typer.Option(help="output folder: event tables + labels")],
    allow_sensitive: Annotated[
        bool,
        typer.Option(
            help="also map the config's sensitive columns (e.g. marital status); off by default"
        ),
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Map monthly-statement data to events and external labels (then `tijdig ingest OUT`)."""
    import pandas as pd

    from training.importers import MappingConfig, SourceRejected, import_monthly_statements

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter(f"--format must be parquet or csv; got {fmt!r}")
    config = MappingConfig.from_file(mapping)
    frame = pd.read_parquet(source) if source.suffix == ".parquet" else pd.read_csv(source)
    started = time.perf_counter()
    try:
        result = import_monthly_statements(frame, config, allow_sensitive=allow_sensitive)
    except SourceRejected as rejected:  # the user's data: a message, not a traceback
        fail(str(rejected), code=1)
    result.write(out, fmt=fmt)
    console.print(
        f"imported {len(frame):,} accounts in {time.perf_counter() - started:.1f} s → {out}"
    )
    console.print(result.report)

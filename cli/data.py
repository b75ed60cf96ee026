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
        Path,
        typer.Argument(
            help="CSV or Parquet: month-by-month records (one row per account and month; "
            'mapping with "format": "long") or one wide row per account'
        ),
    ],
    mapping: Annotated[
        Path,
        typer.Option(
            help="mapping config JSON (training/importers/README.md; e.g. "
            "training/importers/taiwan.json, docs/examples/own-data/mapping.json)"
        ),
    ],
    out: Annotated[Path, typer.Option(help="output folder: event tables + labels")],
    attributes: Annotated[
        Path | None,
        typer.Option(
            help="CSV or Parquet of customer attributes (rows with an effective date: the "
            "application, later updates; one per account and day), for a long mapping with "
            "an attributes section"
        ),
    ] = None,
    allow_sensitive: Annotated[
        bool,
        typer.Option(
            help="also map the config's sensitive columns (e.g. marital status); off by default"
        ),
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Map monthly payment history to events and external labels (then `tijdig ingest OUT`)."""
    import json

    from training.importers import (
        MappingConfig,
        RecordsConfig,
        SourceRejected,
        import_monthly_records,
        import_monthly_statements,
        is_long_mapping,
    )

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter(f"--format must be parquet or csv; got {fmt!r}")
    try:
        raw = json.loads(mapping.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read the mapping {mapping}: {exc}")
    long = is_long_mapping(raw)
    if attributes is not None and not long:
        raise typer.BadParameter(
            'only a long mapping ("format": "long") reads an attributes table',
            param_hint="--attributes",
        )
    started = time.perf_counter()
    try:
        if long:
            config = RecordsConfig.from_dict(raw)
            result = import_monthly_records(
                _read_table(source),
                config,
                None if attributes is None else _read_table(attributes),
                allow_sensitive=allow_sensitive,
            )
        else:
            frame = _read_table(source)
            result = import_monthly_statements(
                frame, MappingConfig.from_dict(raw), allow_sensitive=allow_sensitive
            )
    except SourceRejected as rejected:  # the user's data: a message, not a traceback
        fail(str(rejected), code=1)
    except (ValueError, KeyError) as exc:  # the mapping or missing columns
        fail(f"{mapping}: {exc}")
    stated = {k: raw[f"label_{k}"] for k in ("horizon_days", "definition") if f"label_{k}" in raw}
    result.label_sidecar = stated or None
    written = result.write(out, fmt=fmt)
    customers = len(result.frames["customers"])
    console.print(
        f"imported {customers:,} accounts in {time.perf_counter() - started:.1f} s → {out}",
        highlight=False,
    )
    report = dict(result.report)
    not_read = report.pop("special_category_not_read", None)
    console.print(
        ", ".join(f"{k.replace('_', ' ')} {_shown(v)}" for k, v in report.items()),
        highlight=False,
    )
    if not_read:
        console.print(
            f"not read (special-category data, GDPR art. 9): {', '.join(not_read)}; "
            "--allow-sensitive reads them",
            highlight=False,
        )
    if result.has_labels:
        console.print(
            f"labels: {len(result.labels):,} at {result.labels['as_of'].iloc[0]:%Y-%m-%d} → "
            + ", ".join(p.name for p in written if p.name.startswith("labels")),
            highlight=False,
        )
    else:
        console.print(
            "[yellow]no labels:[/] the mapping names no label_column, so no labels file was "
            "written. Bring your own to `tijdig train --labels FILE` and `tijdig evaluate "
            "--labels FILE`, or let `tijdig train` derive labels from the events",
            highlight=False,
        )


def _read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        fail(f"no such file: {path}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")


def _shown(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)

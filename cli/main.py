"""``tijdig``: the command line. A thin shell over ``training`` and ``service`` entry points."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from training.simulation.config import DEFAULT_END_DATE

app = typer.Typer(
    help="tijdig — risk and affordability scoring for social collection.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
models_app = typer.Typer(
    help="Inspect and promote registered model versions.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
console = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option(help="local state folder (default .tijdig or $TIJDIG_DATA_DIR)")
]


def _training_settings(data_dir: Path | None) -> Any:
    from training.settings import TrainingSettings

    return TrainingSettings(data_dir=data_dir) if data_dir else TrainingSettings()


# ---------------------------------------------------------------------------- user mistakes
# A user mistake prints one clear message (what was wrong, what to do) and exits non-zero:
# 2 for input the command cannot work with (nothing was done or created), 1 for data or
# a model rejected on its merits, 3 for a candidate the gate refused.


def _fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` in red (as plain text: paths and values keep their brackets) and exit."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def _day(text: str, option: str) -> date:
    """``text`` as a calendar day, or a usage error naming ``option`` and the format."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"not a date: {text!r}; write it as YYYY-MM-DD, e.g. 2026-01-31", param_hint=option
        ) from None


def _sqlite_file(url: str) -> Path | None:
    """The file behind an ``sqlite:///`` URL; None for any other database (it answers for
    itself: a server cannot be checked by looking at a folder)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).absolute()


def _sqlite_has_table(path: Path, table: str) -> bool:
    """Whether the SQLite file holds ``table``; opened read-only, so nothing is created."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return conn.execute(query, (table,)).fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _missing_database(
    url: str, table: str, *, what: str, variable: str, sqlite_lacks_table: str | None
) -> tuple[str, str] | None:
    """Where and why the database at ``url`` is not one to read (None when it is), found
    without creating anything: a SQLite file that does not exist (or, with
    ``sqlite_lacks_table`` its wording, lacks ``table``); a server is asked whether it
    holds ``table``, waiting at most 5 s. A server that cannot be asked is refused here
    (exit 2), naming ``variable``: no advice about the data dir would help."""
    path = _sqlite_file(url)
    if path is not None:
        if not path.is_file():
            return str(path), "does not exist"
        if sqlite_lacks_table is not None and not _sqlite_has_table(path, table):
            return str(path), sqlite_lacks_table
        return None
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from features.store import public_url

    where = public_url(url)
    try:
        postgres = make_url(url).get_backend_name() == "postgresql"
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5} if postgres else {})
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        _fail(f"no {what}: {where} is not a usable database URL ({exc}) ({variable}).")
    try:
        with engine.connect() as conn:
            held = sa.inspect(conn).has_table(table)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _fail(
            f"no {what}: {where} cannot be reached ({reason}); check the URL and that the "
            f"server is up ({variable})."
        )
    finally:
        engine.dispose()
    return None if held else (where, f"holds no {table} table")


def _require_store(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without an event store holding events'
    tables: reading one would create an empty store and fail on it (``no such table``).
    A server's store (PostgreSQL) is asked whether it holds them."""
    missing = _missing_database(
        settings.store_url,
        "customers",
        what="event store",
        variable="TIJDIG_STORE_URL",
        sqlite_lacks_table="holds no event tables",
    )
    if missing is None:
        return
    where, state = missing
    _fail(
        f"no event store: {where} {state}. Ingest events first "
        f"(`tijdig ingest <folder> --data-dir {settings.data_dir}`, or `make run` for a "
        "simulated world), or point --data-dir (TIJDIG_DATA_DIR) at the folder that holds one."
    )


def _require_registry(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without a model registry: opening one
    would create an empty registry."""
    path = _sqlite_file(settings.mlflow_tracking_uri)
    if path is None or path.is_file():
        return
    _fail(
        f"no model registry: {path} does not exist. Train a model first "
        f"(`tijdig train --data-dir {settings.data_dir}`, after `tijdig ingest`), or point "
        "--data-dir (TIJDIG_DATA_DIR) at the folder that holds one."
    )


def _load_model(settings: Any, model_uri: str | None) -> Any:
    """The bundle to score with: ``model_uri`` or the champion; a usage error when there is
    none (no registry, no champion, no such bundle folder)."""
    from models.bundle import REGISTERED_MODEL_NAME, BundleError, load_bundle
    from training.registry import CHAMPION

    uri = model_uri or f"models:/{REGISTERED_MODEL_NAME}@{CHAMPION}"
    if uri.startswith(("models:/", "runs:/")):
        _require_registry(settings)
    try:
        return load_bundle(uri, settings.mlflow_tracking_uri)
    except BundleError as exc:
        if model_uri is None:
            where = _sqlite_file(settings.mlflow_tracking_uri) or settings.mlflow_tracking_uri
            _fail(
                f"no champion model in {where}: "
                "run `tijdig train` first (or `tijdig models promote VERSION`; "
                f"`tijdig models list` shows the versions). ({exc})"
            )
        _fail(f"cannot load the model {uri}: {exc}. Give a bundle folder or a models:/ URI.")


def _port_problem(host: str, port: int, command: str = "run") -> str | None:
    """Why the server could not listen on ``host:port`` (None: it can), found by binding
    it as uvicorn will (``SO_REUSEADDR``, so a port in TIME_WAIT counts as free): checked
    before a banner, a bootstrap or a worker starts."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is in use (another tijdig?): stop it, or choose "
                f"another port: `make {command} PORT={port + 1}` "
                f"(`tijdig {command} --port {port + 1}`)"
            )
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def _require_free_port(host: str, port: int, command: str) -> None:
    problem = _port_problem(host, port, command)
    if problem:
        _fail(problem, code=1)


@contextmanager
def _progress() -> Any:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        yield update


# ---------------------------------------------------------------------------- data
@app.command()
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
    data_dir: DataDir = None,
) -> None:
    """Simulate a population with hidden ground truth; write event tables as Parquet."""
    from training.simulation import SimulationConfig
    from training.simulation import simulate as run_simulation

    settings = _training_settings(data_dir)
    target = out or settings.simulation_dir
    started = time.perf_counter()
    try:
        end_date = None if end == "now" else date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter(
            f"not a date (YYYY-MM-DD) or 'now': {end!r}", param_hint="--end"
        ) from None
    config = SimulationConfig(n_customers=customers, months=months, seed=seed, end_date=end_date)
    # record the concrete period, so the simulated world's "today" is known later
    config = dataclasses.replace(config, end_date=config.period()[1])
    with _progress() as update:
        result = run_simulation(
            config,
            progress=lambda done, total: update("simulate days", done, total),
        )
    result.write(target)
    rows = {name: len(df) for name, df in result.tables.items()}
    console.print(
        f"simulated {customers:,} customers × {months} months in {time.perf_counter() - started:.1f} s → {target}"
    )
    console.print(", ".join(f"{name} {count:,}" for name, count in rows.items()))


@app.command()
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
    from features.io import FORMATS, read_event_dir
    from features.schemas import TABLES
    from features.store import EventStore, IngestRejected

    expected = ", ".join(TABLES)
    formats = " or ".join(f".{f}" for f in FORMATS)
    if not directory.is_dir():
        what = "is a file, not a folder" if directory.exists() else "does not exist"
        _fail(
            f"{directory} {what}: give the folder holding the event tables, one file per "
            f"table named <table>{formats} ({expected}); e.g. .tijdig/simulation after "
            "`tijdig simulate`"
        )
    found = [t for t in TABLES if any((directory / f"{t}.{f}").is_file() for f in FORMATS)]
    if not found:  # a misnamed export must not read as "accepted" (to a cron job, say)
        present = sorted(f.name for f in directory.iterdir() if not f.name.startswith("."))
        _fail(
            f"no event table in {directory} (found: {', '.join(present) or 'no files'}); "
            f"nothing ingested. Expected files named <table>{formats}, in lower case, "
            f"for one or more of: {expected}"
        )
    settings = _training_settings(data_dir)
    try:
        frames = read_event_dir(directory)
    except (OSError, ValueError) as exc:  # unreadable file (corrupt Parquet, bad CSV)
        _fail(f"cannot read {directory}: {exc}; nothing ingested")
    for warning in frames.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(store_url or settings.store_url)
    try:
        store.create_schema()
        started = time.perf_counter()
        report = store.ingest(frames)
    except IngestRejected as rejected:
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
    finally:
        store.dispose()
    console.print(f"{report.summary()} ({time.perf_counter() - started:.1f} s)")


@app.command()
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
    settings = _training_settings(data_dir)
    _require_store(settings)
    store = EventStore(settings.store_url)
    try:
        export_store(store, directory, fmt="csv" if fmt == "csv" else "parquet")
    finally:
        store.dispose()
    console.print(f"exported to {directory}")


# ---------------------------------------------------------------------------- training
@app.command()
def train(
    truth: Annotated[
        Path | None, typer.Option(help="simulation folder with hidden truth, for the oracle")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="external labels: CSV/Parquet with customer_id, as_of, label"),
    ] = None,
    force: Annotated[bool, typer.Option(help="promote even when the gate refuses")] = False,
    data_dir: DataDir = None,
) -> None:
    """Train on the event store; register the bundle; the promotion gate decides on `champion`."""
    if labels is not None and not labels.is_file():
        raise typer.BadParameter(f"no such file: {labels}", param_hint="--labels")
    if truth is not None and not truth.is_dir():
        raise typer.BadParameter(f"no such folder: {truth}", param_hint="--truth")
    settings = _training_settings(data_dir)
    _require_store(settings)
    truth_dir = (
        truth
        if truth is not None
        else (settings.simulation_dir if settings.simulation_dir.is_dir() else None)
    )
    from training.rejected import TrainingDataRejected

    try:
        result = _train(settings, truth_dir, labels, force)
    except TrainingDataRejected as rejected:  # the user's data: a message, not a traceback
        _fail(str(rejected), code=1)
    if not result.gate.promote:
        raise typer.Exit(code=3)


def _train(
    settings: Any, truth_dir: Path | None, labels: Path | None = None, force: bool = False
) -> Any:
    import pandas as pd

    from training.pipeline import run_training

    external = None
    if labels is not None:
        try:
            external = (
                pd.read_parquet(labels) if labels.suffix == ".parquet" else pd.read_csv(labels)
            )
        except (OSError, ValueError) as exc:  # not CSV/Parquet, empty, unreadable
            _fail(f"cannot read the labels {labels}: {exc}", code=1)
    started = time.perf_counter()
    with _progress() as update:
        result = run_training(
            settings, truth_dir=truth_dir, external_labels=external, force=force, progress=update
        )
    _print_metrics(result.candidate.metrics)
    colour = "green" if result.gate.promote else "yellow"
    console.print(f"version {result.version}: [{colour}]{result.gate.summary()}[/]")
    console.print(
        f"trained on {result.n_snapshots:,} snapshots in {time.perf_counter() - started:.1f} s; "
        f"split {json.dumps(result.candidate.split.dates)}"
    )
    console.print(
        "seconds per stage: "
        + ", ".join(f"{stage} {s:.1f}" for stage, s in result.candidate.timings.items())
    )
    return result


def _print_metrics(metrics: dict[str, dict[str, float]]) -> None:
    headers = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "brier": "Brier"}
    headers |= {"log_loss": "log loss", "ks": "KS", "ece": "ECE"}
    cols = list(headers)
    shared = metrics.get("model", {})  # every scorer sees the same validation rows
    table = Table(
        title="out-of-time validation",
        show_edge=False,  # fits 80 columns (CI logs, pipes)
        caption=f"{shared.get('rows', 0):,.0f} rows, base rate {shared.get('base_rate', 0):.4f}",
    )
    table.add_column("model", no_wrap=True)
    for c in cols:
        table.add_column(headers[c], justify="right", no_wrap=True)
    for name, m in metrics.items():
        if not {*cols, "rows"} <= set(m):
            continue  # components print their own metrics below
        table.add_row(name, *(f"{m[c]:.4f}" for c in cols))
    console.print(table)
    for name, m in metrics.items():
        if not {*cols, "rows"} <= set(m):
            console.print(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in m.items()))


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """Registered versions with their aliases, gate outcome and validation metrics."""
    from training.registry import Registry

    settings = _training_settings(data_dir)
    _require_registry(settings)
    registry = Registry.from_settings(settings)
    table = Table(title=registry.model_name)
    for col in ("version", "aliases", "gate", "roc_auc", "ece"):
        table.add_column(col)
    for row in registry.versions():
        table.add_row(
            str(row["version"]),
            ",".join(row["aliases"]),
            row["gate"],
            f"{row['roc_auc']:.4f}" if row["roc_auc"] is not None else "",
            f"{row['ece']:.4f}" if row["ece"] is not None else "",
        )
    console.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="version number")], data_dir: DataDir = None
) -> None:
    """Point `champion` at VERSION (a human decision; recorded as such). Reload the service after."""
    from models.bundle import BundleError
    from training.registry import Registry

    settings = _training_settings(data_dir)
    _require_registry(settings)
    registry = Registry.from_settings(settings)
    known = registry.versions()
    if version not in {row["version"] for row in known}:
        listed = ", ".join(
            row["version"] + (f" ({','.join(row['aliases'])})" if row["aliases"] else "")
            for row in known
        )
        _fail(
            f"version {version} does not exist; versions: {listed}"
            if known
            else f"version {version} does not exist: no version is registered; run `tijdig train`"
        )
    try:
        registry.promote(version)
    except BundleError as exc:  # registered, but its bundle cannot be loaded: not served
        _fail(f"version {version} cannot be promoted: its bundle does not load ({exc})", code=1)
    console.print(f"champion → version {version}; run `curl -X POST .../admin/reload` to serve it")


# ---------------------------------------------------------------------------- serving
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Serve the champion model over HTTP."""
    from service.server import serve as run_server
    from service.settings import ServiceSettings

    if data_dir is not None:
        if not data_dir.is_dir():
            _fail(
                f"no data dir {data_dir.absolute()}: point --data-dir at the folder "
                "`make run` or `tijdig train --data-dir ...` filled (default .tijdig)"
            )
        # the workers build their settings from the environment (service.server)
        os.environ["TIJDIG_DATA_DIR"] = str(data_dir)
    _require_free_port(host, port, "serve")
    _use_simulated_today(_training_settings(data_dir))
    run_server(ServiceSettings(), host=host, port=port, workers=workers)


@app.command()
def run(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    customers: Annotated[
        int, typer.Option(min=100, help="customers to simulate on first run")
    ] = 20_000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """The main job: on first run simulate, ingest, train and promote; then serve."""
    from features.store import EventStore
    from training.registry import Registry

    _require_free_port(host, port, "run")  # before minutes of bootstrap, not after
    settings = _training_settings(None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(settings.store_url)
    store.create_schema()
    has_events = store.count("customers") > 0
    store.dispose()
    has_champion = Registry.from_settings(settings).champion() is not None
    if not has_champion:
        if not has_events:
            if not (settings.simulation_dir / "customers.parquet").is_file():
                console.rule("1/3 simulate the default population")
                simulate(customers=customers, months=24, seed=42, out=None, data_dir=None)
            console.rule("2/3 ingest the events")
            ingest(settings.simulation_dir, store_url=None, data_dir=None)
        console.rule("3/3 train, register and promote")
        result = _train(
            settings, settings.simulation_dir if settings.simulation_dir.is_dir() else None
        )
        if not result.gate.promote:
            console.print("[red]the first model did not pass the gate; nothing to serve[/]")
            raise typer.Exit(code=3)
    else:
        console.print("champion model found: serving it (delete .tijdig/ to start over)")
    _use_simulated_today(settings)
    # serving rows for "now", so the first requests read one row each (incremental: a
    # second start finds them valid and only checks)
    console.rule("serving rows")
    features_refresh(
        as_of=None,  # the simulated "today" set above, as every command reads it
        model_uri=None,
        partition_size=50_000,
        keep_days=7,
        data_dir=None,
    )
    _require_free_port(host, port, "run")  # taken while the rows were computed?
    _print_welcome(settings, host, port)
    serve(host=host, port=port, workers=workers, data_dir=None)


def _simulated_today(simulation_dir: Path) -> str | None:
    config = simulation_dir / "truth" / "simulation.json"
    if not config.is_file():
        return None
    end = json.loads(config.read_text()).get("config", {}).get("end_date")
    return str(end) if end else None


def _default_day(settings: Any) -> date:
    """The day "now" means for this data dir (today in Amsterdam unless said otherwise).

    ``TIJDIG_DEFAULT_AS_OF`` when set; else, for a data dir holding a simulated world, the
    world's last day: every command (`run`, `serve`, `score-batch`, `features refresh`)
    scores the same day, or the weeks after the simulation would read as missed income
    and the same customer get another answer from each (found by a new user's walk
    through the README, 1 Dec 2026)."""
    from service.schemas import today

    written = os.environ.get("TIJDIG_DEFAULT_AS_OF") or _simulated_today(settings.simulation_dir)
    return _day(written, "TIJDIG_DEFAULT_AS_OF") if written else today()


def _use_simulated_today(settings: Any) -> None:
    """Make the simulated world's last day the served "now" (the workers read the
    environment), and say so."""
    if "TIJDIG_DEFAULT_AS_OF" in os.environ:
        return
    simulated_today = _simulated_today(settings.simulation_dir)
    if simulated_today:
        os.environ["TIJDIG_DEFAULT_AS_OF"] = simulated_today
        console.print(f"simulated data: default as_of is the simulation's end, {simulated_today}")


def _print_welcome(settings: Any, host: str, port: int) -> None:
    from features.store import EventStore

    store = EventStore(settings.store_url)
    sample = (store.customer_ids() or ["C0000001"])[0]
    store.dispose()
    base = f"http://{host}:{port}"
    console.rule("tijdig is serving")
    console.print(f"API docs:   {base}/docs")
    console.print(f"health:     {base}/readyz")
    console.print("sample request:")
    body = json.dumps({"customer_ids": [sample]})
    sys.stderr.write(
        f"  curl -s -X POST {base}/v1/risk/scores -H 'X-API-Key: dev-key' "
        f"-H 'Content-Type: application/json' -d '{body}'\n\n"
    )


# ---------------------------------------------------------------------------- import (issue 6)
@app.command("import")
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
        _fail(str(rejected), code=1)
    result.write(out, fmt=fmt)
    console.print(
        f"imported {len(frame):,} accounts in {time.perf_counter() - started:.1f} s → {out}"
    )
    console.print(result.report)


# ---------------------------------------------------------------------------- batch scoring (issue 6)
@app.command("score-batch")
def score_batch_command(
    out: Annotated[Path, typer.Option(help="output Parquet file")] = Path("scores.parquet"),
    as_of: Annotated[
        str | None,
        typer.Option(
            help="score as known at the start of this day (default: today, Amsterdam; "
            "for a simulated world its last day)"
        ),
    ] = None,
    model_uri: Annotated[
        str | None, typer.Option(help="bundle folder or models:/ URI (default: the champion)")
    ] = None,
    partition_size: Annotated[int, typer.Option(min=1, help="customers per partition")] = 100_000,
    serving_rows: Annotated[
        bool,
        typer.Option(help="read valid serving rows and store the computed ones (see `features`)"),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="score partitions in this many processes (1: in this one); pays off when "
            "many rows are computed from the events",
        ),
    ] = 1,
    data_dir: DataDir = None,
) -> None:
    """Score every customer in the store: probabilities, bands, reasons for flagged customers."""

    from features.store import EventStore
    from training.batch_scoring import score_batch

    asked = _day(as_of, "--as-of") if as_of else None
    settings = _training_settings(data_dir)
    _require_store(settings)
    bundle = _load_model(settings, model_uri)
    day = asked or _default_day(settings)
    store = EventStore(settings.store_url)
    started = time.perf_counter()
    try:
        with _progress() as update:
            report = score_batch(
                store,
                bundle,
                day,
                out,
                partition_size=partition_size,
                progress=lambda done, total: update("score", done, total),
                serving_rows=serving_rows,
                workers=workers,
            )
    finally:
        store.dispose()
    elapsed = time.perf_counter() - started
    console.print(
        f"scored {report.customers:,} customers ({report.flagged:,} flagged) in {elapsed:.1f} s "
        f"({report.customers / max(elapsed, 1e-9):,.0f}/s"
        f"{f', {workers} processes' if workers > 1 else ''}) → {out}"
    )


@app.command("debit-eval")
def debit_eval(
    customers: Annotated[int, typer.Option(min=100, help="simulated customers")] = 20_000,
    months: Annotated[int, typer.Option(min=12, help="simulated months")] = 24,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 42,
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
) -> None:
    """Debit-date evidence: income-pattern detection and failed debits per 1,000 (current vs suggested vs the 1st)."""
    from training.simulation.config import SimulationConfig
    from training.studies.debit_eval import evaluate_debit_dates

    report = evaluate_debit_dates(SimulationConfig(n_customers=customers, months=months, seed=seed))
    text = json.dumps(report, indent=2, default=str)
    if out:
        out.write_text(text, encoding="utf-8")
    sys.stdout.write(text + "\n")


@app.command("plan-eval")
def plan_eval(
    customers: Annotated[
        int, typer.Option(min=100, help="simulated customers per population")
    ] = 20_000,
    months: Annotated[int, typer.Option(min=12, help="simulated months")] = 24,
    train_seed: Annotated[int, typer.Option(help="seed of the training simulation (A)")] = 101,
    eval_seed: Annotated[int, typer.Option(help="seed of the evaluation population (B)")] = 202,
    bundle: Annotated[
        Path | None, typer.Option(help="use this bundle instead of training on seed A")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="write plan_eval.json (and the bundle) here")
    ] = None,
    target: Annotated[
        list[float] | None,
        typer.Option(
            min=0.0, max=1.0, help="also run tijdig with this P(kept) target (repeatable)"
        ),
    ] = None,
) -> None:
    """Payment-plan evidence: tijdig's plans vs debt/5 vs the largest agreed amount (keep rate, repaid in 12 months)."""
    from training.studies.plan_eval import run_plan_eval

    report = run_plan_eval(
        n_customers=customers,
        months=months,
        train_seed=train_seed,
        eval_seed=eval_seed,
        bundle_path=bundle,
        out=out,
        log=console.print,
        other_targets=tuple(target or ()),
    )
    console.print_json(json.dumps(report, default=str))


@app.command("bnpl-eval")
def bnpl_eval(
    customers: Annotated[
        int, typer.Option(min=500, help="simulated customers per population")
    ] = 20_000,
    months: Annotated[int, typer.Option(min=12, help="simulated months")] = 24,
    train_seed: Annotated[int, typer.Option(help="seed of the training population")] = 101,
    eval_seed: Annotated[int, typer.Option(help="seed of the evaluation population")] = 42,
    bundle: Annotated[
        Path | None, typer.Option(help="use this bundle instead of training one")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="write bnpl_eval.json and the trade-off plot here")
    ] = None,
    closed_loop: Annotated[
        bool,
        typer.Option(
            "--closed-loop/--no-closed-loop",
            help="also simulate the population forward with tijdig deciding in the loop",
        ),
    ] = True,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(
            help="log the report and the curve to this MLflow tracking URI "
            "(default: the data dir's)"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Pay-later evidence: approval rate vs orders ending in collection, tijdig vs 'approve all < EUR 1,000'."""
    from training.studies.bnpl_eval.report import summary
    from training.studies.bnpl_eval.run import run_bnpl_eval

    report = run_bnpl_eval(
        customers,
        months,
        train_seed,
        eval_seed,
        bundle,
        out,
        mlflow_uri or _training_settings(data_dir).mlflow_tracking_uri,
        log=console.print,
        closed_loop=closed_loop,
    )
    console.print_json(json.dumps(summary(report), default=str))


features_app = typer.Typer(
    help="Materialised serving rows: what real-time decisions read.", no_args_is_help=True
)
app.add_typer(features_app, name="features")


@features_app.command("refresh")
def features_refresh(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="rows as known at the start of this day (default: today, Amsterdam; "
            "for a simulated world its last day)"
        ),
    ] = None,
    model_uri: Annotated[
        str | None, typer.Option(help="bundle folder or models:/ URI (default: the champion)")
    ] = None,
    partition_size: Annotated[int, typer.Option(min=1, help="customers per partition")] = 50_000,
    keep_days: Annotated[
        int, typer.Option(min=0, help="delete rows of days more than this before as_of")
    ] = 7,
    data_dir: DataDir = None,
) -> None:
    """Compute every customer's serving row (features, probability, SHAP where reasons may
    be shown) as of a day: run nightly and after a bulk ingest. Incremental: rows still
    valid are kept; customers with new events are recomputed."""

    from features.events import to_day
    from features.store import EventStore
    from models.serving import ServingRows

    asked = _day(as_of, "--as-of") if as_of else None
    settings = _training_settings(data_dir)
    _require_store(settings)
    bundle = _load_model(settings, model_uri)
    day = asked or _default_day(settings)
    store = EventStore(settings.store_url)
    started = time.perf_counter()
    try:
        store.create_schema()
        total = store.count("customers")
        done = [0]
        with _progress() as update:

            def tick(n: int) -> None:
                done[0] += n
                update("refresh serving rows", done[0], total)

            computed = ServingRows(store).refresh(
                bundle, day, partition_size=partition_size, progress=tick
            )
        purged = store.purge_serving_rows(to_day(day) - keep_days)
    finally:
        store.dispose()
    elapsed = time.perf_counter() - started
    console.print(
        f"serving rows as of {day}: {computed:,} of {total:,} customers computed, "
        f"{total - computed:,} still valid; {purged:,} old rows purged ({elapsed:.1f} s)"
    )


def _service_settings(data_dir: Path | None) -> Any:
    from service.settings import ServiceSettings

    return ServiceSettings(data_dir=data_dir) if data_dir else ServiceSettings()


def _require_decision_log(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without a decision log: an empty one
    would be created and "0 decisions" reported as if the log had been read."""
    missing = _missing_database(
        settings.decision_log_url,
        "decisions",
        what="decision log",
        variable="TIJDIG_DECISION_LOG_URL",
        sqlite_lacks_table=None,  # a log file is the log's, whatever it holds yet
    )
    if missing is None:
        return
    where, state = missing
    _fail(
        f"no decision log: {where} {state}. Decisions are logged by the service "
        "(`tijdig serve`, `make run`) in its data dir: point --data-dir (TIJDIG_DATA_DIR) "
        "at that folder."
    )


decisions_app = typer.Typer(
    help="The decision log: export for audits, apply retention.", no_args_is_help=True
)
app.add_typer(decisions_app, name="decisions")


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
        return datetime.combine(_day(text, option), datetime.min.time(), tzinfo=UTC)

    start, end = day(since, "--since"), day(until, "--until")
    settings = _service_settings(data_dir)
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

    settings = _service_settings(data_dir)
    _require_decision_log(settings)
    log = DecisionLog(settings.decision_log_url).open()
    try:
        n = log.purge_older_than(days if days is not None else settings.decision_log_retention_days)
    finally:
        log.close()
    console.print(f"purged {n:,} decisions")


if __name__ == "__main__":
    app()

"""Serving commands: `tijdig serve`, `run`, `features refresh` and `score-batch`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.checks import (
    DataDir,
    console,
    default_day,
    fail,
    fail_without_champion,
    load_model,
    parse_day,
    progress,
    require_free_port,
    require_store,
    training_settings,
)
from cli.data import print_ingested, print_simulated, print_warning, refuse_rejected
from cli.models import print_trained

if TYPE_CHECKING:
    from training.bootstrap import Ingested, RefreshedRows, SimulatedWorld

features_app = typer.Typer(
    help="Materialised serving rows: what real-time decisions read.", no_args_is_help=True
)

ModelUri = Annotated[
    str | None, typer.Option(help="bundle folder or models:/ URI (default: the champion)")
]


def _print_refreshed(rows: RefreshedRows) -> None:
    console.print(
        f"serving rows as of {rows.day}: {rows.computed:,} of {rows.total:,} customers "
        f"computed, {rows.total - rows.computed:,} still valid; {rows.purged:,} old rows "
        f"purged ({rows.seconds:.1f} s)"
    )


def _say_simulated_today(day: str) -> None:
    console.print(f"simulated data: default as_of is the simulation's end, {day}")


@features_app.command("refresh")
def features_refresh(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="rows as known at the start of this day (default: today, Amsterdam; "
            "for a simulated world its last day)"
        ),
    ] = None,
    model_uri: ModelUri = None,
    partition_size: Annotated[int, typer.Option(min=1, help="customers per partition")] = 50_000,
    keep_days: Annotated[
        int, typer.Option(min=0, help="delete rows of days more than this before as_of")
    ] = 7,
    data_dir: DataDir = None,
) -> None:
    """Compute every customer's serving row (features, probability, SHAP where reasons may
    be shown) as of a day: run nightly and after a bulk ingest. Incremental: rows still
    valid are kept; customers with new events are recomputed."""
    from training.bootstrap import refresh_serving_rows

    asked = parse_day(as_of, "--as-of") if as_of else None
    settings = training_settings(data_dir)
    require_store(settings)
    bundle = load_model(settings, model_uri)
    day = asked or default_day(settings)
    with progress() as update:
        rows = refresh_serving_rows(
            settings.store_url,
            bundle,
            day,
            partition_size=partition_size,
            keep_days=keep_days,
            update=update,
        )
    _print_refreshed(rows)


def score_batch_command(
    out: Annotated[Path, typer.Option(help="output Parquet file")] = Path("scores.parquet"),
    as_of: Annotated[
        str | None,
        typer.Option(
            help="score as known at the start of this day (default: today, Amsterdam; "
            "for a simulated world its last day)"
        ),
    ] = None,
    model_uri: ModelUri = None,
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
    features: Annotated[
        bool,
        typer.Option(
            help="also write every scored feature as a column, so `tijdig monitor drift "
            "--scores` sees the features' drift and not only the score's"
        ),
    ] = False,
    offline: Annotated[
        Path | None,
        typer.Option(
            help="score from this offline copy (`tijdig offline sync`): every customer "
            "computed from their events read from Parquet, no serving rows read or written",
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="run the partitions on Dask: local:N (a local cluster of N processes) or "
            "tcp://HOST:PORT (an existing scheduler; its workers must read --offline's path)",
        ),
    ] = None,
    reasons: Annotated[
        bool,
        typer.Option(
            help="SHAP reasons for the flagged customers in this pass; --no-reasons leaves "
            "them to the first request for that customer"
        ),
    ] = True,
    data_dir: DataDir = None,
) -> None:
    """Score every customer in the store: probabilities, bands, reasons for flagged customers."""
    import contextlib

    from features.store import EventStore
    from training.batch_scoring import score_batch

    asked = parse_day(as_of, "--as-of") if as_of else None
    settings = training_settings(data_dir)
    source = _offline_source(offline) if offline is not None else None
    if source is None:
        require_store(settings)
    bundle = load_model(settings, model_uri)
    day = asked or default_day(settings)
    store = EventStore(settings.store_url) if source is None else None
    started = time.perf_counter()
    where = f", {workers} processes" if workers > 1 else ""
    try:
        with contextlib.ExitStack() as stack, progress() as update:
            executor, threads = None, None
            if dask is not None:
                cluster = stack.enter_context(_open_dask(dask))
                executor, workers = cluster.executor, cluster.workers
                threads = 1  # a Dask worker runs one task per thread
                where = f", Dask {cluster.address}: {workers} workers"
            report = score_batch(
                store,
                bundle,
                day,
                out,
                partition_size=partition_size,
                progress=lambda done, total: update("score", done, total),
                serving_rows=serving_rows,
                workers=workers,
                executor=executor,
                with_features=features,
                source=source,
                reasons=reasons,
                threads=threads,
            )
    finally:
        if store is not None:
            store.dispose()
    elapsed = time.perf_counter() - started
    console.print(
        f"scored {report.customers:,} customers ({report.flagged:,} flagged"
        f"{'' if reasons else ', reasons on request'}) in {elapsed:.1f} s "
        f"({report.customers / max(elapsed, 1e-9):,.0f}/s{where}) → {out}"
    )


def _offline_source(path: Path) -> Any:
    from features.offline import OfflineEvents

    try:
        return OfflineEvents(path)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def _open_dask(spec: str) -> Any:
    from training.cluster import dask_executor, parse_dask

    try:
        parse_dask(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dask") from None
    return dask_executor(spec)


def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Serve the champion model over HTTP."""
    from service.server import serve as run_server
    from service.settings import ServiceSettings
    from training.bootstrap import use_simulated_today

    if data_dir is not None:
        if not data_dir.is_dir():
            fail(
                f"no data dir {data_dir.absolute()}: point --data-dir at the folder "
                "`make run` or `tijdig train --data-dir ...` filled (default .tijdig)"
            )
        # the workers build their settings from the environment (service.server)
        os.environ["TIJDIG_DATA_DIR"] = str(data_dir)
    require_free_port(host, port, "serve")
    day_set = use_simulated_today(training_settings(data_dir))
    if day_set:
        _say_simulated_today(day_set)
    run_server(ServiceSettings(), host=host, port=port, workers=workers)


class _ConsoleView:
    """`run`'s bootstrap on the console: a rule per stage, then what the stage's own
    command would print."""

    def stage(self, title: str) -> None:
        console.rule(title)

    def simulated(self, world: SimulatedWorld) -> None:
        print_simulated(world)

    def warning(self, text: str) -> None:
        print_warning(text)

    def ingested(self, ingested: Ingested) -> None:
        print_ingested(ingested)

    def trained(self, result: Any, seconds: float) -> None:
        print_trained(result, seconds)

    def champion_found(self) -> None:
        console.print("champion model found: serving it (delete .tijdig/ to start over)")

    def default_day_set(self, day: str) -> None:
        _say_simulated_today(day)

    def refreshed(self, rows: RefreshedRows) -> None:
        _print_refreshed(rows)


def run(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    customers: Annotated[
        int, typer.Option(min=100, help="customers to simulate on first run")
    ] = 20_000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """The main job: on first run simulate, ingest, train and promote; then serve."""
    from features.ingest import IngestRejected
    from models.bundle import BundleError
    from service.schemas import today
    from training.bootstrap import DEFAULT_AS_OF_VARIABLE, DefaultDayInvalid, UnreadableEvents
    from training.bootstrap import bootstrap as prepare

    require_free_port(host, port, "run")  # before minutes of bootstrap, not after
    settings = training_settings(None)
    try:
        ready = prepare(
            settings, _ConsoleView(), today=today(), customers=customers, progress=progress
        )
    except UnreadableEvents as exc:
        fail(f"cannot read {settings.simulation_dir}: {exc}; nothing ingested")
    except IngestRejected as rejected:
        refuse_rejected(rejected)
    except BundleError as exc:
        fail_without_champion(settings, exc)
    except DefaultDayInvalid as exc:
        raise typer.BadParameter(str(exc), param_hint=DEFAULT_AS_OF_VARIABLE) from None
    if not ready:
        console.print("[red]the first model did not pass the gate; nothing to serve[/]")
        raise typer.Exit(code=3)
    require_free_port(host, port, "run")  # taken while the rows were computed?
    _print_welcome(settings, host, port)
    serve(host=host, port=port, workers=workers, data_dir=None)


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

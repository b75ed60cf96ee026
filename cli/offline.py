"""Offline copy commands: `tijdig offline sync` and `tijdig offline check`.

The offline copy (:mod:`features.offline`) is what batch work reads; the event store stays
the source of truth. With ``TIJDIG_OFFLINE_DIR`` set, `tijdig ingest` appends to the copy
in the same run; `sync` rewrites it from the store (a first copy, another bucket count, or
a repair after `check` found a difference).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.checks import DataDir, console, fail, progress, require_store, training_settings

offline_app = typer.Typer(
    help="The offline copy of the events (Parquet by customer bucket) that batch work reads.",
    no_args_is_help=True,
)

OfflineDir = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="the offline copy (default: TIJDIG_OFFLINE_DIR, else <data dir>/offline)",
    ),
]


def offline_root(settings: Any, given: Path | None) -> Path:
    """``--dir``, else ``TIJDIG_OFFLINE_DIR``, else ``<data dir>/offline``."""
    if given is not None:
        return given
    if settings.offline_dir is not None:
        return Path(settings.offline_dir)
    return Path(settings.data_dir) / "offline"


@offline_app.command("sync")
def sync(
    directory: OfflineDir = None,
    buckets: Annotated[
        int | None,
        typer.Option(min=1, help="customer buckets (default: the copy's, else 64)"),
    ] = None,
    partition_size: Annotated[
        int, typer.Option(min=1, help="customers read from the store at a time")
    ] = 100_000,
    data_dir: DataDir = None,
) -> None:
    """Rewrite the offline copy from every event in the store (swapped in when complete)."""
    from features.offline import sync_offline
    from features.store import EventStore

    settings = training_settings(data_dir)
    require_store(settings)
    root = offline_root(settings, directory)
    store = EventStore(settings.store_url)
    started = time.perf_counter()
    try:
        with progress() as update:
            written = sync_offline(
                store,
                root,
                buckets=buckets,
                partition_size=partition_size,
                progress=lambda done, total: update("sync", done, total),
            )
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.dispose()
    rows = sum(written.values())
    console.print(
        f"offline copy {root}: {rows:,} events of {written.get('customers', 0):,} customers "
        f"written ({time.perf_counter() - started:.1f} s)"
    )


@offline_app.command("check")
def check(
    directory: OfflineDir = None,
    partition_size: Annotated[
        int, typer.Option(min=1, help="customers read from the store at a time")
    ] = 100_000,
    data_dir: DataDir = None,
) -> None:
    """Compare the offline copy with the store: rows and a checksum per table (exit 1 when
    they differ, naming the tables)."""
    from features.offline import check_offline
    from features.store import EventStore

    settings = training_settings(data_dir)
    require_store(settings)
    root = offline_root(settings, directory)
    store = EventStore(settings.store_url)
    try:
        with progress() as update:
            report = check_offline(
                store,
                root,
                partition_size=partition_size,
                progress=lambda done, total: update("check", done, total),
            )
    except FileNotFoundError as exc:
        fail(str(exc))
    finally:
        store.dispose()
    for table in report.tables:
        console.print(("  " if table.ok else "✗ ") + table.describe(), markup=False)
    if not report.ok:
        fail(report.summary() + f"; `tijdig offline sync --dir {root}` rewrites it", code=1)
    console.print(report.summary())

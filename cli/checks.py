"""What every ``tijdig`` command shares: the console, the ``--data-dir`` option, settings,
the one-message refusals of user mistakes, the checks that a data dir holds what a command
reads (without creating anything), the port check and the progress display.

A user mistake prints one clear message (what was wrong, what to do) and exits non-zero:
2 for input the command cannot work with (nothing was done or created), 1 for data or a
model rejected on its merits, 3 for a candidate the gate refused.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

console = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option(help="local state folder (default .tijdig or $TIJDIG_DATA_DIR)")
]


def training_settings(data_dir: Path | None) -> Any:
    """The training side's settings for ``--data-dir`` (else the environment's)."""
    from training.settings import TrainingSettings

    return TrainingSettings(data_dir=data_dir) if data_dir else TrainingSettings()


def service_settings(data_dir: Path | None) -> Any:
    """The service's settings for ``--data-dir`` (else the environment's)."""
    from service.settings import ServiceSettings

    return ServiceSettings(data_dir=data_dir) if data_dir else ServiceSettings()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` in red (as plain text: paths and values keep their brackets) and exit."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def parse_day(text: str, option: str) -> date:
    """``text`` as a calendar day, or a usage error naming ``option`` and the format."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"not a date: {text!r}; write it as YYYY-MM-DD, e.g. 2026-01-31", param_hint=option
        ) from None


def default_day(settings: Any) -> date:
    """The day "now" means for this data dir (:func:`training.bootstrap.default_day`;
    today in Amsterdam unless said otherwise); a usage error when the day written is not
    a date."""
    from service.schemas import today
    from training.bootstrap import DEFAULT_AS_OF_VARIABLE, DefaultDayInvalid
    from training.bootstrap import default_day as day_of

    try:
        return day_of(settings, today())
    except DefaultDayInvalid as exc:
        raise typer.BadParameter(str(exc), param_hint=DEFAULT_AS_OF_VARIABLE) from None


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


def missing_database(
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

    from features.db import public_url

    where = public_url(url)
    try:
        postgres = make_url(url).get_backend_name() == "postgresql"
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5} if postgres else {})
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        fail(f"no {what}: {where} is not a usable database URL ({exc}) ({variable}).")
    try:
        with engine.connect() as conn:
            held = sa.inspect(conn).has_table(table)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(
            f"no {what}: {where} cannot be reached ({reason}); check the URL and that the "
            f"server is up ({variable})."
        )
    finally:
        engine.dispose()
    return None if held else (where, f"holds no {table} table")


def require_store(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without an event store holding events'
    tables: reading one would create an empty store and fail on it (``no such table``).
    A server's store (PostgreSQL) is asked whether it holds them."""
    missing = missing_database(
        settings.store_url,
        "customers",
        what="event store",
        variable="TIJDIG_STORE_URL",
        sqlite_lacks_table="holds no event tables",
    )
    if missing is None:
        return
    where, state = missing
    fail(
        f"no event store: {where} {state}. Ingest events first "
        f"(`tijdig ingest <folder> --data-dir {settings.data_dir}`, or `make run` for a "
        "simulated world), or point --data-dir (TIJDIG_DATA_DIR) at the folder that holds one."
    )


def require_registry(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without a model registry: opening one
    would create an empty registry."""
    path = _sqlite_file(settings.mlflow_tracking_uri)
    if path is None or path.is_file():
        return
    fail(
        f"no model registry: {path} does not exist. Train a model first "
        f"(`tijdig train --data-dir {settings.data_dir}`, after `tijdig ingest`), or point "
        "--data-dir (TIJDIG_DATA_DIR) at the folder that holds one."
    )


def decision_log_missing(settings: Any) -> tuple[str, str] | None:
    """Where and why the service settings' decision log is not one to read (None when it
    is); see :func:`missing_database`."""
    return missing_database(
        settings.decision_log_url,
        "decisions",
        what="decision log",
        variable="TIJDIG_DECISION_LOG_URL",
        sqlite_lacks_table=None,  # a log file is the log's, whatever it holds yet
    )


def require_decision_log(settings: Any) -> None:
    """Refuse (exit 2, creating nothing) a data dir without a decision log: an empty one
    would be created and "0 decisions" reported as if the log had been read."""
    missing = decision_log_missing(settings)
    if missing is None:
        return
    where, state = missing
    fail(
        f"no decision log: {where} {state}. Decisions are logged by the service "
        "(`tijdig serve`, `make run`) in its data dir: point --data-dir (TIJDIG_DATA_DIR) "
        "at that folder."
    )


def fail_without_champion(settings: Any, exc: Exception) -> NoReturn:
    """Refuse (exit 2) when the registry has no champion that loads: say how to get one."""
    where = _sqlite_file(settings.mlflow_tracking_uri) or settings.mlflow_tracking_uri
    fail(
        f"no champion model in {where}: "
        "run `tijdig train` first (or `tijdig models promote VERSION`; "
        f"`tijdig models list` shows the versions). ({exc})"
    )


def load_model(settings: Any, model_uri: str | None) -> Any:
    """The bundle to score with: ``model_uri`` or the champion; a usage error when there is
    none (no registry, no champion, no such bundle folder)."""
    from models.bundle import REGISTERED_MODEL_NAME, BundleError, load_bundle
    from training.registry import CHAMPION

    uri = model_uri or f"models:/{REGISTERED_MODEL_NAME}@{CHAMPION}"
    if uri.startswith(("models:/", "runs:/")):
        require_registry(settings)
    try:
        return load_bundle(uri, settings.mlflow_tracking_uri)
    except BundleError as exc:
        if model_uri is None:
            fail_without_champion(settings, exc)
        fail(f"cannot load the model {uri}: {exc}. Give a bundle folder or a models:/ URI.")


def port_problem(host: str, port: int, command: str = "run") -> str | None:
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


def require_free_port(host: str, port: int, command: str) -> None:
    """Refuse (exit 1) a ``host:port`` the server could not listen on."""
    problem = port_problem(host, port, command)
    if problem:
        fail(problem, code=1)


@contextmanager
def progress() -> Iterator[Any]:
    """A progress display on the console; yields ``update(step, done, total)``, one bar
    per step."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as display:
        tasks: dict[str, TaskID] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = display.add_task(step, total=total)
            display.update(tasks[step], completed=done, total=total)

        yield update

"""From an empty data dir to a champion ready to serve: what `tijdig run` does first.

:func:`bootstrap` simulates the default world (when there is neither a champion nor any
event), ingests it, trains and promotes, then computes the serving rows for the day every
command scores. The caller shows each step through a :class:`BootstrapView` and serves;
the steps are also the work of `tijdig simulate`, `ingest` and `features refresh`.

A data dir holding a simulated world scores its last day, not today: the weeks after the
simulation would otherwise read as missed income, and the same customer would get
another answer from each command (:func:`default_day`, :func:`use_simulated_today`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from features.ingest import IngestReport
    from models.bundle import Bundle
    from training.pipeline import TrainingResult
    from training.settings import TrainingSettings
    from training.simulation import CollectionPolicy, SimulationConfig

#: one progress bar's update: (step, done, total)
Update = Callable[[str, int, int], None]
#: opens a progress display for one stage and yields its update function
ProgressDisplay = Callable[[], AbstractContextManager[Update]]

#: the variable that says which day "now" is for every command and the service's workers
DEFAULT_AS_OF_VARIABLE = "TIJDIG_DEFAULT_AS_OF"
DEFAULT_MONTHS = 24
DEFAULT_SEED = 42
SERVING_PARTITION_SIZE = 50_000
SERVING_KEEP_DAYS = 7


@contextmanager
def no_progress() -> Iterator[Update]:
    """A progress display that shows nothing."""
    yield lambda step, done, total: None


# ---------------------------------------------------------------------------- "now"
class DefaultDayInvalid(ValueError):
    """``TIJDIG_DEFAULT_AS_OF`` (or a simulated world's recorded end) is not a date."""

    def __init__(self, text: str) -> None:
        super().__init__(f"not a date: {text!r}; write it as YYYY-MM-DD, e.g. 2026-01-31")
        self.text = text


def simulated_today(simulation_dir: Path) -> str | None:
    """The last day of the simulated world in ``simulation_dir`` (its recorded end), or
    None when the folder holds no simulation."""
    config = simulation_dir / "truth" / "simulation.json"
    if not config.is_file():
        return None
    end = json.loads(config.read_text()).get("config", {}).get("end_date")
    return str(end) if end else None


def default_day(settings: TrainingSettings, today: date) -> date:
    """The day "now" means for this data dir: ``TIJDIG_DEFAULT_AS_OF`` when set; else, for
    a data dir holding a simulated world, the world's last day; else ``today``. Every
    command that scores (`run`, `serve`, `score-batch`, `features refresh`) reads it, so
    they all score the same day."""
    written = os.environ.get(DEFAULT_AS_OF_VARIABLE) or simulated_today(settings.simulation_dir)
    if not written:
        return today
    try:
        return date.fromisoformat(written)
    except ValueError:
        raise DefaultDayInvalid(written) from None


def use_simulated_today(settings: TrainingSettings) -> str | None:
    """Make the simulated world's last day the served "now" (the service's workers read
    the environment); returns that day, or None when ``TIJDIG_DEFAULT_AS_OF`` was set
    already or the data dir holds no simulated world."""
    if DEFAULT_AS_OF_VARIABLE in os.environ:
        return None
    day = simulated_today(settings.simulation_dir)
    if day:
        os.environ[DEFAULT_AS_OF_VARIABLE] = day
    return day


# ---------------------------------------------------------------------------- the steps
@dataclass(frozen=True)
class SimulatedWorld:
    """What :func:`simulate_world` wrote: where, how large, rows per table, how long."""

    target: Path
    customers: int
    months: int
    rows: dict[str, int]
    seconds: float


def simulate_world(
    config: SimulationConfig,
    target: Path,
    update: Update | None = None,
    *,
    policy: CollectionPolicy | None = None,
) -> SimulatedWorld:
    """Simulate ``config`` (under the creditor's current practice, or ``policy``) and write
    its event tables and hidden truth to ``target``. The concrete period is recorded (an
    end of None becomes this month's first day), so the simulated world's "today" is known
    later (:func:`simulated_today`)."""
    from training.simulation import simulate

    started = time.perf_counter()
    config = dataclasses.replace(config, end_date=config.period()[1])
    show = update or (lambda step, done, total: None)
    result = simulate(
        config, policy=policy, progress=lambda done, total: show("simulate days", done, total)
    )
    result.write(target)
    return SimulatedWorld(
        target=target,
        customers=config.n_customers,
        months=config.months,
        rows={name: len(df) for name, df in result.tables.items()},
        seconds=time.perf_counter() - started,
    )


class UnreadableEvents(Exception):
    """An event folder whose files could not be read (corrupt Parquet, bad CSV): nothing
    was ingested. The message is the reader's."""


@dataclass(frozen=True)
class Ingested:
    """What :func:`ingest_folder` did: the store's report and how long the ingest took."""

    report: IngestReport
    seconds: float


def ingest_folder(
    directory: Path,
    settings: TrainingSettings,
    *,
    store_url: str | None = None,
    warn: Callable[[str], None] = lambda text: None,
) -> Ingested:
    """Validate and ingest the event tables in ``directory`` into the store of
    ``settings`` (or ``store_url``) in one transaction (all or nothing, idempotent);
    ``warn`` hears about files that were ignored, before the ingest starts. The data dir
    is created only once the files have been read. Raises :class:`UnreadableEvents` or
    :class:`features.store.IngestRejected`."""
    from features.io import read_event_dir
    from features.store import EventStore

    try:
        frames = read_event_dir(directory)
    except (OSError, ValueError) as exc:
        raise UnreadableEvents(str(exc)) from exc
    for warning in frames.warnings:
        warn(warning)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(store_url or settings.store_url)
    try:
        store.create_schema()
        started = time.perf_counter()
        report = store.ingest(frames, on_stored=_offline_writer(settings))
    finally:
        store.dispose()
    return Ingested(report=report, seconds=time.perf_counter() - started)


def _offline_writer(
    settings: TrainingSettings,
) -> Callable[[dict[str, pd.DataFrame]], object] | None:
    """Appends what an ingest stored to the offline copy, when ``TIJDIG_OFFLINE_DIR`` is
    set (in the same run; a failure here leaves the copy short, which `tijdig offline
    check` shows and `tijdig offline sync` repairs)."""
    if settings.offline_dir is None:
        return None
    from features.offline import write_offline

    root = settings.offline_dir
    return lambda rows: write_offline(rows, root)


@dataclass(frozen=True)
class RefreshedRows:
    """What :func:`refresh_serving_rows` did: rows computed of all customers, old rows
    purged, as of ``day``, and how long it took."""

    day: date
    computed: int
    total: int
    purged: int
    seconds: float


def refresh_serving_rows(
    store_url: str,
    bundle: Bundle,
    day: date,
    *,
    partition_size: int = SERVING_PARTITION_SIZE,
    keep_days: int = SERVING_KEEP_DAYS,
    update: Update | None = None,
) -> RefreshedRows:
    """Make every customer's serving row as of ``day`` valid (incremental: rows still
    valid are kept) and purge the rows of days more than ``keep_days`` before it."""
    from features.events import to_day
    from features.store import EventStore
    from models.serving import ServingRows

    store = EventStore(store_url)
    started = time.perf_counter()
    try:
        store.create_schema()
        total = store.count("customers")
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if update is not None:
                update("refresh serving rows", done[0], total)

        computed = ServingRows(store).refresh(
            bundle, day, partition_size=partition_size, progress=tick
        )
        purged = store.purge_serving_rows(to_day(day) - keep_days)
    finally:
        store.dispose()
    return RefreshedRows(day, computed, total, purged, time.perf_counter() - started)


# ---------------------------------------------------------------------------- bootstrap
def _recorded_config(settings: TrainingSettings, fallback: SimulationConfig) -> SimulationConfig:
    """The config of the simulated world in ``settings.simulation_dir`` as recorded (its
    size, period and seed), else ``fallback``: the plan world then covers the same period."""
    from training.simulation import SimulationConfig

    recorded = settings.simulation_dir / "truth" / "simulation.json"
    if not recorded.is_file():
        return fallback
    return SimulationConfig.from_dict(json.loads(recorded.read_text())["config"])


class BootstrapView(Protocol):
    """What the caller shows of a bootstrap, step by step."""

    def stage(self, title: str) -> None:
        """A stage starts (e.g. ``1/3 simulate the default population``)."""

    def simulated(self, world: SimulatedWorld) -> None:
        """The default world was simulated and written."""

    def warning(self, text: str) -> None:
        """A file in the event folder was ignored."""

    def ingested(self, ingested: Ingested) -> None:
        """The simulated events were ingested."""

    def trained(self, result: TrainingResult, seconds: float) -> None:
        """A candidate was trained and registered; ``result.gate`` says if it was promoted."""

    def champion_found(self) -> None:
        """A champion was registered already: no simulation, ingest or training."""

    def default_day_set(self, day: str) -> None:
        """The simulated world's last day became the served "now"."""

    def refreshed(self, rows: RefreshedRows) -> None:
        """The serving rows for "now" were computed."""


def bootstrap(
    settings: TrainingSettings,
    view: BootstrapView,
    *,
    today: date,
    customers: int = 20_000,
    progress: ProgressDisplay = no_progress,
) -> bool:
    """Get the data dir of ``settings`` ready to serve: without a champion, train one (on
    the events in the store; with no events, on the default simulated world of
    ``customers``, simulated unless its files are there); then compute the serving rows
    for "now" (``today`` unless ``TIJDIG_DEFAULT_AS_OF`` or a simulated world says
    otherwise), so the first requests read one row each. A second start finds the
    champion and the rows and only checks them.

    When the store is (or is about to be) the simulated default world, a plan-variation
    world is simulated beside it (:mod:`training.plan_world`) and the P(kept) component
    learns from that: the default world's ``debt / 5`` plans cannot teach it (issue 20).

    Returns False when the first model did not pass the gate: nothing to serve.
    Raises what the steps raise (:class:`UnreadableEvents`, ``IngestRejected``,
    ``TrainingDataRejected``, ``BundleError``, :class:`DefaultDayInvalid`)."""
    from features.store import EventStore
    from models.bundle import REGISTERED_MODEL_NAME, load_bundle
    from training.pipeline import run_training
    from training.plan_world import existing_plan_world, plan_world_dir, simulate_plan_world
    from training.registry import CHAMPION, Registry
    from training.simulation import SimulationConfig

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(settings.store_url)
    store.create_schema()
    has_events = store.count("customers") > 0
    store.dispose()
    if Registry.from_settings(settings).champion() is None:
        if not has_events:
            config = SimulationConfig(
                n_customers=customers, months=DEFAULT_MONTHS, seed=DEFAULT_SEED
            )
            if not (settings.simulation_dir / "customers.parquet").is_file():
                view.stage("1/3 simulate the default population")
                with progress() as update:
                    world = simulate_world(config, settings.simulation_dir, update)
                view.simulated(world)
            if existing_plan_world(settings) is None:
                view.stage("1/3 simulate a creditor who varies plan amounts (for P(kept))")
                with progress() as update:
                    world = simulate_plan_world(
                        _recorded_config(settings, config), plan_world_dir(settings), update
                    )
                view.simulated(world)
            view.stage("2/3 ingest the events")
            view.ingested(ingest_folder(settings.simulation_dir, settings, warn=view.warning))
        view.stage("3/3 train, register and promote")
        truth_dir = settings.simulation_dir if settings.simulation_dir.is_dir() else None
        started = time.perf_counter()
        with progress() as update:
            result = run_training(
                settings,
                truth_dir=truth_dir,
                plan_world=existing_plan_world(settings),
                progress=update,
            )
        view.trained(result, time.perf_counter() - started)
        if not result.gate.promote:
            return False
    else:
        view.champion_found()
    day_set = use_simulated_today(settings)
    if day_set:
        view.default_day_set(day_set)
    view.stage("serving rows")
    bundle = load_bundle(
        f"models:/{REGISTERED_MODEL_NAME}@{CHAMPION}", settings.mlflow_tracking_uri
    )
    day = default_day(settings, today)
    with progress() as update:
        rows = refresh_serving_rows(settings.store_url, bundle, day, update=update)
    view.refreshed(rows)
    return True

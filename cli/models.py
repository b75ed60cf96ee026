"""Model commands: `tijdig train`, `models list`, `models promote`, `models challenger`,
`models compare`, `models card` and `models ui`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.checks import DataDir, console, fail, require_registry, require_store, training_settings

models_app = typer.Typer(
    help="Inspect and promote registered model versions.", no_args_is_help=True
)


def train(
    truth: Annotated[
        Path | None, typer.Option(help="simulation folder with hidden truth, for the oracle")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="external labels: CSV/Parquet with customer_id, as_of, label (1 = the event "
            "happened within the horizon after as_of). State the horizon and definition in "
            "a sidecar of the same name ending .json (labels.json beside labels.csv): "
            '{"horizon_days": 365, "definition": "90+ days past due within 12 months"}, '
            "or give --horizon-days; without either, 90 days and a warning"
        ),
    ] = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="label horizon in days: how far after as_of a label looks; sets the purge "
            "gaps of the out-of-time split and is recorded in the bundle. Default: the "
            "--labels sidecar's, else TIJDIG_HORIZON_DAYS (90)",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="promote even when the gate refuses")] = False,
    partitioned: Annotated[
        bool,
        typer.Option(
            help="read the events one customer partition at a time and keep only the "
            "training rows (the same model, a fraction of the memory)"
        ),
    ] = False,
    offline: Annotated[
        Path | None,
        typer.Option(help="read the events from this Parquet offline copy (partitioned)"),
    ] = None,
    sample_customers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="fit on about N customers drawn by a hash of their id (reproducible); "
            "validation on every customer (partitioned)",
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="local:N (a local cluster of N worker processes) or tcp://HOST:PORT (an "
            "existing scheduler): snapshots per partition and lightgbm.dask on the cluster",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Train on the event store; register the bundle; the promotion gate decides on `champion`.

    The gate compares only models whose labels share a horizon and definition; a model
    trained on other labels is kept as candidate, for `tijdig models promote` after review.
    """
    if labels is not None and not labels.is_file():
        raise typer.BadParameter(f"no such file: {labels}", param_hint="--labels")
    if truth is not None and not truth.is_dir():
        raise typer.BadParameter(f"no such folder: {truth}", param_hint="--truth")
    if dask is not None:
        from training.cluster import parse_dask

        try:
            parse_dask(dask)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--dask") from None
    if offline is not None and not offline.is_dir():
        raise typer.BadParameter(f"no such folder: {offline}", param_hint="--offline")
    from training.pipeline import Scale

    scale = Scale(partitioned, offline, sample_customers, dask)
    if scale.active and labels is not None:
        raise typer.BadParameter(
            "--labels trains in-process; leave out --partitioned, --offline, "
            "--sample-customers and --dask",
            param_hint="--labels",
        )
    settings = training_settings(data_dir)
    if offline is None:
        require_store(settings)
    truth_dir = (
        truth
        if truth is not None
        else (settings.simulation_dir if settings.simulation_dir.is_dir() else None)
    )
    from training.rejected import TrainingDataRejected

    try:
        result = _train(settings, truth_dir, labels, horizon_days, force, scale)
    except TrainingDataRejected as rejected:  # the user's data: a message, not a traceback
        fail(str(rejected), code=1)
    if not result.gate.promote:
        raise typer.Exit(code=3)


def _train(
    settings: Any,
    truth_dir: Path | None,
    labels: Path | None,
    horizon_days: int | None,
    force: bool,
    scale: Any = None,
) -> Any:
    from cli.checks import progress
    from training.label_definition import read_label_file
    from training.pipeline import run_training
    from training.plan_world import existing_plan_world

    external = None
    if labels is not None:
        external = read_label_file(labels, horizon_days, settings.horizon_days)
        if external.warning:
            console.print(f"[yellow]warning:[/] {external.warning}", markup=True, highlight=False)
    elif horizon_days is not None:
        settings = settings.model_copy(update={"horizon_days": horizon_days})
    started = time.perf_counter()
    with progress() as update:
        result = run_training(
            settings,
            truth_dir=truth_dir,
            external_labels=external,
            force=force,
            progress=update,
            # training on the simulated world: P(kept) learns from the plan-variation world
            # `tijdig run` simulated beside it (training.plan_world), if there is one
            plan_world=existing_plan_world(settings) if truth_dir and labels is None else None,
            **({"scale": scale} if scale is not None else {}),
        )
    print_trained(result, time.perf_counter() - started)
    return result


def evaluate(
    labels: Annotated[
        Path,
        typer.Option(
            help="labels: CSV/Parquet with customer_id, as_of, label (e.g. the labels.parquet "
            "`tijdig import` wrote); its sidecar or --horizon-days says what they mean"
        ),
    ],
    cv: Annotated[int, typer.Option("--cv", min=2, help="number of stratified folds")] = 5,
    seed: Annotated[int, typer.Option(help="random seed of the folds")] = 0,
    horizon_days: Annotated[
        int | None, typer.Option(min=1, help="label horizon in days, recorded with the run")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="folder for cv_report.json and cv_report.md (default <data_dir>/cv)"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Cross-validate the model and its baseline on labelled events (stratified K-fold).

    For labels at one date (no out-of-time split): the same model and calibration as
    `tijdig train` per fold, logistic regression beside it; a report and an MLflow run.
    """
    if not labels.is_file():
        raise typer.BadParameter(f"no such file: {labels}", param_hint="--labels")
    settings = training_settings(data_dir)
    require_store(settings)
    from cli.checks import progress
    from training.cross_validation import run_cross_validation
    from training.label_definition import read_label_file
    from training.rejected import TrainingDataRejected

    target = out or settings.data_dir / "cv"
    started = time.perf_counter()
    try:
        label_file = read_label_file(labels, horizon_days, settings.horizon_days)
        with progress() as update:
            report = run_cross_validation(
                settings, label_file, k=cv, seed=seed, out=target, progress=update
            )
    except TrainingDataRejected as rejected:
        fail(str(rejected), code=1)
    table = Table(title=f"{cv}-fold cross-validation")
    for header in ("model", "ROC AUC", "PR AUC", "Brier", "ECE"):
        table.add_column(header, justify="left" if header == "model" else "right")
    for name, s in report["summary"].items():
        table.add_row(
            name,
            f"{s['roc_auc']:.4f} ± {s['roc_auc_sd']:.4f}",
            f"{s['pr_auc']:.4f}",
            f"{s['brier']:.4f}",
            f"{s['ece']:.4f}",
        )
    table.caption = (
        f"{report['rows']:,} rows, {report['customers']:,} customers, base rate "
        f"{report['base_rate']:.4f}"
    )
    console.print(table)
    console.print(f"protocol: {report['protocol']}", highlight=False)
    console.print(
        f"report → {target / 'cv_report.md'} (and .json); MLflow run {report['mlflow_run_id']}; "
        f"{time.perf_counter() - started:.1f} s",
        highlight=False,
    )


def print_trained(result: Any, seconds: float) -> None:
    """What `tijdig train` (and `run`'s third stage) says of the candidate: its validation
    metrics, the gate's decision, the data and the time per stage."""
    _print_metrics(result.candidate.metrics)
    for name, why in result.candidate.left_out.items():
        console.print(f"{name}: left out, {why}", highlight=False)
    label = result.candidate.bundle.metadata["label"]
    console.print(
        f"labels: {label['source']}, horizon {label['horizon_days']} days, "
        f"definition: {label['definition']}",
        highlight=False,
    )
    bnpl = result.candidate.bundle.metadata.get("bnpl_operating_point")
    if bnpl:
        from training.bnpl_policy import summary_line

        console.print(summary_line(bnpl), highlight=False)
    colour = "green" if result.gate.promote else "yellow"
    console.print(f"version {result.version}: [{colour}]{result.gate.summary()}[/]")
    console.print(
        f"trained on {result.n_snapshots:,} snapshots in {seconds:.1f} s; "
        f"split {json.dumps(result.candidate.split.dates)}"
    )
    console.print(
        "seconds per stage: "
        + ", ".join(f"{stage} {s:.1f}" for stage, s in result.candidate.timings.items())
    )


#: metrics that count (rows) or flag (0/1): printed as whole numbers
WHOLE_METRICS = frozenset({"rows", "prior_mode", "informative"})


def metric_text(name: str, value: float) -> str:
    """``value`` as people read it: counts and flags whole, scores to four decimals."""
    if name in WHOLE_METRICS and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4f}"


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
            console.print(
                f"{name}: " + ", ".join(f"{k}={metric_text(k, v)}" for k, v in m.items()),
                highlight=False,
            )


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """Registered versions with their aliases, gate outcome and validation metrics."""
    from training.registry import Registry

    settings = training_settings(data_dir)
    require_registry(settings)
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

    settings = training_settings(data_dir)
    registry = _registry_with(settings, version)
    try:
        registry.promote(version)
    except BundleError as exc:  # registered, but its bundle cannot be loaded: not served
        fail(f"version {version} cannot be promoted: its bundle does not load ({exc})", code=1)
    console.print(f"champion → version {version}; run `curl -X POST .../admin/reload` to serve it")


@models_app.command("challenger")
def models_challenger(
    version: Annotated[str, typer.Argument(help="version number")], data_dir: DataDir = None
) -> None:
    """Point `challenger` at VERSION: a service with TIJDIG_SHADOW_SHARE above 0 scores it in
    the shadow (never answering with it) from its next start; `models compare` shows how it
    did."""
    from models.bundle import BundleError

    settings = training_settings(data_dir)
    registry = _registry_with(settings, version)
    try:
        registry.set_challenger(version)
    except BundleError as exc:
        fail(f"version {version} cannot be the challenger: its bundle does not load ({exc})", 1)
    console.print(
        f"challenger → version {version}; restart the service with TIJDIG_SHADOW_SHARE "
        "(e.g. 0.1) to score it in the shadow"
    )


@models_app.command("compare")
def models_compare(
    since: Annotated[str, typer.Option(help="shadowed decisions from this day (YYYY-MM-DD)")],
    until: Annotated[
        str | None, typer.Option(help="until this day (YYYY-MM-DD), exclusive")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Champion against shadow challenger on the same logged requests: rank correlation,
    flag agreement at the policy cut-off, mean absolute difference of the probabilities;
    once labels have matured in the event store, both models' ROC AUC, PR AUC and ECE on
    the same rows. Exit 2 when no request was shadowed in the period."""
    from cli.checks import parse_day, require_decision_log, service_settings
    from training.monitoring.compare import compare_report

    start = parse_day(since, "--since")
    end = None if until is None else parse_day(until, "--until")
    settings = service_settings(data_dir)
    require_decision_log(settings)
    shadow = _shadow_rows(settings, start, end)
    if shadow.empty:
        fail(
            f"no shadowed decision since {start}: set TIJDIG_SHADOW_SHARE above 0 and a "
            "challenger (`tijdig models challenger VERSION`), or widen the period"
        )
    labelled = _matured_shadow_rows(training_settings(data_dir), shadow)
    typer.echo(compare_report(shadow, labelled).render())


def _shadow_rows(settings: Any, start: Any, end: Any) -> Any:
    """The shadow rows logged in [``start``, ``end``) as a frame."""
    from datetime import UTC, datetime

    import pandas as pd

    from service.decision_log import SHADOW_COLUMNS, DecisionLog

    def midnight(day: Any) -> Any:
        return None if day is None else datetime.combine(day, datetime.min.time(), tzinfo=UTC)

    log = DecisionLog(settings.decision_log_url).open()
    try:
        rows = list(log.iter_shadow(midnight(start), midnight(end)))
    finally:
        log.close()
    return pd.DataFrame(rows, columns=list(SHADOW_COLUMNS))


def _matured_shadow_rows(settings: Any, shadow: Any) -> Any:
    """The shadow rows whose labels have matured in the event store, labelled with the
    champion's label definition (the default one without a champion); None without an
    event store."""
    from cli.checks import missing_database
    from features.store import EventStore
    from training.label_definition import label_config_of
    from training.monitoring.compare import CHAMPION_P
    from training.monitoring.outcomes import matured_labels
    from training.pipeline import read_events

    missing = missing_database(
        settings.store_url,
        "customers",
        what="event store",
        variable="TIJDIG_STORE_URL",
        sqlite_lacks_table="holds no event tables",
    )
    if missing is not None:
        return None
    metadata: dict[str, Any] = {}
    if Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).is_file() or not (
        settings.mlflow_tracking_uri.startswith("sqlite:///")
    ):
        from training.registry import Registry

        champion = Registry.from_settings(settings).champion()
        metadata = champion.metadata if champion is not None else {}
    store = EventStore(settings.store_url)
    try:
        events = read_events(store)
    finally:
        store.dispose()
    keys = ["customer_id", "as_of", "champion_version", "challenger_version"]
    scored = shadow.drop_duplicates(keys, keep="last")
    scored = scored.assign(probability=scored[CHAMPION_P])
    return matured_labels(scored, events, label_config_of(metadata))


def _registry_with(settings: Any, version: str) -> Any:
    """The registry, refusing (exit 2, listing the versions) a VERSION it does not hold."""
    from training.registry import Registry

    require_registry(settings)
    registry = Registry.from_settings(settings)
    known = registry.versions()
    if version not in {row["version"] for row in known}:
        listed = ", ".join(
            row["version"] + (f" ({','.join(row['aliases'])})" if row["aliases"] else "")
            for row in known
        )
        fail(
            f"version {version} does not exist; versions: {listed}"
            if known
            else f"version {version} does not exist: no version is registered; run `tijdig train`"
        )
    return registry


@models_app.command("card")
def models_card(
    version: Annotated[str, typer.Argument(help="version number")],
    out: Annotated[
        Path | None, typer.Option(help="write the card to this file instead of printing it")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The model card of VERSION (Markdown): intended use, data, metrics, fairness, drift
    reference, limitations, and where each AI Act and CCD2 obligation is met."""
    from models.bundle import BundleError, load_bundle
    from training.model_card import model_card

    settings = training_settings(data_dir)
    registry = _registry_with(settings, version)
    try:
        bundle = load_bundle(
            f"models:/{registry.model_name}/{version}", settings.mlflow_tracking_uri
        )
    except BundleError as exc:
        fail(f"version {version} has no bundle that loads ({exc})", code=1)
    bundle.version = f"{registry.model_name}/{version}"  # as the registry names it
    card = model_card(bundle)
    if out is None:
        typer.echo(card)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(card, encoding="utf-8")
    console.print(f"wrote the model card of version {version} to {out}")


#: How to get MLflow's web UI: the service needs only mlflow-skinny, which has no UI.
UI_INSTALL_HINT = "pip install -e '.[ui]'"


@models_app.command("ui")
def models_ui(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000,
    data_dir: DataDir = None,
) -> None:
    """Open MLflow's own UI on the data dir's tracking store and artifacts (127.0.0.1 only:
    the runs hold model metadata that is not for the network). Needs the `ui` extra."""
    import shutil
    import subprocess
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from cli.checks import port_problem

    settings = training_settings(data_dir)
    require_registry(settings)
    try:
        version("mlflow")
    except PackageNotFoundError:
        fail(
            "MLflow's UI is not installed (tijdig needs only mlflow-skinny, which has none): "
            f"run `{UI_INSTALL_HINT}` (or `{Path(sys.executable).parent}/pip install "
            "'mlflow>=2.16'`), then `tijdig models ui` again.",
            code=1,
        )
    executable = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which(
        "mlflow"
    )
    if executable is None:
        fail(f"the mlflow command is not on PATH; reinstall with `{UI_INSTALL_HINT}`", code=1)
    if port_problem("127.0.0.1", port) is not None:
        fail(
            f"cannot listen on 127.0.0.1:{port} (in use?): try `tijdig models ui --port {port + 1}`",
            1,
        )
    command = [
        executable,
        "ui",
        "--backend-store-uri",
        settings.mlflow_tracking_uri,
        "--default-artifact-root",
        Path(settings.artifact_dir).resolve().as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    console.print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl+C stops it)")
    raise typer.Exit(code=subprocess.call(command))

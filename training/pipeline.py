"""``tijdig train``: events in the store → snapshots → candidate → MLflow → promotion gate."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.db import public_url
from features.events import EventArrays
from features.labels import LabelConfig
from features.store import EventStore
from models.bnpl import BnplPolicy
from training.components import Precomputed
from training.dask_training import dask_client
from training.dataset import (
    build_snapshots,
    concat_events,
    monthly_as_of_dates,
    snapshots_from_external_labels,
)
from training.evaluate import save_plots
from training.label_definition import (
    EXTERNAL,
    UNSTATED,
    LabelDefinition,
    LabelFile,
    events_definition,
)
from training.memory import PeakMemory
from training.partitioned import PartitionedData, build_partitioned, plan_snapshots
from training.partitions import OfflinePartitions, PartitionSource, StorePartitions
from training.registry import GateDecision, GateRules, Registry, promotion_gate
from training.rejected import TrainingDataRejected
from training.settings import TrainingSettings
from training.train import BoosterFit, CandidateModel, timed, train_candidate

Progress = Callable[[str, int, int], None]  # (step, done, total)

#: Customers per read from the event store. Building :class:`EventArrays` from a
#: partition's frames takes about 60 KB per customer for a while (a string object per id
#: per event, dictionaries from ids to positions): 0.6 GB at this size.
READ_PARTITION_CUSTOMERS = 10_000


@dataclass(frozen=True)
class Scale:
    """How training reads events and fits when the population outgrows one process.

    Any field set selects partitioned training (:mod:`training.partitioned`): events are
    read one customer partition at a time and never held together.

    - ``offline_dir``: read the Parquet offline copy there instead of the event store.
    - ``sample_customers``: fit (train and calibration rows) on about this many customers,
      drawn by a hash of their id (reproducible); validation stays every customer's.
    - ``dask``: ``local:N`` or ``tcp://HOST:PORT``: build the partitions on the cluster
      and fit ``lightgbm.dask`` there (:mod:`training.dask_training`).
    - ``partitioned``: partitioned in-process training with none of the above.
    """

    partitioned: bool = False
    offline_dir: Path | None = None
    sample_customers: int | None = None
    dask: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.partitioned or self.offline_dir or self.sample_customers or self.dask)

    def mode(self) -> str:
        """``in-process``, ``partitioned``, ``partitioned sample`` or ``dask ...``."""
        if not self.active:
            return "in-process"
        if self.dask:
            return f"dask {self.dask}" + (" sample" if self.sample_customers else "")
        return "partitioned sample" if self.sample_customers else "partitioned"


@dataclass
class TrainingResult:
    candidate: CandidateModel
    version: str
    gate: GateDecision
    n_snapshots: int
    #: peak memory (MB) and, when partitioned or on Dask, how the data were read
    training: dict[str, Any] | None = None

    def metrics_table(self) -> list[dict[str, Any]]:
        return [{"model": name, **m} for name, m in self.candidate.metrics.items()]


def load_truth(directory: Path | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The simulator's hidden truth, when training on simulated data (for the oracle)."""
    if directory is None:
        return None, None
    tc, tm = (
        directory / "truth" / name for name in ("truth_customers.parquet", "truth_monthly.parquet")
    )
    if not (tc.is_file() and tm.is_file()):
        return None, None
    return pd.read_parquet(tc), pd.read_parquet(tm)


def read_store_events(store_url: str, report: Progress | None = None) -> EventArrays:
    """Every customer's events of the store at ``store_url`` (:func:`read_events`),
    refused with :class:`TrainingDataRejected` when it holds none; ``report`` hears
    the stage start and end."""
    store = EventStore(store_url)
    try:
        if report:
            report("read events", 0, 1)
        events = read_events(store)
    finally:
        store.dispose()
    if report:
        report("read events", 1, 1)
    if events.n == 0:
        raise TrainingDataRejected(
            f"the event store at {public_url(store_url)} holds no customers; ingest events first"
        )
    return events


def read_events(
    store: EventStore, partition_customers: int = READ_PARTITION_CUSTOMERS
) -> EventArrays:
    """Every customer's events, read and converted one partition of customers at a time.

    Read whole, the store's frames and their conversion were most of training's peak
    memory (6.5 GB for 100,000 customers' events that take 0.5 GB as :class:`EventArrays`).
    Each partition is one read snapshot of its customers: an ingest running meanwhile
    may land between partitions, never within a customer's history.
    """
    return concat_events(
        [
            EventArrays.from_frames(store.read_frames(ids))
            for ids in store.iter_customer_partitions(partition_customers)
        ]
    )


def bnpl_params(policy: BnplPolicy, report: dict[str, Any]) -> dict[str, Any]:
    """MLflow params of the bundle's pay-later policy and where it came from."""
    params = {
        "bnpl.policy_version": policy.version,
        "bnpl.cutoff": policy.risk_cutoff,
        "bnpl.arrears_grace_days": policy.arrears_grace_days,
        "bnpl.sticky_codes": ",".join(policy.sticky_codes) or "none",
        "bnpl.source": report.get("source", "policy file"),
    }
    if report.get("source") == "chosen":
        params["bnpl.variant"] = report["chosen"]["variant"]
        params["bnpl.orders"] = report["orders"]
        params["bnpl.customer_share"] = report["customer_share"]
    elif report.get("reason"):
        params["bnpl.reason"] = report["reason"]
    return params


def bnpl_metrics(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """MLflow metrics of the pay-later choice: the chosen point and the rules alone
    (``bnpl_chosen.approval_rate`` …); the whole curve is in the run's
    ``evaluation/bnpl_operating_point.json``."""
    if report.get("source") != "chosen":
        return {}
    keys = ("approval_rate", "collection_rate_approved", "cutoff", "lent_eur", "lost_eur")
    return {
        f"bnpl_{name}": {k: float(report[name][k]) for k in keys if k in report[name]}
        for name in ("chosen", "rules_only")
    }


def run_training(
    settings: TrainingSettings,
    *,
    truth_dir: Path | None = None,
    external_labels: LabelFile | pd.DataFrame | None = None,
    rules: GateRules = GateRules(),
    force: bool = False,
    progress: Progress | None = None,
    plan_world: Path | None = None,
    scale: Scale = Scale(),
) -> TrainingResult:
    """Train a candidate on everything in the event store and let the gate decide.

    Labels come from the events (``settings.horizon_days`` and ``dpd_threshold``) or from
    ``external_labels``: a :class:`LabelFile` with its stated horizon, or a bare frame
    taken at ``settings.horizon_days``. The horizon sets the split's purge gaps and is
    recorded in the bundle; ``progress`` hears of every stage. ``plan_world``: a simulated
    world whose creditor varies plan amounts (:mod:`training.plan_world`); the ``plan_kept``
    component then learns from its events instead of the store's. ``scale``: partitioned,
    sampled or Dask training (:class:`Scale`; labels from the events only).

    Peak memory (this process, and its process tree with any local Dask workers) is
    measured over reading and fitting and recorded as the ``training`` metrics
    (``training.peak_rss_mb`` in MLflow) and in the bundle's ``metadata["training"]``.
    """
    if scale.active and external_labels is not None:
        raise ValueError(
            "partitioned, sampled or Dask training takes its labels from the events; "
            "train on external labels (--labels) without --partitioned/--offline/"
            "--sample-customers/--dask"
        )
    with contextlib.ExitStack() as stack:
        peak = stack.enter_context(PeakMemory())
        client = stack.enter_context(dask_client(scale.dask)) if scale.dask else None
        result = _train_and_register(
            settings,
            truth_dir,
            external_labels,
            rules,
            force,
            progress,
            plan_world,
            scale,
            peak,
            client,
        )
    return result


def _train_and_register(
    settings: TrainingSettings,
    truth_dir: Path | None,
    external_labels: LabelFile | pd.DataFrame | None,
    rules: GateRules,
    force: bool,
    progress: Progress | None,
    plan_world: Path | None,
    scale: Scale,
    peak: PeakMemory,
    client: Any,
) -> TrainingResult:

    def report(step: str, done: int, total: int) -> None:
        if progress:
            progress(step, done, total)

    timings: dict[str, float] = {}
    if not scale.active:
        with timed(timings, "read events"):
            events = read_store_events(settings.store_url, report)

    if isinstance(external_labels, pd.DataFrame):
        external_labels = LabelFile(
            external_labels, LabelDefinition(settings.horizon_days, EXTERNAL, UNSTATED)
        )
    label_config = LabelConfig(
        horizon_days=(
            settings.horizon_days
            if external_labels is None
            else external_labels.definition.horizon_days
        ),
        dpd_threshold=settings.dpd_threshold,
    )
    definition = (
        events_definition(label_config) if external_labels is None else external_labels.definition
    )
    precomputed: Precomputed | None = None
    fit_booster: BoosterFit | None = None
    facts: dict[str, Any] = {"mode": scale.mode()}
    if scale.active:
        with timed(timings, "read events and build snapshots"):
            data, fit_booster, facts = build_scaled(
                settings,
                label_config,
                scale,
                client,
                lambda done, total: report("read events and build snapshots", done, total),
            )
        events, snaps, precomputed = data.events, data.snapshots, data.precomputed
    elif external_labels is not None:
        with timed(timings, "build snapshots"):
            snaps = snapshots_from_external_labels(
                events,
                external_labels.frame,
                progress=lambda done, total: report("build snapshots", done, total),
            )
    else:
        with timed(timings, "build snapshots"):
            dates = monthly_as_of_dates(events, label_config)
            snaps = build_snapshots(
                events,
                dates,
                label_config,
                progress=lambda done, total: report("build snapshots", done, total),
            )

    truth_customers, truth_monthly = load_truth(truth_dir)
    plan_events = None
    if plan_world is not None:
        from training.plan_world import read_plan_events

        report("read the plan world", 0, 1)
        with timed(timings, "read the plan world"):
            plan_events = read_plan_events(plan_world)
        report("read the plan world", 1, 1)
    candidate = train_candidate(
        events,
        snaps,
        label_config,
        label_definition=definition,
        truth_customers=truth_customers,
        truth_monthly=truth_monthly,
        validation_dates=settings.validation_dates,
        calibration_dates=settings.calibration_dates,
        progress=report,
        plan_events=plan_events,
        precomputed=precomputed,
        fit_booster=fit_booster,
        choose_bnpl_policy=True,
    )
    candidate.timings = {**timings, **candidate.timings}
    peak.stop()  # the peak of reading and fitting, known before logging
    facts.update(peak.as_metrics())
    if client is not None and scale.dask and scale.dask.startswith("tcp://"):
        from training.dask_training import worker_peaks_mb

        facts["worker_peak_rss_mb"] = worker_peaks_mb(client)
    candidate.metrics["training"] = {
        k: float(v) for k, v in facts.items() if isinstance(v, int | float)
    }
    candidate.bundle.metadata["training"] = facts

    registry = Registry.from_settings(settings)
    champion, unusable = registry.champion_or_why_not()

    with tempfile.TemporaryDirectory() as tmp:
        plots = save_plots(
            Path(tmp), candidate.validation_y, candidate.validation_scores, candidate.importance
        )
        bnpl = candidate.bundle.metadata.get("bnpl_operating_point", {})
        plots.append(Path(tmp) / "bnpl_operating_point.json")
        plots[-1].write_text(json.dumps(bnpl, indent=2, default=str))
        params = {
            **{f"lgbm.{k}": v for k, v in candidate.params.items()},
            "label.horizon_days": label_config.horizon_days,
            "label.dpd_threshold": label_config.dpd_threshold,
            "label.source": "external" if external_labels is not None else "events",
            "label.definition": definition.definition,
            "split.train": candidate.split.dates["train"],
            "split.calibration": candidate.split.dates["calibration"],
            "split.validation": candidate.split.dates["validation"],
            "customers": events.n,
            "training.mode": scale.mode(),
            "training.source": facts.get("source", public_url(settings.store_url)),
            "snapshots": len(snaps),
            "plan_kept.events": "plan world" if plan_world is not None else "store",
            **bnpl_params(candidate.bundle.bnpl_policy, bnpl),
        }
        tags = {
            "data_fingerprint": candidate.bundle.metadata["data_fingerprint"],
            "store_url": settings.store_url.split("@")[-1],
        }
        report("log to MLflow", 0, 1)
        with timed(candidate.timings, "log to MLflow"):
            version = registry.log_and_register(
                candidate.bundle, params, {**candidate.metrics, **bnpl_metrics(bnpl)}, plots, tags
            )
        report("log to MLflow", 1, 1)
    # after registering, so a refusal can name the version to promote by hand
    report("promotion gate", 0, 1)
    with timed(candidate.timings, "promotion gate"):
        va = snaps.subset(candidate.split.validation)
        gate = promotion_gate(
            candidate.bundle,
            va.X,
            va.y,
            champion,
            rules,
            candidate.components,
            unusable,
            candidate_version=version,
        )
        if force and not gate.promote:
            gate.reasons.append("promoted anyway: --force")
            gate.promote = True
        registry.record_gate(version, gate)
    report("promotion gate", 1, 1)
    return TrainingResult(candidate, version, gate, len(snaps), facts)


def build_scaled(
    settings: TrainingSettings,
    label_config: LabelConfig,
    scale: Scale,
    client: Any,
    progress: Callable[[int, int], None],
) -> tuple[PartitionedData, BoosterFit | None, dict[str, Any]]:
    """Partitioned training data (:mod:`training.partitioned`) from the store or the
    offline copy, in this process or on the Dask ``client``; with the booster fit to use
    (None: in-process) and facts for the report."""
    source: PartitionSource = (
        OfflinePartitions(scale.offline_dir)
        if scale.offline_dir is not None
        else StorePartitions(settings.store_url)
    )
    customers = source.customers()
    if customers == 0:
        raise TrainingDataRejected(f"{source.describe()} holds no customers; ingest events first")
    fraction = min(1.0, scale.sample_customers / customers) if scale.sample_customers else 1.0
    plan = plan_snapshots(
        source.day_bounds(),
        label_config,
        settings.validation_dates,
        settings.calibration_dates,
        sample_fraction=fraction,
    )
    facts: dict[str, Any] = {
        "mode": scale.mode(),
        "source": source.describe(),
        "customers": customers,
        "sample_fraction": fraction,
    }
    fit: BoosterFit | None = None
    if client is not None:
        from training.dask_training import build_on_cluster

        data, fit, cluster = build_on_cluster(client, source, plan, progress)
        facts.update(cluster)
    else:
        data = build_partitioned(source, plan, progress)
        facts["partitions"] = len(data.partitions)
        if data.partitions:
            facts["partition_kept_mb_max"] = max(p["bytes"] for p in data.partitions) / 2**20
            facts["partition_s_mean"] = float(np.mean([p["s"] for p in data.partitions]))
    return data, fit, facts

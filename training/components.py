"""Trainers for bundle components (see :mod:`models.components`).

``train_candidate`` fits every trainer in :data:`COMPONENT_TRAINERS` on the same events
and out-of-time split as the risk model; each returns its fitted component, validation
metrics and a comparison against the champion's component for the promotion gate.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.events import EventArrays
from features.labels import LabelConfig
from training.dataset import Snapshots, TimeSplit


@dataclass
class TrainingContext:
    """Everything a component trainer may use; all of it is point-in-time safe."""

    events: EventArrays
    snapshots: Snapshots  # the risk model's snapshots
    split: TimeSplit  # the risk model's out-of-time split (dates per segment)
    label_config: LabelConfig
    truth_customers: pd.DataFrame | None = None
    truth_monthly: pd.DataFrame | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: events the ``plan_kept`` trainer learns from instead of ``events``: a simulated
    #: world whose creditor varies plan amounts (training.plan_world); None = ``events``
    plan_events: EventArrays | None = None
    #: the event-derived rows, computed partition by partition when training holds no
    #: whole event history (training.partitioned); ``events`` then holds customers only
    precomputed: Precomputed | None = None


@dataclass
class Precomputed:
    """What training derives from the events besides the snapshots, computed partition by
    partition (:mod:`training.partitioned`): the same values as from the whole history."""

    #: the second-reminder rule (:func:`training.dataset.second_reminder_rule`) per
    #: validation snapshot, in the snapshots' row order
    rule_second_reminder: np.ndarray
    #: ``training.debit_failure.build_debit_rows`` of every customer
    debit_rows: Any
    #: ``training.plan_kept.arrangement_rows`` of every customer
    arrangement_rows: tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class FittedComponent:
    name: str
    component: Any
    metrics: dict[str, float]
    #: champion's component (or None) -> [(passed, reason)], for the promotion gate
    compare: Callable[[Any | None], list[tuple[bool, str]]]


class ComponentTrainer(Protocol):
    name: str

    def fit(self, context: TrainingContext) -> FittedComponent: ...


#: "module:Class" of every component trainer, fitted in this order.
COMPONENT_TRAINERS: list[str] = []
COMPONENT_TRAINERS.append("training.plan_kept:PlanKeptTrainer")
COMPONENT_TRAINERS.append("training.debit_failure:DebitFailureTrainer")


def component_trainers() -> list[ComponentTrainer]:
    out = []
    for path in COMPONENT_TRAINERS:
        module_name, _, class_name = path.partition(":")
        out.append(getattr(importlib.import_module(module_name), class_name)())
    return out

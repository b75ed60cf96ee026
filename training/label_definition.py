"""What a model's labels mean: their horizon and definition, stated, recorded, compared.

Labels derived from the events follow :class:`features.labels.LabelConfig`. External
labels (``tijdig train --labels FILE``) state their horizon in a sidecar beside the file,
``<stem>.json`` (``labels.json`` for ``labels.csv`` or ``labels.parquet``)::

    {"horizon_days": 365, "definition": "90+ days past due within 12 months"}

or with ``--horizon-days N``. The horizon sets the purge gaps of the out-of-time split: a
training label window must end before the calibration period starts, so labels over 12
months purged at 90 days leak the validation period into training, and score higher for
it. A file with neither is trained at the default horizon, with a warning saying how to
state it. The bundle records the definition (``metadata["label"]``); the promotion gate
compares only models whose labels mean the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from features.labels import LabelConfig
from training.rejected import TrainingDataRejected

EVENTS = "events"
EXTERNAL = "external labels"
#: the definition of external labels whose sidecar does not state one
UNSTATED = "not stated"
SIDECAR_KEYS = ("horizon_days", "definition")


class LabelFileRejected(TrainingDataRejected):
    """A label file, or its sidecar, that cannot be read or contradicts ``--horizon-days``."""


@dataclass(frozen=True)
class LabelDefinition:
    """What a label of 1 means, and how far after ``as_of`` it looks (days)."""

    horizon_days: int
    source: str  # EVENTS or EXTERNAL
    definition: str

    def as_metadata(self) -> dict[str, Any]:
        """The keys this adds to a bundle's ``metadata["label"]``."""
        return {
            "horizon_days": self.horizon_days,
            "source": self.source,
            "definition": self.definition,
        }

    def differences(self, other: LabelDefinition) -> list[str]:
        """How these labels differ from ``other``'s (the champion's), for people; empty when
        the two are comparable."""
        out = []
        if self.horizon_days != other.horizon_days:
            out.append(
                f"label horizon {self.horizon_days} days differs from the champion's "
                f"{other.horizon_days} days"
            )
        if (self.source, self.definition) != (other.source, other.definition):
            out.append(
                f"label definition {self._described()} differs from the champion's "
                f"{other._described()}"
            )
        return out

    def _described(self) -> str:
        return f"{self.definition!r} ({self.source})"


def events_definition(config: LabelConfig) -> LabelDefinition:
    """The definition of labels derived from the events with ``config``."""
    return LabelDefinition(
        config.horizon_days,
        EVENTS,
        f"an invoice {config.dpd_threshold}+ days past due within the horizon",
    )


def label_config_of(metadata: dict[str, Any]) -> LabelConfig:
    """The :class:`LabelConfig` of a bundle's ``metadata["label"]``: its fields, without
    the source and definition recorded beside them."""
    label = metadata.get("label", {})
    known = {f.name for f in fields(LabelConfig)}
    return LabelConfig(**{k: int(v) for k, v in label.items() if k in known})


def definition_of(metadata: dict[str, Any]) -> LabelDefinition:
    """The label definition a bundle's metadata records. Bundles trained before the
    definition was recorded hold only the horizon and threshold of event labels."""
    label = metadata.get("label", {})
    config = label_config_of(metadata)
    if "source" not in label:
        return events_definition(config)
    return LabelDefinition(config.horizon_days, str(label["source"]), str(label["definition"]))


@dataclass(frozen=True)
class LabelFile:
    """External labels read from a file, with what they mean."""

    frame: pd.DataFrame  # customer_id, as_of, label
    definition: LabelDefinition
    #: set when no horizon was stated and the default applies: for the user to read
    warning: str | None = None


def sidecar_path(path: Path) -> Path:
    """Where the horizon and definition of the label file ``path`` are stated."""
    return path.with_suffix(".json")


def read_label_file(path: Path, horizon_days: int | None, default_horizon_days: int) -> LabelFile:
    """The labels in ``path`` (CSV, or Parquet by its suffix) with their definition.

    The horizon is the sidecar's (:func:`sidecar_path`) or ``horizon_days`` (the
    ``--horizon-days`` option); both given must agree. With neither, it is
    ``default_horizon_days`` and :attr:`LabelFile.warning` says so. Raises
    :class:`LabelFileRejected` for a file or sidecar that cannot be read.
    """
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:  # not CSV/Parquet, empty, unreadable
        raise LabelFileRejected(f"cannot read the labels {path}: {exc}") from exc
    stated = _read_sidecar(sidecar_path(path))
    sidecar_horizon = stated.get("horizon_days")
    if horizon_days is not None and sidecar_horizon not in (None, horizon_days):
        raise LabelFileRejected(
            f"--horizon-days {horizon_days} contradicts the horizon_days {sidecar_horizon} "
            f"stated in {sidecar_path(path)}: give one, or make them agree"
        )
    horizon = horizon_days or sidecar_horizon
    warning = None
    if horizon is None:
        horizon = default_horizon_days
        warning = (
            f"the labels {path.name} state no horizon: trained at the default "
            f"{default_horizon_days} days, which purges the out-of-time split correctly only "
            f"if each label looks at most {default_horizon_days} days past its as_of. State "
            f'it with --horizon-days N or in {sidecar_path(path).name}: {{"horizon_days": N, '
            '"definition": "..."}'
        )
    definition = LabelDefinition(horizon, EXTERNAL, stated.get("definition", UNSTATED))
    return LabelFile(frame, definition, warning)


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's keys, checked; empty when there is no sidecar."""
    if not path.is_file():
        return {}
    try:
        stated = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LabelFileRejected(f"cannot read the label sidecar {path}: {exc}") from exc
    if not isinstance(stated, dict):
        raise LabelFileRejected(
            f"the label sidecar {path} must be a JSON object with {', '.join(SIDECAR_KEYS)}"
        )
    problems = []
    unknown = sorted(set(stated) - set(SIDECAR_KEYS))
    if unknown:
        problems.append(f"unknown keys {unknown}; known: {', '.join(SIDECAR_KEYS)}")
    horizon = stated.get("horizon_days")
    if horizon is not None and (type(horizon) is not int or horizon <= 0):
        problems.append(f"horizon_days must be a positive whole number of days; got {horizon!r}")
    definition = stated.get("definition")
    if definition is not None and (not isinstance(definition, str) or not definition.strip()):
        problems.append(f"definition must be a text; got {definition!r}")
    if problems:
        raise LabelFileRejected(f"the label sidecar {path}: " + "; ".join(problems))
    return stated

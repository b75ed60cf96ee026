"""Bundle components: further models versioned and deployed with the risk model.

The risk model is the bundle's core. Other answers (the P(plan kept) model, the
debit-failure model, ...) are *components*: each lives in a sub-folder of the bundle,
named by its key in :data:`COMPONENT_CLASSES`, and is trained, logged, gated and
deployed together with the risk model, so one version number explains a whole decision.

A component class implements ``save(directory)``, ``classmethod load(directory)`` and
``self_check()`` (raise on anything that would make it answer wrongly).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol


class BundleComponent(Protocol):
    def save(self, directory: Path) -> None: ...

    def self_check(self) -> None: ...


#: folder name inside a bundle -> "module:Class" of the component stored there.
COMPONENT_CLASSES: dict[str, str] = {}
COMPONENT_CLASSES["plan_kept"] = "models.plan_kept:PlanKeptModel"
COMPONENT_CLASSES["debit_failure"] = "models.debit_failure:DebitFailureModel"
COMPONENT_CLASSES["bnpl_adjustment"] = "models.bnpl_adjustment:BnplAdjustment"


def load_component(name: str, directory: Path) -> Any:
    """Load the component ``name`` from ``directory`` and self-check it."""
    module_name, _, class_name = COMPONENT_CLASSES[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    component = cls.load(directory)
    component.self_check()
    return component

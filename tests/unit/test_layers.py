"""The layers of docs/architecture.md: data moves one way, features → models →
training | service → cli. A module that imports upwards (or across training/service)
breaks the layout the doc promises, so the rule is checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package → the project packages it must never import
FORBIDDEN = {
    "features": {"models", "training", "service", "cli", "benchmarks"},
    "models": {"training", "service", "cli", "benchmarks"},
    "training": {"service", "cli", "benchmarks"},
    "service": {"training", "cli", "benchmarks"},
    "cli": {"benchmarks"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_a_layer_above_it(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    offenders = {module: bad for module, bad in offenders.items() if bad}
    assert offenders == {}, f"{package} imports a layer above it: {offenders}"

"""The plan-variation world (training.plan_world): where `make run`'s bundle learns P(kept)
(issue 20, item 4)."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from training.bootstrap import bootstrap
from training.plan_world import (
    PLAN_WORLD_POLICY,
    PLAN_WORLD_SEED,
    existing_plan_world,
    plan_world_config,
    plan_world_dir,
    read_plan_events,
    simulate_plan_world,
)
from training.simulation import SimulationConfig

SMALL = SimulationConfig(n_customers=300, months=12, seed=42, end_date=date(2026, 11, 1))


def debt_over_five(arrangements: pd.DataFrame) -> np.ndarray:
    cents = np.ceil(arrangements["debt_cents"] / 5 / 100) * 100
    return np.minimum(np.maximum(cents, 25_00), arrangements["debt_cents"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    target = tmp_path_factory.mktemp("plans") / "simulation_plans"
    return simulate_plan_world(SMALL, target), target


def test_the_plan_world_is_another_population_over_the_same_period():
    config = plan_world_config(SMALL)
    assert config.seed == PLAN_WORLD_SEED != SMALL.seed
    assert config.period() == SMALL.period()
    assert (config.n_customers, config.months) == (SMALL.n_customers, SMALL.months)


def test_its_creditor_varies_plan_amounts(world):
    _, target = world
    arrangements = pd.read_parquet(target / "arrangements.parquet")
    assert len(arrangements) >= 20
    # debt / 5 would give every plan its debt's fifth; here most plans differ from it
    assert (arrangements["monthly_amount_cents"] != debt_over_five(arrangements)).mean() > 0.5
    recorded = (target / "truth" / "simulation.json").read_text()
    assert PLAN_WORLD_POLICY in recorded


def test_the_plan_kept_trainer_learns_from_the_plan_world(world, trained):
    from training.components import TrainingContext
    from training.plan_kept import PlanKeptTrainer, arrangement_rows

    _, target = world
    plan_events = read_plan_events(target)
    store = trained.components["plan_kept"].component.metadata
    context = SimpleNamespace(
        events=None, split=trained.split, params={"num_threads": 1}, plan_events=plan_events
    )
    fitted = PlanKeptTrainer().fit(context)  # type: ignore[arg-type]
    labelled = len(arrangement_rows(plan_events)[1])
    assert fitted.component.metadata["labelled_arrangements"] == labelled
    assert fitted.component.metadata["events"] == "plan world"
    assert store["events"] == "store"
    assert "plan_events" in {f for f in TrainingContext.__dataclass_fields__}


def test_bootstrap_simulates_the_plan_world_and_trains_p_kept_on_it(tmp_path, monkeypatch):
    """A first `tijdig run` on an empty data dir: the default world, then the plan world
    beside it, and training gets the plan world. (Training itself is stubbed: a refused
    gate ends the bootstrap before serving.)"""
    import training.pipeline
    from training.settings import TrainingSettings

    monkeypatch.delenv("TIJDIG_DEFAULT_AS_OF", raising=False)
    settings = TrainingSettings(data_dir=tmp_path / "state")
    seen: dict[str, object] = {}

    def run_training(settings, **kwargs):
        seen.update(kwargs)
        return SimpleNamespace(gate=SimpleNamespace(promote=False))

    monkeypatch.setattr(training.pipeline, "run_training", run_training)
    monkeypatch.setattr("training.bootstrap.DEFAULT_MONTHS", 6)
    stages: list[str] = []
    view = SimpleNamespace(
        stage=stages.append, simulated=lambda w: None, ingested=lambda i: None,
        warning=lambda t: None, trained=lambda r, s: None,
    )  # fmt: skip
    assert bootstrap(settings, view, today=date(2030, 1, 1), customers=120) is False
    assert existing_plan_world(settings) == plan_world_dir(settings)
    assert seen["plan_world"] == plan_world_dir(settings)
    assert any("plan amounts" in s for s in stages)
    default, plans = (
        json.loads((folder / "truth" / "simulation.json").read_text())
        for folder in (settings.simulation_dir, plan_world_dir(settings))
    )
    assert plans["policy"] == PLAN_WORLD_POLICY and default["policy"] == "current_practice"
    assert (plans["config"]["seed"], default["config"]["seed"]) == (PLAN_WORLD_SEED, 42)
    for key in ("n_customers", "months", "end_date"):
        assert plans["config"][key] == default["config"][key]

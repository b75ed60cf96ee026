"""The plan-variation world: where a bundle trained on a simulated store learns P(kept).

The default world's creditor sets every payment plan at ``debt / 5``: the monthly amount
just follows the debt, so a P(kept) model trained on that history cannot learn what a
lower amount does (issue 20, item 4: the bundle `make run` served put EUR 63 × 8 for the
README's EUR 500 case at P(kept) 0.07, and its suggestion at 0.04). Real creditors set
amounts in conversation with the customer, so their histories do vary.

When tijdig trains on a simulated store, the ``plan_kept`` component therefore learns from
a second simulated world instead, built as ``tijdig plan-eval`` builds its training world
(:mod:`training.studies.plan_eval`, step 1): another population
(:data:`PLAN_WORLD_SEED`, plan-eval's training seed) over the same period as the default
world, whose creditor varies plan sizes
(:class:`~training.simulation.policy.VariedArrangementAmounts`: the debt in N parts, N
uniform on 1..18). Nothing in it is tuned toward a goal; the risk model and the other
components still learn from the store. The world lives beside the default one
(:func:`plan_world_dir`), so a later `tijdig train` on the same data dir learns from it too.
A store of real events never gets one: bring a history whose amounts vary
(:mod:`training.plan_kept`, "What data it needs").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from features.events import EventArrays
    from training.bootstrap import SimulatedWorld, Update
    from training.settings import TrainingSettings
    from training.simulation import SimulationConfig

#: the population of the plan-variation world: plan-eval's training seed (not the served
#: world's 42, so the model is applied to customers it never saw, as in plan-eval)
PLAN_WORLD_SEED: Final = 101
#: the name the world's creditor policy is recorded under (``truth/simulation.json``)
PLAN_WORLD_POLICY: Final = "varied_plan_amounts"


def plan_world_dir(settings: TrainingSettings) -> Path:
    """Where the plan-variation world of a data dir lives (beside ``simulation/``)."""
    return settings.data_dir / "simulation_plans"


def existing_plan_world(settings: TrainingSettings) -> Path | None:
    """The data dir's plan-variation world, when one was simulated; else None."""
    target = plan_world_dir(settings)
    return target if (target / "arrangements.parquet").is_file() else None


def plan_world_config(default: SimulationConfig) -> SimulationConfig:
    """The default world's size and period with the plan world's own population."""
    return dataclasses.replace(default, seed=PLAN_WORLD_SEED, end_date=default.period()[1])


def simulate_plan_world(
    default: SimulationConfig, target: Path, update: Update | None = None
) -> SimulatedWorld:
    """Simulate the plan-variation world of ``default`` (module doc) and write it to
    ``target``."""
    from training.bootstrap import simulate_world
    from training.simulation import CollectionPolicy
    from training.simulation.policy import VariedArrangementAmounts

    config = plan_world_config(default)
    policy = CollectionPolicy(
        arrangement_monthly=VariedArrangementAmounts(seed=config.seed), name=PLAN_WORLD_POLICY
    )
    return simulate_world(config, target, update, policy=policy)


def read_plan_events(directory: Path) -> EventArrays:
    """The plan-variation world's events, for the ``plan_kept`` trainer."""
    from features.events import EventArrays
    from features.io import read_event_dir

    return EventArrays.from_frames(read_event_dir(directory))

"""The embedded simulator: a population with hidden ground truth producing the event tables.

It is the product's default data and the yardstick for model quality. Usage::

    from training.simulation import SimulationConfig, simulate
    result = simulate(SimulationConfig(n_customers=20_000, months=24))
    result.tables["invoices"]          # the 7 contract tables (features.schemas.TABLES)
    result.truth_customers             # hidden truth per customer
    result.truth_monthly               # hidden state as each month starts (before its draws)
    result.write(path); SimulationResult.read(path)

Every draw is a function of (seed, purpose, day, customer) (:mod:`training.simulation.streams`),
so a decision for one customer changes only that customer's history. Counterfactual runs
(same customers, same incomes/shocks/spending draws, another policy)::

    population = build_population(config)
    base = simulate(config, population=population)
    moved = simulate(config, population=population,
                     policy=CollectionPolicy().with_debit_days(new_days))

Design: :class:`PopulationState` (hidden per-customer arrays and the income calendar,
drawn once from ``seed``) + :class:`CollectionPolicy` (creditor debit day per customer,
arrangement monthly amounts, pay-later approval) + a day-stepping loop
(:func:`training.simulation.engine.run`) that is numpy over customers and open invoices.
Every purpose (income, shocks, spending, pay-later orders, payment choices, debit
outcomes, arrangements) has its own seeded random stream, and the income, shock, spending
and order streams draw a fixed number of values per day, so a policy change does not
change incomes, shocks or orders. See ``training/simulation/engine.py`` for the
conventions (reversed debits, collection costs, arrangements).

The names below load on first use: importing one light submodule (the CLI reads
``training.simulation.config`` as it starts) does not load the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.simulation.config import BEHAVIOURS, SimulationConfig
    from training.simulation.diagnostics import label_rates, settled_days, summary
    from training.simulation.engine import RawEvents, run
    from training.simulation.policy import (
        ArrangementAnswer,
        ArrangementRequest,
        BnplRequest,
        CollectionPolicy,
        accept_unless_at_agency,
        debt_over_five_months,
    )
    from training.simulation.population import PATTERNS, PopulationState, build_population
    from training.simulation.result import (
        SimulationResult,
        build_tables,
        build_truth,
        customers_changed,
        simulate,
    )

__all__ = [
    "BEHAVIOURS",
    "PATTERNS",
    "ArrangementAnswer",
    "ArrangementRequest",
    "BnplRequest",
    "CollectionPolicy",
    "PopulationState",
    "RawEvents",
    "SimulationConfig",
    "SimulationResult",
    "accept_unless_at_agency",
    "build_population",
    "build_tables",
    "build_truth",
    "customers_changed",
    "debt_over_five_months",
    "label_rates",
    "run",
    "settled_days",
    "simulate",
    "summary",
]

_SUBMODULE = {
    "BEHAVIOURS": "config",
    "SimulationConfig": "config",
    "label_rates": "diagnostics",
    "settled_days": "diagnostics",
    "summary": "diagnostics",
    "RawEvents": "engine",
    "run": "engine",
    "ArrangementAnswer": "policy",
    "ArrangementRequest": "policy",
    "BnplRequest": "policy",
    "CollectionPolicy": "policy",
    "accept_unless_at_agency": "policy",
    "debt_over_five_months": "policy",
    "PATTERNS": "population",
    "PopulationState": "population",
    "build_population": "population",
    "SimulationResult": "result",
    "build_tables": "result",
    "build_truth": "result",
    "customers_changed": "result",
    "simulate": "result",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its submodule on first use."""
    submodule = _SUBMODULE.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value
    return value

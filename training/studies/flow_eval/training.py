"""tijdig's levers for the flow evaluation, each built the way its own study builds it,
with every model trained on a separate training world (another population).

* The **training world**: another population (``train_seed``), the last 24 months of the
  evaluation world's period, as ``tijdig bnpl-eval`` and ``targeting-eval`` train (the
  legal tables start in 2024, so a world ending on the adoption day would be too short);
  none of the evaluation population's customers or events are in it. Its creditor varies
  plan sizes
  (:class:`~training.simulation.policy.VariedArrangementAmounts`, as ``tijdig plan-eval``
  trains), so the P(kept) model learns what a lower amount does. One bundle is trained on
  it (:func:`training.studies.plan_eval.train_bundle_on`: the early-warning model, the
  plan model and the pay-later policy) and the debit-failure model on its debits (as
  ``tijdig debit-eval`` fits it, the last two months for calibration).
* **Debit day** (``tijdig debit-eval``): suggestions as of the adoption day from the
  evaluation world's history before it (the same in every run), applied from the first
  month the pre-notification allows.
* **Plans** (``tijdig plan-eval``): :class:`~training.studies.plan_eval.TijdigPlanPolicy`
  with the bundle's plan model and policy, from the customer's observed events.
* **Pay-later** (``tijdig bnpl-eval``'s closed loop):
  :class:`~training.studies.bnpl_eval.policies.TijdigBnplPolicy` with the bundle's
  configured policy (its risk cut-off as configured; bnpl-eval picks the cut-off in force
  on its own evaluation world, which here would be the evaluation run's future).
* **Contact** (``tijdig targeting-eval``): the contact team calls the candidates with the
  highest calibrated probability first (``tijdig_risk``); the uplift ranking needs a
  randomised pilot and did worse than random in that study, so it is not used here.

No lever reads the simulator's hidden truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np

from features.events import EventArrays, to_day
from models.bundle import Bundle
from models.debit_date import DebitDatePolicy, suggest_debit_dates
from training.debit_failure import DebitFailureModel, build_debit_rows, fit_debit_failure
from training.simulation import (
    CollectionPolicy,
    PopulationState,
    SimulationConfig,
    SimulationResult,
    simulate,
)
from training.simulation.config import _add_months
from training.simulation.contact import ContactEffects
from training.simulation.policy import VariedArrangementAmounts
from training.studies.flow_eval.levers import Levers, effective_month, events_before

TRAIN_MONTHS = 24


def training_world(n_customers: int, train_seed: int, end: date) -> SimulationResult:
    """The training world (module doc): ``TRAIN_MONTHS`` months ending on ``end``."""
    config = SimulationConfig(
        n_customers=n_customers, months=TRAIN_MONTHS, seed=train_seed, end_date=end
    )
    policy = CollectionPolicy(
        arrangement_monthly=VariedArrangementAmounts(seed=train_seed),
        name="varied_plan_amounts",
    )
    return simulate(config, policy=policy)


def fit_debit_model(world: SimulationResult) -> DebitFailureModel:
    """The debit-failure model on every first debit of ``world`` (the last two months
    calibrate it), as ``tijdig debit-eval`` fits it."""
    events = EventArrays.from_frames(world.tables)
    _, end = world.config.period()
    rows = build_debit_rows(events, until=to_day(end))
    cal_from = to_day(_add_months(end, -2))
    return fit_debit_failure(
        rows.subset(rows.as_of < cal_from), rows.subset(rows.as_of >= cal_from)
    )


def suggested_debit_days(
    history: SimulationResult,
    population: PopulationState,
    adoption: date,
    model: DebitFailureModel,
    policy: DebitDatePolicy,
) -> tuple[np.ndarray, date]:
    """tijdig's debit day per customer (population order) from ``history``'s events before
    ``adoption``, and the month it applies from. Customers without events by then keep
    their day."""
    events = EventArrays.from_frames(events_before(history.tables, adoption))
    pos = {cid: i for i, cid in enumerate(events.customer_ids.tolist())}
    known = np.array([c in pos for c in population.customer_ids.tolist()])
    idx = np.array([pos[c] for c in population.customer_ids[known]], dtype=np.int64)
    current = np.zeros(events.n, np.int64)
    current[idx] = population.debit_day[known]  # the creditor knows its own current day
    suggestions = suggest_debit_dates(
        events, to_day(adoption), model, current_days=current, policy=policy
    )
    days = population.debit_day.astype(np.int64).copy()
    days[known] = np.array([s.suggested_day for s in suggestions], dtype=np.int64)[idx]
    return days, effective_month(adoption, policy.pre_notification_days)


def tijdig_levers(
    bundle: Bundle,
    debit_days: np.ndarray,
    debit_days_from: date,
    adoption: date,
    capacity_per_day: int,
    effects: ContactEffects | None = None,
) -> Levers:
    """The four levers from a trained ``bundle`` and the suggested debit days."""
    from models.plans import PlanPolicy
    from training.studies.bnpl_eval.policies import TijdigBnplPolicy
    from training.studies.plan_eval import TijdigPlanPolicy
    from training.studies.targeting_eval.policies import ScoreTargeting

    model = bundle.components.get("plan_kept")
    if model is None:
        raise ValueError("the bundle has no plan_kept component")
    plan_policy = PlanPolicy.from_dict(model.policy) if model.policy else PlanPolicy.default()

    def risk(X: np.ndarray, case: np.ndarray) -> np.ndarray:
        return bundle.predict_proba(X)

    return Levers(
        adoption=adoption,
        debit_days=debit_days,
        debit_days_from=debit_days_from,
        make_plans=lambda: TijdigPlanPolicy(model, plan_policy),
        make_pay_later=lambda: TijdigBnplPolicy(bundle.predict_proba, bundle.bnpl_policy),
        make_targeting=lambda: ScoreTargeting(risk, "tijdig_risk"),
        capacity_per_day=capacity_per_day,
        effects=effects or ContactEffects(),
        bundle=bundle,
    )


def build_levers(
    n_customers: int,
    train_seed: int,
    adoption: date,
    history: SimulationResult,
    population: PopulationState,
    capacity_per_day: int,
    *,
    bundle: Bundle | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[Levers, dict[str, Any]]:
    """Train on the training world (module doc) and build the levers; ``history`` is a
    run of the evaluation world (its events before ``adoption`` are every run's). With
    ``bundle`` given, only the debit model is trained. Returns the levers and what was
    trained (for the report)."""
    t0 = time.perf_counter()
    end = history.config.period()[1]
    log(f"training world: seed {train_seed}, {n_customers:,} customers, up to {end}")
    world = training_world(n_customers, train_seed, end)
    if bundle is None:
        from training.studies.plan_eval import train_bundle_on

        log("training the early-warning, plan and pay-later models")
        bundle = train_bundle_on(world)
    log("training the debit-failure model")
    debit_model = fit_debit_model(world)
    debit_policy = DebitDatePolicy()
    days, effective = suggested_debit_days(history, population, adoption, debit_model, debit_policy)
    changed = days != population.debit_day
    levers = tijdig_levers(bundle, days, effective, adoption, capacity_per_day)
    info = {
        "train_seed": train_seed,
        "train_period": [d.isoformat() for d in world.config.period()],
        "bundle": bundle.version,
        "bnpl_policy": bundle.bnpl_policy.version,
        "bnpl_risk_cutoff": bundle.bnpl_policy.risk_cutoff,
        "debit_model": debit_model.kind,
        "debit_days_from": effective.isoformat(),
        "debit_days_changed": int(changed.sum()),
        "debit_days_changed_share": float(changed.mean()),
        "targeting": "tijdig_risk",
        "capacity_per_business_day": capacity_per_day,
        "contact_effects": levers.effects.to_dict(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return levers, info

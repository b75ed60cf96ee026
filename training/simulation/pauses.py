"""Plan pauses in the simulator: the safety net a plan may carry (CCD2 art. 35).

A policy's :class:`~training.simulation.policy.ArrangementAnswer` may give a plan a pause
the customer can ask for (``pause_times`` times, up to ``pause_max_months`` months). A
customer whose income drops while such a plan runs (a job loss or an income cut, drawn on
the 1st of the month) asks for it with ``SimulationConfig.plan_pause_ask_rate`` instead of
letting the plan break. During the pause no instalment is due, so none is missed; after
it the instalments resume on the same day of the month and the plan's end moves by the
pause. The draw comes from the customer's own stream (``RNG_PAUSE``), so one customer's
pause never moves another customer's history.
"""

from __future__ import annotations

import numpy as np

from training.simulation.calendar import Calendar
from training.simulation.streams import DayDraws

#: the per-plan state the engine keeps for pauses (``arr`` columns)
PAUSE_COLUMNS = ("pause_months", "pauses_left", "pauses", "paused_on")


def pause_on_income_drop(
    arr: dict[str, np.ndarray],
    active: np.ndarray,
    dropped: np.ndarray,
    draws: DayDraws,
    ask_rate: float,
    calendar: Calendar,
    day: int,
) -> np.ndarray:
    """Pause the active plans (ids ``active``) of customers whose income ``dropped``
    (per customer) today and who ask, where the plan offers a pause not yet used up.
    Moves their due dates in ``arr``; returns the paused plans' ids."""
    if not len(active):
        return active
    may = dropped[arr["cust"][active]] & (arr["pauses_left"][active] > 0)
    a = active[may & (arr["pause_months"][active] > 0)]
    if not len(a):
        return a
    a = a[draws.uniform()[arr["cust"][a]] < ask_rate]
    arr["anchor"][a] = calendar.add_months(arr["anchor"][a], arr["pause_months"][a])
    arr["next_due"][a] = calendar.add_months(arr["anchor"][a], arr["k"][a])
    arr["pauses_left"][a] -= 1
    arr["pauses"][a] += 1
    arr["paused_on"][a] = day
    return a

"""Open collection cases: a claim at the collection agency or bailiff that is still unpaid.

A fact of the event history, not of a model: serving rows keep it beside the features,
the pay-later policy declines on it, and the pay-later evaluation replays it per snapshot.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from features.build import as_of_days
from features.events import STEP_CODES, EventArrays


def open_collection_cases(events: EventArrays, as_of: date | int | np.ndarray) -> np.ndarray:
    """Per customer (bool, ``events.n``): a claim at the agency or bailiff that is still
    unpaid at ``as_of`` (a date, or one day number per customer)."""
    return open_collection_case_counts(events, as_of) > 0


def open_collection_case_counts(events: EventArrays, as_of: date | int | np.ndarray) -> np.ndarray:
    """Per customer (int, ``events.n``): how many invoices are at the agency or bailiff and
    still unpaid at ``as_of`` (an invoice at both counts once)."""
    A = as_of_days(events, as_of)
    st, inv = events.steps, events.invoices
    a = A[st["cust"]]
    case = (st["step"] >= STEP_CODES["agency"]) & (st["day"] < a) & (st["invoice"] >= 0)
    case &= inv["settled_day"][np.clip(st["invoice"], 0, None)] >= a
    cases = np.unique(np.stack([st["cust"][case], st["invoice"][case]]), axis=1)
    return np.bincount(cases[0], minlength=events.n).astype(np.int64)

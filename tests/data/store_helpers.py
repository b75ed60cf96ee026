"""Assertions the event store tests share."""

from __future__ import annotations

import pandas as pd

from features.schemas import TABLES
from features.store import EventStore


def _in_read_order(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """The store's read order: customer, date, id."""
    _, pk, date_col = TABLES[table]
    keys = ["customer_id"] if pk == "customer_id" else ["customer_id", date_col, pk]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def row_counts(store: EventStore) -> dict[str, int]:
    """table -> rows stored."""
    return {t: store.count(t) for t in TABLES}


def assert_frames_equal(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    """``got`` (read from the store) holds every table of ``want``, in read order, and
    no rows in the tables ``want`` leaves out."""
    assert set(got) == set(TABLES)
    for table in TABLES:
        if table not in want:
            assert len(got[table]) == 0, table
            continue
        pd.testing.assert_frame_equal(got[table], _in_read_order(table, want[table]), obj=table)

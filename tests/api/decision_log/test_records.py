"""The decision record as stored: ids, the JSON columns, the direct insert."""

from __future__ import annotations

import json
from dataclasses import replace

from service.decision_log import new_decision_id
from tests.api.decision_log.support import row


def test_decision_ids_are_uuid7_and_sort_by_creation_time():
    """Time-ordered ids keep the log's key index append-only (and exports sort by time)."""
    import time
    import uuid as uuid_module

    from service.decision_log import new_decision_id

    ids = []
    for _ in range(5):
        ids.append(new_decision_id())
        time.sleep(0.002)  # ids within one millisecond are random among themselves
    parsed = [uuid_module.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid_module.RFC_4122 for u in parsed)
    assert ids == sorted(ids)
    millis = parsed[0].int >> 80
    assert abs(millis - time.time_ns() // 1_000_000) < 60_000
    assert len(set(new_decision_id() for _ in range(10_000))) == 10_000


def test_the_sqlite_writer_stores_rows_exactly_as_sqlalchemy_would(log):
    """The writer's direct DB-API insert (speed) must not change a stored byte."""
    import sqlite3

    from service.decision_log import decisions

    ours = replace(row("C\u00e9"), inputs={"note": "caf\u00e9", "n": [1, 2]})
    theirs = replace(ours, decision_id=new_decision_id())
    log.write([ours])
    with log.engine.begin() as conn:
        conn.execute(decisions.insert(), [theirs.row()])
    con = sqlite3.connect(log.engine.url.database)
    raw = {r[0]: r[1:] for r in con.execute("SELECT * FROM decisions")}
    con.close()
    assert raw[ours.decision_id] == raw[theirs.decision_id]
    assert log.get(ours.decision_id) == ours


def test_the_json_columns_hold_valid_json_on_both_back_ends(any_log):
    """NaN is written as null (json.dumps wrote the token NaN, which is not JSON and which
    PostgreSQL refuses); numpy scalars and floats come back as they went in."""
    import dataclasses

    import numpy as np
    import sqlalchemy as sa

    from service.decision_log import decisions

    d = dataclasses.replace(
        row("C-json"),
        outputs={"probability": np.float64(0.1 + 0.2), "limit": float("nan"), "n": np.int64(3)},
    )
    any_log.write([d])
    back = any_log.get(d.decision_id)
    assert back.outputs == {"probability": 0.30000000000000004, "limit": None, "n": 3}
    with any_log.engine.connect() as conn:
        text = conn.execute(
            sa.select(sa.cast(decisions.c.outputs, sa.Text)).where(
                decisions.c.decision_id == d.decision_id
            )
        ).scalar_one()

    def no_constants(token: str) -> None:
        raise AssertionError(f"not JSON: {token}")

    json.loads(text, parse_constant=no_constants)

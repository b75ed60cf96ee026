"""The decline memory's read (before every pay-later decision) is a range scan of one
customer's rows, also in a log created before its index: never a scan of the client's."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
import sqlalchemy as sa

from service.decision_log import DecisionLog, decisions
from service.decision_log.queries import PAY_LATER_DECISIONS
from tests.api.decision_log.support import row
from tests.api.decision_log.test_client_column import _database


def _pay_later(customer_id: str, day: date):
    return replace(row(customer_id), kind="bnpl_decision", as_of=day, outputs={"offer": True})


def test_the_memory_read_searches_the_customers_rows_by_index(log):
    log.write([_pay_later(f"C{i}", date(2026, 1, 1 + i % 28)) for i in range(50)])
    plan = log.engine.connect().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + str(PAY_LATER_DECISIONS.compile(dialect=log.engine.dialect)),
        ("C1", "default", "bnpl_decision", "2025-06-01", "2026-02-01"),
    )
    details = " ".join(str(r[-1]) for r in plan)
    assert "USING INDEX ix_decisions_pay_later" in details, details
    got = log.pay_later_decisions("C1", "default", date(2025, 6, 1), date(2026, 2, 1))
    assert got == [(date(2026, 1, 2), {"offer": True})]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_log_from_before_the_index_gets_it_on_open(kind, tmp_path):
    with _database(kind, tmp_path) as url:
        old_metadata = sa.MetaData()
        sa.Table("decisions", old_metadata, *(c.copy() for c in decisions.columns))
        engine = sa.create_engine(url)
        old_metadata.create_all(engine)
        engine.dispose()
        for _ in range(2):  # and a second open finds it there
            lg = DecisionLog(url).open()
            try:
                names = {i["name"] for i in sa.inspect(lg.engine).get_indexes("decisions")}
                assert "ix_decisions_pay_later" in names
                lg.write([_pay_later("C-old", date(2026, 1, 5))])
                day = date(2026, 1, 6)
                assert len(lg.pay_later_decisions("C-old", "default", date(2025, 1, 1), day)) >= 1
            finally:
                lg.close()

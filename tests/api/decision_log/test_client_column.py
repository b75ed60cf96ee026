"""A decision log created before tenants gets its ``client`` column when it is opened."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import pytest
import sqlalchemy as sa

from service.decision_log import DecisionLog, decisions
from tests.api.decision_log.support import row


@contextmanager
def _database(kind, tmp_path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("dlogold") as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_old_log_is_migrated_on_open_and_its_rows_belong_to_the_default_client(kind, tmp_path):
    with _database(kind, tmp_path) as url:
        old_metadata = sa.MetaData()
        old_table = sa.Table(
            "decisions", old_metadata, *(c.copy() for c in decisions.columns if c.name != "client")
        )
        engine = sa.create_engine(url)
        old_metadata.create_all(engine)
        before = row("C-old")
        with engine.begin() as conn:
            conn.execute(
                old_table.insert(), [{k: v for k, v in before.row().items() if k != "client"}]
            )
        engine.dispose()

        for _ in range(2):  # and a second open finds the column already there
            lg = DecisionLog(url).open()
            try:
                assert lg.get(before.decision_id).client == "default"
                new = replace(row("C-new"), client="shop-a")
                lg.write([new])
                assert lg.get(new.decision_id).client == "shop-a"
            finally:
                lg.close()

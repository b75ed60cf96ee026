"""Open decision logs for the decision log's tests: SQLite, and each back end."""

from __future__ import annotations

import pytest

from service.decision_log import DecisionLog


@pytest.fixture
def log(tmp_path):
    lg = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}", batch_size=8).open()
    yield lg
    lg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_log(request, tmp_path):
    """An open decision log on each back end (PostgreSQL: a fresh database, dropped after;
    skipped with the reason when no server answers)."""
    if request.param == "sqlite":
        lg = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}").open()
        yield lg
        lg.close()
        return
    from tests.fixtures.backends import fresh_postgres_database

    with fresh_postgres_database("dlog") as url:
        lg = DecisionLog(url).open()
        try:
            yield lg
        finally:
            lg.close()

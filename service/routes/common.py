"""What every scoring route does the same way: read customers' events, log decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from fastapi import Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from features.events import EventArrays
from features.store import EventStore, StoreUnavailable
from models.bundle import Bundle
from models.serving import ServingRows, ServingState
from service.decision_log import Decision, DecisionLog, DecisionLogUnavailable
from service.errors import ProblemError, ProblemType
from service.settings import ServiceSettings

DECISION_LOG_TIMEOUT_S = 5.0


async def read_events(store: EventStore, ids: Sequence[str]) -> EventArrays:
    """The events of ``ids`` from the store; 404 problem naming every unknown id.

    On SQLite the indexed read (~0.3 ms) runs inline: cheaper than a thread hop. On
    PostgreSQL a network round trip would stall the event loop, so it runs in the pool.
    """
    try:
        if getattr(store, "dialect", "sqlite") == "sqlite":
            columns = store.read_columns(list(ids))
        else:
            columns = await run_in_threadpool(store.read_columns, list(ids))
    except Exception as exc:
        raise _store_unavailable(exc) from exc
    return _known_events(columns, ids)


async def serving_state(
    serving: ServingRows, bundle: Bundle, ids: Sequence[str], as_of: date
) -> ServingState:
    """Features, probabilities and stored reasons of ``ids`` (request order): one read of
    their materialised serving rows; customers without a valid row are computed from
    their events (404 problem naming every unknown id). Inline on SQLite, in the
    threadpool on PostgreSQL, as :func:`read_events`."""
    store = serving.store

    def read_versioned(misses: Sequence[str]) -> tuple[EventArrays, dict[str, int]]:
        try:
            columns, versions = store.read_columns_versioned(list(misses))
        except Exception as exc:
            raise _store_unavailable(exc) from exc
        return _known_events(columns, misses, asked=len(ids)), versions

    def run() -> ServingState:
        try:
            return serving.state(bundle, ids, as_of, read_events=read_versioned)
        except StoreUnavailable as exc:
            raise _store_unavailable(exc) from exc

    if getattr(store, "dialect", "sqlite") == "sqlite":
        return run()
    return await run_in_threadpool(run)


def json_response(model: BaseModel) -> Response:
    """``model`` as the JSON body. The route's ``response_model`` still documents it, but
    FastAPI does not validate and serialise it a second time: the model was built and
    validated in the route (that second pass was ~10 % of a served request's CPU)."""
    return Response(model.model_dump_json(), media_type="application/json")


def _store_unavailable(exc: Exception) -> ProblemError:
    """The problem for a failed read: a 503 when the store is down or locked (a retry can
    help), a 422 when the database refused a value of the request (a retry cannot)."""
    if _refused_value(exc):
        return ProblemError(
            422,
            ProblemType.VALIDATION,
            "Request is not valid",
            "the event store refused a value of the request "
            f"({_data_error_name(exc)}); nothing was decided",
            errors=[
                {
                    "loc": ["body"],
                    "msg": "a value the event store cannot hold (e.g. a control character)",
                    "type": "value_error",
                }
            ],
        )
    return ProblemError(
        503,
        ProblemType.STORE_UNAVAILABLE,
        "Event store unavailable",
        f"the event store could not be read ({type(exc).__name__})",
    )


def _data_errors(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes that are a DB-API ``DataError`` (PEP 249: a value the database
    cannot take, e.g. psycopg's "PostgreSQL text fields cannot contain NUL"), also when
    wrapped by SQLAlchemy or in :class:`StoreUnavailable`."""
    found: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ == "DataError" for cls in type(current).__mro__):
            found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _refused_value(exc: BaseException) -> bool:
    return bool(_data_errors(exc))


def _data_error_name(exc: BaseException) -> str:
    return type(_data_errors(exc)[-1]).__name__


def _known_events(
    columns: dict[str, dict[str, Any]], ids: Sequence[str], asked: int | None = None
) -> EventArrays:
    """The events of ``ids``, or the 404 naming every unknown one. ``asked``: how many ids
    the request held, when ``ids`` are only those without a serving row."""
    known = set(columns["customers"]["customer_id"].tolist())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ProblemError(
            404,
            ProblemType.UNKNOWN_CUSTOMER,
            "Unknown customer" if len(unknown) == 1 else "Unknown customers",
            f"{len(unknown)} of {asked or len(ids)} customer ids are not in the event store; "
            "nothing was decided",
            unknown_customer_ids=unknown,
        )
    return EventArrays.from_columns(columns, list(ids))


async def log_decisions(
    decision_log: DecisionLog, rows: list[Decision], settings: ServiceSettings
) -> dict[str, tuple[str, str]]:
    """Write ``rows`` to the decision log (awaiting the commit when configured, and always
    for rows bound to an idempotency key); returns :meth:`DecisionLog.log`'s rows not
    logged because a concurrent call holds their key (id -> the binding that holds).

    No answer without a log entry: a log that cannot take them is a 503.
    """
    try:
        return await decision_log.log(
            rows, wait=settings.decision_log_wait_for_commit, timeout_s=DECISION_LOG_TIMEOUT_S
        )
    except (DecisionLogUnavailable, TimeoutError) as exc:
        keyed = any(d.idempotency is not None for d in rows)
        raise decision_log_unavailable(
            "the decision could not be logged, so none is given; retry later"
            # the same key replays the decision should its commit have gone through after all
            + (" with the same Idempotency-Key" if keyed else "")
        ) from exc


def decision_log_unavailable(detail: str) -> ProblemError:
    """The 503 of a decision log that cannot read or write now (locked, down): a retry
    can help. ``detail`` must not carry the database's own message (SQL, paths)."""
    return ProblemError(
        503, ProblemType.DECISION_LOG_UNAVAILABLE, "Decision log unavailable", detail
    )

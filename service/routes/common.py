"""What every decision route does the same way: call into ``models/`` with the store's
errors translated once, resolve ``as_of``, build and write decision-log rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
from fastapi import Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from features.store import StoreUnavailable
from models.serving import ServingRows, UnknownCustomers
from service.decision_log import (
    Decision,
    DecisionLog,
    DecisionLogUnavailable,
    IdempotencyBinding,
    feature_dict,
)
from service.errors import ProblemError, ProblemType
from service.schemas import today
from service.settings import DEFAULT_CLIENT, ServiceSettings

DECISION_LOG_TIMEOUT_S = 5.0

P = ParamSpec("P")
T = TypeVar("T")


async def from_store(
    call: Callable[Concatenate[ServingRows, P], T],
    serving: ServingRows,
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``call(serving, ...)``: a ``models/`` entry point that reads the event store through
    ``serving``. The one place a store error becomes a problem: unknown customers a 404
    naming every one, a failed read a 503 (or a 422 when the database refused a value).

    On SQLite the indexed read (~0.3 ms) runs inline with the short CPU work after it:
    cheaper than a thread hop. On PostgreSQL a network round trip would stall the event
    loop, so the call runs in the threadpool.
    """
    try:
        if serving.reads_locally:
            return call(serving, *args, **kwargs)
        return await run_in_threadpool(call, serving, *args, **kwargs)
    except UnknownCustomers as exc:
        raise _unknown_customers(exc) from exc
    except StoreUnavailable as exc:
        raise _store_unavailable(exc) from exc


def resolve_as_of(requested: date | None, settings: ServiceSettings) -> date:
    """The day a request is decided as of: the one it asked for, else the configured
    default, else today (Europe/Amsterdam)."""
    return requested or settings.default_as_of or today()


@dataclass(frozen=True)
class DecisionRecord:
    """What the decision-log rows of one request share, and the one constructor of a row.

    Every row names the request (``inputs["request_id"]``, one per request, so a batch's
    rows can be found together), its model and policy versions, the feature row that was
    decided on (by name) and the response item it answered with.
    """

    kind: str
    as_of: date
    model_version: str
    policy_version: str
    feature_names: Sequence[str] = ()
    client: str = DEFAULT_CLIENT  # the tenant whose API key asked (ScoringContext.client)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(
        self,
        decision_id: str,
        customer_id: str,
        *,
        inputs: dict[str, Any],
        outputs: BaseModel,
        exclude: set[str],
        features: np.ndarray | None = None,
        idempotency: IdempotencyBinding | None = None,
    ) -> Decision:
        """The row of one decision: ``outputs`` is the response item without the fields in
        ``exclude`` (the ids the row holds anyway); ``features`` the row in
        ``feature_names`` order, None when no features were used."""
        return Decision(
            decision_id=decision_id,
            created_at=self.created_at,
            kind=self.kind,
            customer_id=customer_id,
            as_of=self.as_of,
            model_version=self.model_version,
            policy_version=self.policy_version,
            inputs={"request_id": self.request_id, **inputs},
            features={}
            if features is None
            else feature_dict(self.feature_names, features.tolist()),
            outputs=outputs.model_dump(mode="json", exclude=exclude),
            client=self.client,
            idempotency=idempotency,
        )


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
        f"the event store could not be read ({_driver_error_name(exc)})",
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


def _driver_error_name(exc: BaseException) -> str:
    """The name of the error the database driver raised (what :class:`StoreUnavailable`
    wraps), never its message: that may hold SQL or paths."""
    cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else None
    return type(cause if cause is not None else exc).__name__


def _unknown_customers(exc: UnknownCustomers) -> ProblemError:
    return ProblemError(
        404,
        ProblemType.UNKNOWN_CUSTOMER,
        "Unknown customer" if len(exc.unknown) == 1 else "Unknown customers",
        f"{len(exc.unknown)} of {exc.asked} customer ids are not in the event store; "
        "nothing was decided",
        unknown_customer_ids=exc.unknown,
    )


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

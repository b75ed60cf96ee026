"""What the decision log stores: the decision record, its tables and its ids.

Each risk answer becomes one row: ``decision_id`` (a time-ordered UUIDv7), ``created_at``
(UTC), ``kind``, ``client`` (the tenant whose API key asked), ``customer_id``, ``as_of``, ``model_version``, ``policy_version``, the
request inputs, the feature vector (name -> value) and the outputs (probability, band,
flag, reasons, action).
With the bundle named by ``model_version`` and its policy, a decision can be replayed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

#: The client of decisions logged before tenants (and of keys configured without one).
DEFAULT_CLIENT = "default"

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
    # The tenant whose API key asked; a log from before tenants gets the column on open
    # (see add_client_column), its rows belonging to the client "default".
    sa.Column(
        "client",
        sa.String(64),
        nullable=False,
        server_default=DEFAULT_CLIENT,
        index=True,
    ),
)


#: The decline memory's read (``queries.PAY_LATER_DECISIONS``, before every pay-later
#: decision): one customer's rows of one client and kind in a range of days, as a range
#: scan of this index. Without it SQLite had two single-column indexes with an equality
#: and no statistics, and took the one created last: SQLAlchemy creates a table's indexes
#: in set order (PYTHONHASHSEED), so about half of all new logs planned the read on
#: ``ix_decisions_client`` and scanned every decision of the client, a cost that grew
#: with the log (~2 ms of CPU per pay-later request at 2,300 logged decisions).
PAY_LATER_INDEX = sa.Index(
    "ix_decisions_pay_later",
    decisions.c.customer_id,
    decisions.c.client,
    decisions.c.kind,
    decisions.c.as_of,
)


def add_pay_later_index(engine: sa.Engine) -> None:
    """Give a log created before :data:`PAY_LATER_INDEX` the index (``IF NOT EXISTS``:
    several workers may open the log at once)."""
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateIndex(PAY_LATER_INDEX, if_not_exists=True))


# A human reviewer's outcome on an automated decision (CCD2 right to human intervention,
# GDPR art. 22(3)); a decision keeps every review, newest last.
reviews = sa.Table(
    "decision_reviews",
    metadata,
    sa.Column("review_id", sa.String(36), primary_key=True),
    sa.Column("decision_id", sa.String(36), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# Idempotency keys of retried calls (a checkout retries on a timeout): the same key with
# the same request returns the decision already given; with another request it is refused.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("decision_id", sa.String(36), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


@dataclass(eq=False)
class IdempotencyBinding:
    """The idempotency key a decision is given under, bound in the decision's own
    transaction: the key row is inserted first (conflict: do nothing); only when it was
    inserted is the decision logged. When a concurrent call holds the key, the commit
    leaves the decision out of the log and sets ``held_by`` to the binding that holds,
    (request hash, decision id) — committed, since a binding commits with its decision.

    ``scope`` is whose key it is (the checkout route uses one scope per API key).
    """

    scope: str
    key: str
    request_hash: str
    #: Set by the commit: the binding that holds the key when it was not this decision's.
    held_by: tuple[str, str] | None = None


@dataclass(frozen=True)
class Decision:
    """One logged decision (a row of the ``decisions`` table), optionally bound to an
    idempotency key (not part of the row, see :class:`IdempotencyBinding`)."""

    decision_id: str
    created_at: datetime
    kind: str
    customer_id: str
    as_of: date
    model_version: str
    policy_version: str
    inputs: dict[str, Any]
    features: dict[str, float | None]
    outputs: dict[str, Any]
    client: str = DEFAULT_CLIENT
    idempotency: IdempotencyBinding | None = field(default=None, compare=False, repr=False)

    def row(self) -> dict[str, Any]:
        """The ``decisions`` table row (dates as dates: the column types convert them)."""
        return {
            "decision_id": self.decision_id,
            "created_at": self.created_at,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "as_of": self.as_of,
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            "inputs": self.inputs,
            "features": self.features,
            "outputs": self.outputs,
            "client": self.client,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO strings): the export and the API."""
        return {
            **self.row(),
            "created_at": self.created_at.isoformat(),
            "as_of": self.as_of.isoformat(),
        }


def as_utc(stored: datetime) -> datetime:
    """A timestamp read back, as UTC: SQLite drops the zone; the log always stores UTC."""
    return stored if stored.tzinfo is not None else stored.replace(tzinfo=UTC)


def decision_from_row(row: Any) -> Decision:
    """The :class:`Decision` a ``decisions`` row read back holds (UTC restored)."""
    return Decision(
        decision_id=row["decision_id"],
        created_at=as_utc(row["created_at"]),
        kind=row["kind"],
        customer_id=row["customer_id"],
        as_of=row["as_of"],
        model_version=row["model_version"],
        policy_version=row["policy_version"],
        inputs=row["inputs"],
        features=row["features"],
        outputs=row["outputs"],
        client=row["client"],
    )


def add_client_column(engine: sa.Engine) -> None:
    """Give a decision log created before tenants its ``client`` column (existing rows:
    ``"default"``) and its index. Safe when several workers open the log at once: a
    worker that loses the race finds the column on its second look."""
    for attempt in range(2):
        if "client" in {c["name"] for c in sa.inspect(engine).get_columns(decisions.name)}:
            return
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"ALTER TABLE {decisions.name} ADD COLUMN client VARCHAR(64) "
                    f"NOT NULL DEFAULT '{DEFAULT_CLIENT}'"
                )
                conn.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS ix_{decisions.name}_client "
                    f"ON {decisions.name} (client)"
                )
        except sa.exc.DBAPIError:
            if attempt:
                raise


def new_decision_id() -> str:
    """A UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then 74 random bits.

    Time-ordered, so every new row lands at the right edge of the primary-key index
    instead of on a random page: a one-row commit on a 200,000-row SQLite log took
    ~230 µs of CPU instead of ~270-290 µs with uuid4, and the gap grows with the log (a
    random key's page is less and less often in the cache). Ids also sort by time, which
    an auditor paging through an export appreciates. Still unguessable: 74 bits from
    ``os.urandom``. (Python 3.14 has ``uuid.uuid7``; this is the same layout.)
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are used
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76  # version
        | (rand >> 68) << 64  # rand_a: 12 bits
        | 0b10 << 62  # variant
        | rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b: 62 bits
    )
    return str(uuid.UUID(int=value))


def feature_dict(names: Sequence[str], values: Sequence[float | None]) -> dict[str, float | None]:
    """Feature vector as JSON-safe name -> value (NaN, i.e. unknown, becomes None).
    ``values`` are Python floats (``ndarray.tolist()``); ``v != v`` is the NaN test
    without a call (5 µs for 84 features instead of 9 µs, once per logged decision)."""
    return {n: (None if v != v else v) for n, v in zip(names, values, strict=True)}

"""Training sets: point-in-time snapshots at many ``as_of`` dates, split out of time.

A snapshot is (customer, ``as_of``) → features known before ``as_of`` and the label
observed in the horizon after it. Snapshots are split by time into train, calibration
and validation with a purge gap of one horizon between the segments, so no training
label window overlaps a later segment's period (a true out-of-time evaluation).

Memory: the feature matrix is the one large thing here (customers × dates × features,
float32: :data:`SNAPSHOT_DTYPE`). It is allocated once and filled in place, its features computed one partition
of customers at a time (so the feature computation's per-event temporaries are those of
one partition), and the out-of-time segments are views of it, not copies.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import pandas as pd

from features.build import FEATURE_NAMES, build_features
from features.events import (
    NEVER,
    PRODUCT_CODES,
    STEP_CODES,
    EventArrays,
    Table,
    from_day,
    to_day,
)
from features.labels import LabelConfig, make_labels
from features.schemas import parse_date_strings
from training.rejected import EXAMPLES, RowsRejected, TrainingDataRejected, shown

#: Customers per partition when building snapshot features. The feature computation
#: allocates a few dozen arrays per event row; a partition of this size keeps them to a
#: few hundred MB whatever the population, and each slice still costs a pass over all
#: events, so smaller partitions only add passes.
PARTITION_CUSTOMERS = 50_000

#: The training matrix's dtype: float32 halves the one large allocation of training (at
#: 1,000,000 customers ~18 M rows x 84 features: 6 GB instead of 12). Serving computes
#: in float64, and a float64 value and its float32 rounding fall on the same side of every
#: split, exact ties aside: LightGBM puts thresholds midway between distinct training
#: values, and those are float32 values here.
SNAPSHOT_DTYPE = np.float32

#: The tables of :class:`EventArrays` (every field but the ids), read off the class.
TABLES = tuple(f.name for f in fields(EventArrays) if f.name != "customer_ids")


@dataclass
class Snapshots:
    """Stacked snapshots: one row per eligible (customer, as_of)."""

    X: np.ndarray
    y: np.ndarray
    customer: np.ndarray  # batch position of the customer in the EventArrays
    as_of: np.ndarray  # day number
    feature_names: tuple[str, ...] = FEATURE_NAMES
    #: where the labels come from: "events" (tijdig's own definition at monthly dates) or
    #: "external labels" (``tijdig train --labels``); error messages advise accordingly
    source: str = "events"

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> Snapshots:
        """The rows of a boolean ``mask``: views when they are one contiguous run.

        Snapshots are stacked date by date, so a segment of dates (the out-of-time split)
        is one run of rows and costs no copy of the feature matrix.
        """
        rows = np.flatnonzero(mask)
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:
            take: slice | np.ndarray = slice(int(rows[0]), int(rows[-1]) + 1)
        else:
            take = mask
        return Snapshots(
            self.X[take],
            self.y[take],
            self.customer[take],
            self.as_of[take],
            self.feature_names,
            self.source,
        )

    def fingerprint(self) -> str:
        """A short hash of the exact training data (features, labels, dates).

        Hashes the arrays' buffers in place (``tobytes`` would copy the feature matrix).
        """
        h = hashlib.sha256()
        for arr in (self.X, self.y, self.customer, self.as_of):
            h.update(np.ascontiguousarray(arr).data)
        return h.hexdigest()[:16]


def monthly_as_of_dates(
    events: EventArrays, config: LabelConfig, warmup_months: int = 6
) -> list[date]:
    """First-of-month dates from ``warmup_months`` after the first event until the last
    date whose whole label horizon is observed."""
    days = [events.invoices["issue_day"], events.payments["day"], events.income["day"]]
    known = np.concatenate([d[d < NEVER] for d in days])
    if known.size == 0:
        raise TrainingDataRejected("no events: cannot place snapshot dates; ingest first")
    return monthly_dates_between(int(known.min()), int(known.max()), config, warmup_months)


def monthly_dates_between(
    first_day: int, last_day: int, config: LabelConfig, warmup_months: int = 6
) -> list[date]:
    """:func:`monthly_as_of_dates` of a history whose invoices, payments and income run from
    ``first_day`` to ``last_day`` (days since 1970-01-01)."""
    first = from_day(first_day)
    start = (pd.Timestamp(first).to_period("M") + warmup_months).to_timestamp().date()
    latest = from_day(last_day - config.horizon_days)
    dates = pd.date_range(start, latest, freq="MS")
    return [d.date() for d in dates]


def build_snapshots(
    events: EventArrays,
    as_of_dates: Sequence[date],
    config: LabelConfig = LabelConfig(),
    progress: Callable[[int, int], None] | None = None,
    partition_customers: int = PARTITION_CUSTOMERS,
) -> Snapshots:
    """Features and labels for every eligible customer at each date.

    Rows are stacked date by date, customers in batch order within a date. The labels
    (cheap) come first and fix where each date's rows go; the features are then written
    into their place one partition of ``partition_customers`` at a time (a customer's
    features depend on their own events only). ``progress(done, total)`` counts
    partitions.
    """
    labels = [make_labels(events, as_of, config) for as_of in as_of_dates]
    members = [np.flatnonzero(lab.eligible) for lab in labels]
    starts = np.cumsum([0, *(m.size for m in members)])
    X = np.empty((int(starts[-1]), len(FEATURE_NAMES)), dtype=SNAPSHOT_DTYPE)
    total = -(-events.n // partition_customers)
    for done, (lo, hi, part) in enumerate(customer_partitions(events, partition_customers), 1):
        for k, as_of in enumerate(as_of_dates):
            first, last = starts[k] + np.searchsorted(members[k], [lo, hi])
            X[first:last] = build_features(part, as_of)[labels[k].eligible[lo:hi]]
        if progress:
            progress(done, total)
    return Snapshots(
        X=X,
        y=np.concatenate([lab.y[m] for lab, m in zip(labels, members, strict=True)]),
        customer=np.concatenate(members).astype(np.int64),
        as_of=np.repeat([to_day(d) for d in as_of_dates], np.diff(starts)).astype(np.int64),
    )


def customer_subset(events: EventArrays, customers: np.ndarray) -> EventArrays:
    """The customers at sorted, distinct positions ``customers`` with their events,
    renumbered from 0 in that order.

    Invoice references (payments, collection steps) never cross customers, so they are
    renumbered within the subset and each customer's features are those of the whole batch.
    """
    customers = np.asarray(customers, dtype=np.int64)
    # one spare slot at the end: events of no customer (cust -1) index it and are dropped
    member = np.zeros(events.n + 1, dtype=bool)
    member[customers] = True
    position = np.cumsum(member[:-1]) - 1  # old customer position -> new

    def take(table: Table) -> tuple[dict[str, np.ndarray], np.ndarray]:
        keep = member[table["cust"]]
        cols = {name: col[keep] for name, col in table.cols.items()}
        cols["cust"] = position[cols["cust"]]
        return cols, keep

    tables = {name: take(getattr(events, name)) for name in TABLES}
    renumber = np.cumsum(tables["invoices"][1]) - 1  # invoice row -> row within the subset
    for name in ("payments", "steps"):
        ref = tables[name][0]["invoice"]
        tables[name][0]["invoice"] = np.where(ref >= 0, renumber[np.maximum(ref, 0)], -1)
    return EventArrays(
        events.customer_ids[customers],
        **{name: Table(cols) for name, (cols, _) in tables.items()},
    )


def customer_slice(events: EventArrays, start: int, stop: int) -> EventArrays:
    """Customers ``start:stop`` of ``events`` with their events, renumbered from 0."""
    return customer_subset(events, np.arange(start, stop))


def customer_partitions(
    events: EventArrays, size: int = PARTITION_CUSTOMERS
) -> Iterator[tuple[int, int, EventArrays]]:
    """``(start, stop, slice)`` for consecutive partitions of at most ``size`` customers.

    For computations whose per-event temporaries would not fit for everyone at once:
    a customer's point-in-time features depend on their own events only.
    """
    for start in range(0, events.n, size):
        stop = min(start + size, events.n)
        yield start, stop, customer_slice(events, start, stop)


def concat_events(parts: Sequence[EventArrays]) -> EventArrays:
    """One batch from batches of distinct customers, in order (the inverse of slicing).

    Customer positions and invoice references of each part are shifted by the customers
    and invoices of the parts before it.
    """
    if not parts:
        return EventArrays.from_frames({})
    customers = np.cumsum([0, *(p.n for p in parts[:-1])])
    invoices = np.cumsum([0, *(len(p.invoices) for p in parts[:-1])])

    def join(name: str) -> Table:
        tables = [getattr(p, name) for p in parts]
        cols = {}
        for col in tables[0].cols:
            pieces = [t[col] for t in tables]
            if col == "cust":
                pieces = [x + o for x, o in zip(pieces, customers, strict=True)]
            elif col == "invoice":
                pieces = [np.where(x >= 0, x + o, x) for x, o in zip(pieces, invoices, strict=True)]
            cols[col] = np.concatenate(pieces)
        return Table(cols)

    return EventArrays(
        np.concatenate([p.customer_ids for p in parts]),
        **{name: join(name) for name in TABLES},
    )


class ExternalLabelsRejected(RowsRejected):
    """External labels that cannot be used as they are (``tijdig train --labels``)."""

    what = "external labels"


def _examples(rows: np.ndarray, values: pd.Series | None = None) -> str:
    """``"rows 3, 7 (values '2026-01-01T10:00', ...)"`` for the first few ``rows``."""
    head = rows[:EXAMPLES].tolist()
    more = f" and {rows.size - len(head)} more" if rows.size > len(head) else ""
    text = f"row{'s' if rows.size > 1 else ''} {', '.join(map(str, head))}{more}"
    if values is not None:
        text += f" (value{'s' if len(head) > 1 else ''} {', '.join(shown(values.iat[r]) for r in head)})"
    return text


def _label_days(as_of: pd.Series) -> tuple[np.ndarray, list[str]]:
    """The ``as_of`` column as calendar days (``datetime64[ns]`` at midnight), strictly.

    Text is read as ingest reads it (:func:`features.schemas.parse_date_strings`: ISO
    ``YYYY-MM-DD``, an offset converted to UTC); date and timestamp values are taken as
    they are, time-zone aware ones converted to UTC. What is not then a calendar day (a
    time of day, an offset other than UTC that moves midnight, a missing or unreadable
    value) is a problem: a label date is never shifted or dropped.
    """
    values = as_of.reset_index(drop=True)
    problems = []
    unreadable = np.zeros(len(values), dtype=bool)
    parsed = parse_date_strings(values)
    if parsed is not None:
        stamps, unreadable = parsed
    else:
        stamps = values
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(stamps.dtype):
        # dates (Parquet date32), timestamps, or not dates at all (numbers, booleans)
        vals = stamps.to_numpy(dtype=object, copy=True)
        datelike = np.fromiter(
            (isinstance(v, (date, np.datetime64)) for v in vals), dtype=bool, count=len(vals)
        )
        unreadable = unreadable | (~datelike & ~pd.isna(vals))
        vals[~datelike] = None
        stamps = pd.to_datetime(pd.Series(vals), utc=True, errors="coerce").dt.tz_localize(None)
    days = stamps.to_numpy(dtype="datetime64[ns]")
    unreadable = unreadable | (np.isnat(days) & ~pd.isna(values.to_numpy(dtype=object)))
    missing = np.isnat(days) & ~unreadable
    timed = ~np.isnat(days) & (days != days.astype("datetime64[D]"))
    if unreadable.any():
        problems.append(
            f"as_of is not a date written YYYY-MM-DD (ISO 8601) in {_examples(np.flatnonzero(unreadable), values)}"
        )
    if missing.any():
        problems.append(f"as_of is missing in {_examples(np.flatnonzero(missing))}")
    if timed.any():
        problems.append(
            "as_of must be a calendar day, without a time of day or an offset other than UTC"
            f" (converted to UTC it falls at a time of day), in {_examples(np.flatnonzero(timed), values)}"
        )
    return days, problems


def snapshots_from_external_labels(
    events: EventArrays,
    labels: pd.DataFrame,
    progress: Callable[[int, int], None] | None = None,
) -> Snapshots:
    """Snapshots for externally supplied targets: columns ``customer_id``, ``as_of``, ``label``
    (``progress(done, total)`` per label date).

    Data scientists bring their own target per (customer, as_of); features are still
    computed point in time by the one feature definition. The labels are checked first,
    every row: an ``as_of`` that is not a calendar day (see :func:`_label_days`), a
    (customer, as_of) pair given more than once, a label other than 0/1 or a customer
    without events raises :class:`ExternalLabelsRejected` naming example rows; no row is
    dropped or moved to another day.
    """
    missing = {"customer_id", "as_of", "label"} - set(labels.columns)
    if missing:
        raise ExternalLabelsRejected(
            [f"external labels need columns customer_id, as_of, label; missing {sorted(missing)}"]
        )
    labels = labels.reset_index(drop=True)
    position = {cid: i for i, cid in enumerate(events.customer_ids.tolist())}
    days, problems = _label_days(labels["as_of"])
    no_events = ~labels["customer_id"].isin(position).to_numpy()
    if no_events.any():
        unknown = labels.loc[no_events, "customer_id"].drop_duplicates()
        problems.append(
            f"{len(unknown)} labelled customers have no events, e.g. {unknown.head(EXAMPLES).tolist()}"
            f" in {_examples(np.flatnonzero(no_events))}"
        )
    bad = ~labels["label"].isin([0, 1]).to_numpy()
    if bad.any():
        problems.append(
            f"label must be 0 or 1 in {_examples(np.flatnonzero(bad), labels['label'])}"
        )
    keyed = pd.DataFrame({"customer_id": labels["customer_id"], "day": days})
    repeated = keyed.duplicated(keep=False).to_numpy() & ~np.isnat(days)
    if repeated.any():
        pairs = keyed[repeated].assign(
            row=np.flatnonzero(repeated), label=labels["label"][repeated]
        )
        lines = []
        for (cid, day), group in itertools.islice(
            pairs.groupby(["customer_id", "day"], sort=False), EXAMPLES
        ):
            conflict = " (conflicting labels)" if group["label"].nunique(dropna=False) > 1 else ""
            lines.append(
                f"{cid!r} at {day.date().isoformat()}: rows {group['row'].tolist()}, "
                f"labels {group['label'].tolist()}{conflict}"
            )
        n_pairs = int(keyed[repeated].drop_duplicates().shape[0])
        problems.append(
            f"{n_pairs} (customer_id, as_of) pairs are given more than once (one label per "
            f"customer and date): {'; '.join(lines)}"
        )
    if problems:
        raise ExternalLabelsRejected(problems)
    parts = []
    groups = labels.groupby(days)
    for day, group in groups:
        as_of = pd.Timestamp(day).date()  # type: ignore[arg-type]  # one key: a datetime64
        X = build_features(events, as_of)
        idx = group["customer_id"].map(position).to_numpy()
        parts.append(
            (X[idx], group["label"].to_numpy(np.float64), idx, np.full(idx.size, to_day(as_of)))
        )
        if progress:
            progress(len(parts), groups.ngroups)
    return Snapshots(
        X=np.concatenate([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        customer=np.concatenate([p[2] for p in parts]),
        as_of=np.concatenate([p[3] for p in parts]).astype(np.int64),
        source="external labels",
    )


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray  # boolean masks over the snapshots
    calibration: np.ndarray
    validation: np.ndarray
    dates: dict[str, list[str]]


def _segment_dates(
    dates: np.ndarray, horizon_days: int, validation_dates: int, calibration_dates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, calibration, validation) day numbers of sorted distinct ``dates``: the latest
    ``validation_dates`` validate, the latest ``calibration_dates`` at least one horizon
    before the first of them calibrate, the dates at least one horizon before the first
    calibration date train. Any may come out short or empty."""
    val = dates[-validation_dates:] if len(dates) >= validation_dates else dates[:0]
    cal = dates[dates + horizon_days <= val[0]][-calibration_dates:] if val.size else dates[:0]
    train = dates[dates + horizon_days <= cal[0]] if cal.size == calibration_dates else dates[:0]
    return train, cal, val


def minimum_monthly_dates(
    horizon_days: int,
    validation_dates: int = 3,
    calibration_dates: int = 2,
    start: date | None = None,
) -> int:
    """The fewest first-of-month dates (from ``start``) that :func:`out_of_time_split` can
    split at ``horizon_days`` (10 at 90 days with 3 validation and 2 calibration dates)."""
    first = pd.Timestamp(start or date(2001, 1, 1)).to_period("M").to_timestamp()
    n = validation_dates + calibration_dates + 1
    while True:
        days = np.array([to_day(d.date()) for d in pd.date_range(first, periods=n, freq="MS")])
        if _segment_dates(days, horizon_days, validation_dates, calibration_dates)[0].size:
            return n
        n += 1


def _listed(days: np.ndarray, limit: int = 12) -> str:
    texts = [from_day(int(d)).isoformat() for d in days]
    if len(texts) > limit:
        texts = [*texts[: limit // 2], "...", *texts[-(limit // 2) :]]
    return ", ".join(texts) if texts else "none"


def out_of_time_split(
    snaps: Snapshots, horizon_days: int, validation_dates: int = 3, calibration_dates: int = 2
) -> TimeSplit:
    """Latest dates validate, the ones before calibrate, the rest train, with purge gaps.

    A training snapshot is kept only when its label window ends before the first
    calibration date, and likewise calibration before validation: every training date
    ≤ first calibration date − horizon, every calibration date ≤ first validation date −
    horizon. Dates too few or too close together for that raise TrainingDataRejected naming the
    dates, the horizon and the rule, with advice for where the labels come from
    (``snaps.source``).
    """
    dates = np.unique(snaps.as_of)
    train_dates, cal_dates, val_dates = _segment_dates(
        dates, horizon_days, validation_dates, calibration_dates
    )
    if len(train_dates) == 0:
        raise TrainingDataRejected(
            _split_error(dates, horizon_days, validation_dates, calibration_dates, snaps.source)
        )
    segments = {"train": train_dates, "calibration": cal_dates, "validation": val_dates}
    return TimeSplit(
        train=np.isin(snaps.as_of, train_dates),
        calibration=np.isin(snaps.as_of, cal_dates),
        validation=np.isin(snaps.as_of, val_dates),
        dates={name: [from_day(int(d)).isoformat() for d in ds] for name, ds in segments.items()},
    )


def _split_error(
    dates: np.ndarray, horizon: int, validation_dates: int, calibration_dates: int, source: str
) -> str:
    """Why ``dates`` allow no purged out-of-time split, and what to do about it."""
    _, cal, val = _segment_dates(dates, horizon, validation_dates, calibration_dates)
    lines = [
        f"not enough label dates for a purged out-of-time split at a {horizon}-day horizon: "
        f"{len(dates)} date(s): {_listed(dates)}.",
        f"The rule: training dates ≤ first calibration date − {horizon} days ≤ first "
        f"validation date − {2 * horizon} days, with the last {validation_dates} dates "
        f"validating and {calibration_dates} calibrating (so the first training date lies at "
        f"least {2 * horizon} days before the first validation date).",
    ]
    if val.size < validation_dates:
        lines.append(f"There are fewer than {validation_dates} dates to validate on.")
    elif cal.size < calibration_dates:
        limit = from_day(int(val[0]) - horizon).isoformat()
        lines.append(
            f"Validation {_listed(val)}; calibration needs {calibration_dates} dates on or "
            f"before {limit} (first validation date − {horizon} days), found "
            f"{f'{cal.size} ({_listed(cal)})' if cal.size else 'none'}, and none before them "
            "to train on."
        )
    else:
        limit = from_day(int(cal[0]) - horizon).isoformat()
        lines.append(
            f"Validation {_listed(val)}, calibration {_listed(cal)}; training needs dates on "
            f"or before {limit} (first calibration date − {horizon} days), found none."
        )
    start = from_day(int(dates[0])) if dates.size else None
    monthly = minimum_monthly_dates(horizon, validation_dates, calibration_dates, start)
    if source == "external labels":
        lines.append(
            "These are the dates of the external labels (--labels): supply labels at dates "
            f"spread over a longer period (monthly label dates need at least {monthly} at this "
            "horizon); a source with one or a few label dates is evaluated by "
            "cross-validation instead: tijdig evaluate --labels FILE --cv 5."
        )
    else:
        lines.append(
            "These are the monthly snapshot dates of the event history (after a 6-month "
            f"warm-up, up to one horizon before the last event): at least {monthly} are needed "
            "at this horizon; ingest (or simulate) a longer history."
        )
    return "\n".join(lines)


def second_reminder_rule(events: EventArrays, snaps: Snapshots) -> np.ndarray:
    """The traditional rule: flag when a 14-day letter (second reminder) is open at as_of.

    Open = the letter was sent before ``as_of`` for an invoice still unpaid at ``as_of``.
    """
    st, inv = events.steps, events.invoices
    letter = (st["step"] == STEP_CODES["fourteen_day_letter"]) & (st["invoice"] >= 0)

    def open_letters(day: np.int64) -> np.ndarray:
        return letter & (st["day"] < day) & (inv["settled_day"][st["invoice"]] >= day)

    return _customer_had(events, snaps, st["cust"], open_letters).astype(np.float64)


def _customer_had(
    events: EventArrays,
    snaps: Snapshots,
    event_customer: np.ndarray,
    selected: Callable[[np.int64], np.ndarray],
) -> np.ndarray:
    """Per snapshot: whether its customer has an event row among ``selected(as_of)`` (a
    mask over the rows whose customers are ``event_customer``), one pass per as_of date."""
    out = np.zeros(len(snaps), dtype=bool)
    for day in np.unique(snaps.as_of):
        had = np.zeros(events.n, dtype=bool)
        had[event_customer[selected(day)]] = True
        rows = snaps.as_of == day
        out[rows] = had[snaps.customer[rows]]
    return out


ORACLE_COLUMNS = (
    "balance_cents",
    "monthly_income_cents",
    "free_room_cents",
    "unemployed",
    "in_shock",
)
ORACLE_STATIC = ("net_income_cents", "fixed_costs_cents", "buffer_cents", "behaviour_code")


def oracle_features(
    events: EventArrays,
    snaps: Snapshots,
    truth_customers: pd.DataFrame,
    truth_monthly: pd.DataFrame,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Observable features plus the simulator's hidden state at each snapshot's as_of.

    The oracle shows how much signal is left on the table: what a model could do if it
    saw the customer's real balance, income and shocks. Like the features, it sees only
    what held before ``as_of``: the truth row of a month start is the state before that
    day's draws (a job loss or income cut drawn on the as_of day is the horizon's future).
    """
    ids = events.customer_ids[snaps.customer]
    monthly = truth_monthly.copy()
    monthly["as_of_day"] = [to_day(d) for d in pd.to_datetime(monthly["month_start"]).dt.date]
    key = pd.DataFrame({"customer_id": ids, "as_of_day": snaps.as_of})
    cols = [c for c in ORACLE_COLUMNS if c in monthly.columns]
    joined = key.merge(
        monthly[["customer_id", "as_of_day", *cols]], how="left", on=["customer_id", "as_of_day"]
    )
    static = truth_customers.copy()
    if "behaviour" in static.columns:
        static["behaviour_code"] = static["behaviour"].astype("category").cat.codes
    scols = [c for c in ORACLE_STATIC if c in static.columns]
    joined = joined.merge(static[["customer_id", *scols]], how="left", on="customer_id")
    hidden = joined[cols + scols].astype(np.float64).to_numpy()
    return np.hstack([snaps.X, hidden]), (*snaps.feature_names, *cols, *scols)


def mask_unobservable(
    X_oracle: np.ndarray,
    names: Sequence[str],
    events: EventArrays,
    snaps: Snapshots,
    truth_customers: pd.DataFrame,
) -> np.ndarray:
    """The oracle's matrix (:func:`oracle_features`) with the hidden state that no creditor
    could observe, even in principle, set to unknown (NaN), in place.

    - A customer who shares no open-banking data: all of it. Balance, income, job loss
      and shocks leave no trace in a creditor's data until a payment slips.
    - Behaviour (willing, forgetful, cannot cope, unwilling) of a direct-debit customer
      with nothing that shows it in the year before ``as_of``: no failed or reversed
      debit, no late invoice, no pay-later order (those are paid by transfer). A debit
      succeeds whatever the behaviour, so nothing records it.

    The oracle on this matrix is the ceiling a model on the creditor's own data could
    reach; the full oracle's ceiling includes what no data holds (see
    docs/experiments/2026-12-01-oracle-gap.md).
    """
    col = {n: i for i, n in enumerate(names)}
    hidden = np.array([col[c] for c in (*ORACLE_COLUMNS, *ORACLE_STATIC) if c in col])
    truth = truth_customers.set_index("customer_id").reindex(events.customer_ids[snaps.customer])
    sharer = truth["has_open_banking"].fillna(False).to_numpy(dtype=bool)
    X_oracle[np.ix_(~sharer, hidden)] = np.nan
    if "behaviour_code" in col:
        direct_debit = (truth["collection_method"] == "direct_debit").to_numpy()
        shown = np.zeros(len(snaps), dtype=bool)
        for name in ("failed_debits_365d", "reversed_debits_365d", "late_invoices_365d"):
            shown |= np.nan_to_num(X_oracle[:, col[name]]) > 0
        shown |= _had_pay_later_order(events, snaps, within_days=365)
        X_oracle[direct_debit & ~shown, col["behaviour_code"]] = np.nan
    return X_oracle


def _had_pay_later_order(events: EventArrays, snaps: Snapshots, within_days: int) -> np.ndarray:
    """Per snapshot: a pay-later order issued in the ``within_days`` before its as_of."""
    inv = events.invoices
    bnpl = inv["product"] == PRODUCT_CODES["bnpl"]

    def recent_orders(day: np.int64) -> np.ndarray:
        return bnpl & (inv["issue_day"] < day) & (inv["issue_day"] >= day - within_days)

    return _customer_had(events, snaps, inv["cust"], recent_orders)

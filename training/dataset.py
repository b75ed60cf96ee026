"""Training sets: point-in-time snapshots at many ``as_of`` dates, split out of time.

A snapshot is (customer, ``as_of``) → features known before ``as_of`` and the label
observed in the horizon after it. Snapshots are split by time into train, calibration
and validation with a purge gap of one horizon between the segments, so no training
label window overlaps a later segment's period (a true out-of-time evaluation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.build import FEATURE_NAMES, build_features
from features.events import NEVER, STEP_CODES, EventArrays, from_day, to_day
from features.labels import LabelConfig, make_labels


@dataclass
class Snapshots:
    """Stacked snapshots: one row per eligible (customer, as_of)."""

    X: np.ndarray
    y: np.ndarray
    customer: np.ndarray  # batch position of the customer in the EventArrays
    as_of: np.ndarray  # day number
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> Snapshots:
        return Snapshots(
            self.X[mask], self.y[mask], self.customer[mask], self.as_of[mask], self.feature_names
        )

    def fingerprint(self) -> str:
        """A short hash of the exact training data (features, labels, dates)."""
        h = hashlib.sha256()
        for arr in (self.X, self.y, self.customer, self.as_of):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]


def monthly_as_of_dates(
    events: EventArrays, config: LabelConfig, warmup_months: int = 6
) -> list[date]:
    """First-of-month dates from ``warmup_months`` after the first event until the last
    date whose whole label horizon is observed."""
    days = [events.invoices["issue_day"], events.payments["day"], events.income["day"]]
    known = np.concatenate([d[d < NEVER] for d in days])
    if known.size == 0:
        raise ValueError("no events: cannot place snapshot dates")
    first, last = from_day(int(known.min())), from_day(int(known.max()))
    start = (pd.Timestamp(first).to_period("M") + warmup_months).to_timestamp().date()
    latest = from_day(to_day(last) - config.horizon_days)
    dates = pd.date_range(start, latest, freq="MS")
    return [d.date() for d in dates]


def build_snapshots(
    events: EventArrays,
    as_of_dates: Sequence[date],
    config: LabelConfig = LabelConfig(),
    progress: Callable[[int], None] | None = None,
) -> Snapshots:
    """Features and labels for every eligible customer at each date."""
    parts = []
    for as_of in as_of_dates:
        labels = make_labels(events, as_of, config)
        X = build_features(events, as_of)
        keep = labels.eligible
        idx = np.flatnonzero(keep)
        parts.append((X[keep], labels.y[keep], idx, np.full(idx.size, to_day(as_of))))
        if progress:
            progress(1)
    return Snapshots(
        X=np.concatenate([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        customer=np.concatenate([p[2] for p in parts]),
        as_of=np.concatenate([p[3] for p in parts]).astype(np.int64),
    )


def snapshots_from_external_labels(events: EventArrays, labels: pd.DataFrame) -> Snapshots:
    """Snapshots for externally supplied targets: columns ``customer_id``, ``as_of``, ``label``.

    Data scientists bring their own target per (customer, as_of); features are still
    computed point in time by the one feature definition.
    """
    missing = {"customer_id", "as_of", "label"} - set(labels.columns)
    if missing:
        raise ValueError(
            f"external labels need columns customer_id, as_of, label; missing {sorted(missing)}"
        )
    position = {cid: i for i, cid in enumerate(events.customer_ids.tolist())}
    unknown = sorted(set(labels["customer_id"]) - set(position))
    if unknown:
        raise ValueError(f"{len(unknown)} labelled customers have no events, e.g. {unknown[:5]}")
    bad = ~labels["label"].isin([0, 1])
    if bad.any():
        raise ValueError(f"label must be 0 or 1; rows {list(np.flatnonzero(bad)[:10])} are not")
    parts = []
    for as_of, group in labels.groupby(pd.to_datetime(labels["as_of"]).dt.date):
        X = build_features(events, as_of)
        idx = group["customer_id"].map(position).to_numpy()
        parts.append(
            (X[idx], group["label"].to_numpy(np.float64), idx, np.full(idx.size, to_day(as_of)))
        )
    return Snapshots(
        X=np.concatenate([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        customer=np.concatenate([p[2] for p in parts]),
        as_of=np.concatenate([p[3] for p in parts]).astype(np.int64),
    )


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray  # boolean masks over the snapshots
    calibration: np.ndarray
    validation: np.ndarray
    dates: dict[str, list[str]]


def out_of_time_split(
    snaps: Snapshots, horizon_days: int, validation_dates: int = 3, calibration_dates: int = 2
) -> TimeSplit:
    """Latest dates validate, the ones before calibrate, the rest train, with purge gaps.

    A training snapshot is kept only when its label window ends before the first
    calibration date, and likewise calibration before validation.
    """
    dates = np.unique(snaps.as_of)
    if len(dates) < validation_dates + calibration_dates + 1:
        raise ValueError(
            f"need at least {validation_dates + calibration_dates + 1} snapshot dates; got {len(dates)}"
        )
    val_dates = dates[-validation_dates:]
    cal_candidates = dates[dates + horizon_days <= val_dates[0]]
    cal_dates = cal_candidates[-calibration_dates:]
    train_dates = dates[dates + horizon_days <= cal_dates[0]]
    if len(train_dates) == 0:
        raise ValueError("not enough history for a purged out-of-time split; simulate more months")
    split = TimeSplit(
        train=np.isin(snaps.as_of, train_dates),
        calibration=np.isin(snaps.as_of, cal_dates),
        validation=np.isin(snaps.as_of, val_dates),
        dates={
            name: [from_day(int(d)).isoformat() for d in ds]
            for name, ds in (
                ("train", train_dates),
                ("calibration", cal_dates),
                ("validation", val_dates),
            )
        },
    )
    return split


def second_reminder_rule(events: EventArrays, snaps: Snapshots) -> np.ndarray:
    """The traditional rule: flag when a 14-day letter (second reminder) is open at as_of.

    Open = the letter was sent before ``as_of`` for an invoice still unpaid at ``as_of``.
    """
    out = np.zeros(len(snaps))
    st, inv = events.steps, events.invoices
    letter = (st["step"] == STEP_CODES["fourteen_day_letter"]) & (st["invoice"] >= 0)
    for day in np.unique(snaps.as_of):
        open_letter = letter & (st["day"] < day) & (inv["settled_day"][st["invoice"]] >= day)
        flagged = np.zeros(events.n, dtype=bool)
        flagged[st["cust"][open_letter]] = True
        rows = snaps.as_of == day
        out[rows] = flagged[snaps.customer[rows]]
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
    saw the customer's real balance, income and shocks.
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

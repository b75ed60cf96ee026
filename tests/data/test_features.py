"""The feature definition: point in time (no leakage), parity online/offline, invariance."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features import schemas
from features.build import FEATURE_NAMES, FEATURES, build_features
from features.events import EventArrays
from features.labels import LabelConfig, make_labels
from models.reasons import FEATURE_REASONS

AS_OF_DATES = [date(2025, 3, 1), date(2025, 9, 17), date(2026, 2, 1)]


def known_before(frames: dict[str, pd.DataFrame], as_of: date) -> dict[str, pd.DataFrame]:
    """What a creditor's systems held before ``as_of``: every event dated on or after it
    removed, and arrangements still running then shown as active."""
    cut = pd.Timestamp(as_of)
    out = {}
    for table, (_, _, date_col) in schemas.TABLES.items():
        if table not in frames:
            continue
        df = frames[table]
        df = df[df[date_col] < cut].copy()
        if table == "arrangements":
            running = df["end_date"].isna() | (df["end_date"] >= cut)
            df.loc[running, "outcome"] = "active"
            df.loc[running, "end_date"] = pd.NaT
        out[table] = df
    return out


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, equal_nan=True)


def test_there_are_at_least_25_described_features_each_with_a_reason_code():
    assert len(FEATURES) >= 25
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(f.description for f in FEATURES)
    assert set(FEATURE_NAMES) <= set(FEATURE_REASONS)


@pytest.mark.parametrize("as_of", AS_OF_DATES, ids=str)
def test_events_after_as_of_change_no_feature(population, as_of):
    full = EventArrays.from_frames(population.tables)
    past_only = EventArrays.from_frames(
        known_before(population.tables, as_of), customer_ids=full.customer_ids.tolist()
    )
    assert_same(build_features(full, as_of), build_features(past_only, as_of))


def test_the_leakage_check_would_catch_a_leak(population):
    """Guard on the guard: a future event that *is* used must change the features."""
    as_of = AS_OF_DATES[1]
    frames = known_before(population.tables, as_of)
    ids = frames["customers"]["customer_id"].tolist()
    leaked = {k: v.copy() for k, v in frames.items()}
    # the same failed debit moved one day earlier (before as_of) must be visible
    extra = pd.DataFrame(
        {
            "attempt_id": ["leak-1"],
            "customer_id": [ids[0]],
            "invoice_id": [frames["invoices"]["invoice_id"].iloc[0]],
            "attempted_at": [pd.Timestamp(as_of) - pd.Timedelta(days=1)],
            "amount_cents": [1000],
            "result": ["failed"],
            "reason_code": ["AM04"],
        }
    )
    leaked["debit_attempts"] = pd.concat([leaked["debit_attempts"], extra], ignore_index=True)
    a = build_features(EventArrays.from_frames(frames), as_of)
    b = build_features(EventArrays.from_frames(leaked), as_of)
    assert not np.allclose(a[0], b[0], equal_nan=True)


def test_customer_ids_and_batch_order_do_not_change_features(population):
    as_of = AS_OF_DATES[2]
    frames = population.tables
    renamed = {}
    mapping = {cid: f"X-{i:06d}" for i, cid in enumerate(frames["customers"]["customer_id"][::-1])}
    for table, df in frames.items():
        df = df.copy()
        df["customer_id"] = df["customer_id"].map(mapping)
        renamed[table] = df
    original = EventArrays.from_frames(frames)
    ids = original.customer_ids.tolist()
    order = list(reversed(ids))
    shuffled = EventArrays.from_frames(renamed, customer_ids=[mapping[c] for c in order])
    X = build_features(original, as_of)
    Y = build_features(shuffled, as_of)
    assert_same(X[::-1], Y)


def test_a_batch_of_one_equals_its_row_in_the_population(population):
    """Online (one customer) == offline (whole population) for the same as_of."""
    as_of = AS_OF_DATES[2]
    everyone = EventArrays.from_frames(population.tables)
    X = build_features(everyone, as_of)
    for i in [0, 7, 123, everyone.n - 1]:
        one = EventArrays.from_frames(population.tables, customer_ids=[everyone.customer_ids[i]])
        assert_same(build_features(one, as_of)[0], X[i])


def test_a_per_customer_as_of_equals_separate_calls(population_events):
    days = np.array([AS_OF_DATES[i % 3] for i in range(population_events.n)])
    from features.events import to_day

    per_customer = build_features(population_events, np.array([to_day(d) for d in days]))
    for d in AS_OF_DATES:
        rows = days == d
        assert_same(per_customer[rows], build_features(population_events, d)[rows])


def test_label_marks_an_invoice_reaching_30_days_past_due_inside_the_horizon():
    T = pd.Timestamp
    frames = {
        "customers": pd.DataFrame(
            {
                "customer_id": ["late", "paid", "already"],
                "household_type": ["single"] * 3,
                "birth_year": pd.array([1980] * 3, dtype="Int64"),
                "declared_net_income_cents": pd.array([None] * 3, dtype="Int64"),
                "created_at": [T("2024-01-01")] * 3,
            }
        ),
        "invoices": pd.DataFrame(
            {
                "invoice_id": ["i1", "i2", "i3"],
                "customer_id": ["late", "paid", "already"],
                "issue_date": [T("2025-02-01"), T("2025-02-01"), T("2024-11-01")],
                "due_date": [T("2025-02-15"), T("2025-02-15"), T("2024-11-15")],
                "amount_cents": [5000] * 3,
                "product": ["premium"] * 3,
                "collection_method": ["transfer"] * 3,
            }
        ),
        "payments": pd.DataFrame(
            {
                "payment_id": ["p2"],
                "customer_id": ["paid"],
                "invoice_id": ["i2"],
                "paid_at": [T("2025-03-10")],
                "amount_cents": [5000],
                "method": ["transfer"],
            }
        ),
    }
    labels = make_labels(EventArrays.from_frames(frames), date(2025, 2, 1), LabelConfig())
    # late: due 15 Feb, unpaid at 17 Mar (= due + 30) -> difficulty; paid: paid at due + 23 -> none;
    # already: 30+ days past due before as_of -> not in the early-warning population
    assert labels.y.tolist() == [1.0, 0.0, 0.0]
    assert labels.eligible.tolist() == [True, True, False]
    shorter = make_labels(
        EventArrays.from_frames(frames), date(2025, 2, 1), LabelConfig(horizon_days=30)
    )
    assert shorter.y[0] == 0.0  # crossing on 17 Mar is 44 days after as_of


def test_label_config_rejects_nonsense():
    with pytest.raises(ValueError, match="horizon_days must be positive; got 0"):
        LabelConfig(horizon_days=0)


def test_day_of_month_is_numpys_calendar():
    """``day_of_month`` by lookup over a batch's span gives numpy's datetime64 days,
    across leap centuries, before 1970, at NEVER and for float day numbers (truncated)."""
    from features.events import _EPOCH, NEVER, day_of_month

    def numpy_calendar(days):
        d = _EPOCH + np.asarray(days, dtype=np.int64)
        return (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1

    days = np.r_[np.arange(-800_000, 200_000), NEVER - 1, NEVER]
    assert np.array_equal(day_of_month(days), numpy_calendar(days))
    rng = np.random.default_rng(3)
    batch = rng.integers(19_000, 20_500, 10_000)  # the lookup path: span < rows
    assert np.array_equal(day_of_month(batch), numpy_calendar(batch))
    assert day_of_month(19_000) == numpy_calendar(19_000)
    floats = np.array([0.0, 19_000.7, -3.2, 20_000.0])
    assert np.array_equal(day_of_month(floats), numpy_calendar(floats))

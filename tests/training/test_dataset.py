"""Training sets built partition by partition equal those built for everyone at once."""

from __future__ import annotations

import numpy as np
import pytest

from features.build import FEATURE_NAMES, build_features
from features.events import EventArrays, to_day
from features.labels import make_labels
from training.dataset import (
    SNAPSHOT_DTYPE,
    TABLES,
    Snapshots,
    build_snapshots,
    customer_slice,
    customer_subset,
    monthly_as_of_dates,
)


def _assert_same_events(a: EventArrays, b: EventArrays) -> None:
    assert a.customer_ids.tolist() == b.customer_ids.tolist()
    for table in TABLES:
        ta, tb = getattr(a, table), getattr(b, table)
        assert ta.cols.keys() == tb.cols.keys(), table
        for col in ta.cols:
            np.testing.assert_array_equal(ta[col], tb[col], err_msg=f"{table}.{col}")


def test_snapshots_in_partitions_equal_all_customers_at_once(population_events, label_config):
    """Rows date by date, customers in batch order: the stacking of the unpartitioned
    definition, bit for bit, whatever the partition size."""
    events = population_events
    dates = monthly_as_of_dates(events, label_config)
    parts = []
    for as_of in dates:
        labels = make_labels(events, as_of, label_config)
        keep = labels.eligible
        parts.append((build_features(events, as_of)[keep], labels.y[keep], np.flatnonzero(keep)))
    reference = Snapshots(  # stored as the training matrix stores it (SNAPSHOT_DTYPE)
        X=np.concatenate([p[0] for p in parts]).astype(SNAPSHOT_DTYPE),
        y=np.concatenate([p[1] for p in parts]),
        customer=np.concatenate([p[2] for p in parts]),
        as_of=np.repeat([to_day(d) for d in dates], [len(p[1]) for p in parts]),
    )
    calls = []
    snaps = build_snapshots(
        events, dates, label_config, progress=lambda *a: calls.append(a), partition_customers=160
    )
    assert calls == [(k, 5) for k in range(1, 6)]  # 700 customers in 5 partitions
    np.testing.assert_array_equal(snaps.X, reference.X)  # NaN == NaN here
    np.testing.assert_array_equal(snaps.y, reference.y)
    np.testing.assert_array_equal(snaps.customer, reference.customer)
    np.testing.assert_array_equal(snaps.as_of, reference.as_of)
    assert snaps.fingerprint() == reference.fingerprint()


def test_a_slice_of_customers_has_their_features(population_events):
    events = population_events
    part = customer_slice(events, 200, 330)
    assert part.n == 130
    assert part.customer_ids.tolist() == events.customer_ids[200:330].tolist()
    for table in ("invoices", "payments", "steps", "balances"):
        cust = getattr(part, table)["cust"]
        assert cust.min() >= 0 and cust.max() < 130
    refs = part.payments["invoice"]
    linked = refs >= 0
    assert linked.any()
    np.testing.assert_array_equal(
        part.invoices["cust"][refs[linked]], part.payments["cust"][linked]
    )
    as_of = to_day("2026-01-01")
    np.testing.assert_array_equal(
        build_features(part, as_of), build_features(events, as_of)[200:330]
    )


def test_subsets_of_consecutive_rows_are_views_and_others_copies(snapshots):
    dates = np.unique(snapshots.as_of)
    run = np.isin(snapshots.as_of, dates[2:5])
    view = snapshots.subset(run)
    assert np.shares_memory(view.X, snapshots.X)
    scattered = snapshots.customer % 2 == 0
    copy = snapshots.subset(scattered)
    assert not np.shares_memory(copy.X, snapshots.X)
    for part, mask in ((view, run), (copy, scattered)):
        np.testing.assert_array_equal(part.X, snapshots.X[mask])
        np.testing.assert_array_equal(part.y, snapshots.y[mask])
        np.testing.assert_array_equal(part.customer, snapshots.customer[mask])
        np.testing.assert_array_equal(part.as_of, snapshots.as_of[mask])
    assert len(snapshots.subset(np.zeros(len(snapshots), bool))) == 0


@pytest.fixture
def sqlite_store(sqlite_url, population):
    """150 simulated customers in a SQLite event store."""
    from features.store import EventStore

    ids = set(population.tables["customers"]["customer_id"].iloc[:150])
    store = EventStore(sqlite_url)
    store.create_schema()
    store.ingest({n: df[df["customer_id"].isin(ids)] for n, df in population.tables.items()})
    try:
        yield store
    finally:
        store.dispose()


def test_events_read_in_partitions_equal_one_read(sqlite_store):
    from training.pipeline import read_events

    whole = EventArrays.from_frames(sqlite_store.read_frames())
    assert whole.n == 150
    _assert_same_events(read_events(sqlite_store, partition_customers=40), whole)


def test_a_scattered_subset_of_customers_has_their_features(population_events):
    events = population_events
    chosen = np.arange(3, events.n, 7)
    part = customer_subset(events, chosen)
    assert part.customer_ids.tolist() == events.customer_ids[chosen].tolist()
    for as_of in (to_day("2025-09-01"), to_day("2026-03-01")):
        np.testing.assert_array_equal(
            build_features(part, as_of), build_features(events, as_of)[chosen]
        )


def test_debit_rows_in_partitions_equal_one_pass(population_events):
    from training.debit_failure import build_debit_rows

    whole = build_debit_rows(population_events, partition_customers=population_events.n)
    parts = build_debit_rows(population_events, partition_customers=130)
    assert len(whole) > 1000
    np.testing.assert_array_equal(parts.X, whole.X)
    for name in ("y", "as_of", "cust"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))
    assert np.all(np.diff(whole.as_of) >= 0)  # month by month


def test_plan_rows_have_the_features_of_the_whole_population(population_events):
    """Plan rows are built on the customers with plans only; their features must be
    those each customer has in the whole batch at the plan's start."""
    from models.plan_kept import PLAN_FEATURE_NAMES
    from training.plan_kept import arrangement_rows

    events = population_events
    X, _, start = arrangement_rows(events)
    assert len(start) > 50
    ar = events.arrangements
    first = np.flatnonzero(np.isin(ar["start_day"], start))[:20]
    for i in first:
        row = np.flatnonzero(start == ar["start_day"][i])
        expected = build_features(events, int(ar["start_day"][i]))[ar["cust"][i]]
        base = X[row][:, : len(FEATURE_NAMES)]
        assert any(np.array_equal(b, expected, equal_nan=True) for b in base), i
    assert X.shape[1] == len(FEATURE_NAMES) + len(PLAN_FEATURE_NAMES)


def test_the_observable_oracle_sees_only_what_a_creditor_could(
    population, population_events, snapshots
):
    """Non-sharers' hidden state and the behaviour of direct-debit customers with a clean
    year are unknown to it; everything else is the full oracle's matrix, unchanged."""
    from training.dataset import ORACLE_COLUMNS, ORACLE_STATIC, mask_unobservable, oracle_features

    truth = population.truth_customers
    full, names = oracle_features(population_events, snapshots, truth, population.truth_monthly)
    masked = mask_unobservable(full.copy(), names, population_events, snapshots, truth)
    col = {n: i for i, n in enumerate(names)}
    hidden = [col[c] for c in (*ORACLE_COLUMNS, *ORACLE_STATIC)]
    rows = truth.set_index("customer_id").reindex(
        population_events.customer_ids[snapshots.customer]
    )
    sharer = rows["has_open_banking"].to_numpy(dtype=bool)
    assert sharer.any() and (~sharer).any()

    # the creditor's own features are untouched
    k = len(FEATURE_NAMES)
    np.testing.assert_array_equal(masked[:, :k], full[:, :k])
    # non-sharers: no hidden state at all
    assert np.isnan(masked[np.ix_(~sharer, hidden)]).all()
    # sharers keep balance, income and shocks
    state = [col[c] for c in ORACLE_COLUMNS]
    np.testing.assert_array_equal(masked[np.ix_(sharer, state)], full[np.ix_(sharer, state)])
    # behaviour: kept for transfer payers, unknown for a direct-debit customer with a clean
    # year, kept for one whose debit failed
    behaviour = col["behaviour_code"]
    transfer = sharer & (rows["collection_method"] == "transfer").to_numpy()
    direct = sharer & (rows["collection_method"] == "direct_debit").to_numpy()
    failed = full[:, col["failed_debits_365d"]] > 0
    assert transfer.any() and (direct & failed).any() and np.isnan(masked[direct, behaviour]).any()
    np.testing.assert_array_equal(masked[transfer, behaviour], full[transfer, behaviour])
    np.testing.assert_array_equal(
        masked[direct & failed, behaviour], full[direct & failed, behaviour]
    )
    unknown = direct & np.isnan(masked[:, behaviour])
    assert (full[unknown][:, [col["late_invoices_365d"], col["reversed_debits_365d"]]] == 0).all()
    assert (full[unknown, col["failed_debits_365d"]] == 0).all()


def test_training_reports_the_observable_oracle_beside_the_full_one(trained):
    for name in ("oracle", "oracle_observable"):
        assert 0.5 < trained.metrics[name]["roc_auc"] <= 1
        assert trained.metrics[name]["rows"] == trained.metrics["model"]["rows"]


def test_a_model_trained_on_the_float32_matrix_scores_float64_rows_alike(
    trained, population_events, snapshots
):
    """Training stores features as float32 (SNAPSHOT_DTYPE), serving computes float64:
    both land in the same leaves, so the scores are equal, not merely close."""
    assert snapshots.X.dtype == SNAPSHOT_DTYPE
    rows = np.flatnonzero(snapshots.as_of == snapshots.as_of.max())
    day = int(snapshots.as_of[rows[0]])
    served = build_features(population_events, day)[snapshots.customer[rows]]
    assert served.dtype == np.float64
    assert not np.array_equal(served, snapshots.X[rows], equal_nan=True)  # rounding differs
    bundle = trained.bundle
    np.testing.assert_array_equal(
        bundle.predict_proba(served), bundle.predict_proba(snapshots.X[rows])
    )

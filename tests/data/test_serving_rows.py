"""Materialised serving rows: the stored answer equals the computed one, and never outlives
the events it was computed from (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.events import EventArrays, to_day
from features.store import ServingRow
from models.bundle import Bundle
from models.scoring import assess, assess_state
from models.serving import (
    FEATURE_SET_KEY,
    ServingRows,
    compute_state,
    model_key,
    reasons_threshold,
)

AS_OF = date(2026, 6, 1)
N_CUSTOMERS = 60


@pytest.fixture
def seeded(store, population, trained):
    """The first customers of the small population in a fresh store, and the bundle."""
    ids = population.tables["customers"]["customer_id"].iloc[:N_CUSTOMERS].tolist()
    tables = {
        name: df[df["customer_id"].isin(ids)].reset_index(drop=True)
        for name, df in population.tables.items()
    }
    assert store.ingest(tables).accepted
    return store, trained.bundle, ids, tables


def _recalibrated(bundle: Bundle) -> Bundle:
    """The same booster and version name with another calibration: another model."""
    return Bundle(
        booster=bundle.booster,
        calibrator={"slope": bundle.calibrator["slope"] * 0.5, "intercept": 0.3},
        feature_names=bundle.feature_names,
        policy=bundle.policy,
        version=bundle.version,
        bnpl_policy=bundle.bnpl_policy,
    )


def _computed(store, bundle, ids):
    events = EventArrays.from_frames(store.read_frames(ids), ids)
    return compute_state(bundle, events, AS_OF, contributions=True)


def test_refreshed_rows_equal_the_state_computed_from_events(seeded):
    store, bundle, ids, _ = seeded
    serving = ServingRows(store)
    assert serving.refresh(bundle, AS_OF, partition_size=25) == len(ids)

    served = serving.state(bundle, ids[::-1], AS_OF)  # request order is kept
    assert served.materialised.all()
    expected = _computed(store, bundle, ids[::-1])
    np.testing.assert_array_equal(served.X, expected.X)  # bit for bit: same float64 row
    np.testing.assert_array_equal(served.probability, expected.probability)
    np.testing.assert_array_equal(served.open_case, expected.open_case)
    stored = ~np.isnan(served.contributions[:, -1])
    np.testing.assert_array_equal(served.contributions[stored], expected.contributions[stored])
    one = serving.state(bundle, [ids[7]], AS_OF)  # the single-customer (checkout) path
    assert one.materialised.all()
    alone = _computed(store, bundle, [ids[7]])
    np.testing.assert_array_equal(one.X, alone.X)
    np.testing.assert_array_equal(one.probability, alone.probability)
    np.testing.assert_array_equal(one.open_case, alone.open_case)
    # and the whole answer, reasons included, equals the one computed from the events
    events = EventArrays.from_frames(store.read_frames(ids), ids[::-1])
    assert [
        (a.probability, a.band, [r.code for r in a.reasons])
        for a in assess_state(bundle, served, AS_OF)
    ] == [
        (a.probability, a.band, [r.code for r in a.reasons]) for a in assess(bundle, events, AS_OF)
    ]


def test_a_miss_is_computed_then_stored_by_the_writer(seeded):
    store, bundle, ids, _ = seeded
    serving = ServingRows(store)
    first = serving.state(bundle, ids[:5], AS_OF)
    assert not first.materialised.any()
    serving.flush()
    second = serving.state(bundle, ids[:5], AS_OF)
    assert second.materialised.all()
    np.testing.assert_array_equal(second.X, first.X)
    np.testing.assert_array_equal(second.probability, first.probability)
    serving.close()


def test_a_new_event_invalidates_only_that_customers_row(seeded):
    store, bundle, ids, tables = seeded
    serving = ServingRows(store)
    serving.refresh(bundle, AS_OF)
    target = ids[3]
    before = serving.state(bundle, [target], AS_OF)
    invoice = pd.DataFrame(
        {
            "invoice_id": ["INV-NEW-1"],
            "customer_id": [target],
            "issue_date": [pd.Timestamp("2026-04-01")],
            "due_date": [pd.Timestamp("2026-04-15")],
            "amount_cents": [123_456],
            "product": [tables["invoices"]["product"].iloc[0]],
            "collection_method": ["transfer"],
        }
    )
    assert store.ingest({"invoices": invoice}).accepted

    after = serving.state(bundle, ids[:6], AS_OF)
    assert after.materialised.tolist() == [True, True, True, False, True, True]
    assert not np.array_equal(after.X[3], before.X[0], equal_nan=True)  # the invoice counts
    np.testing.assert_array_equal(after.X[3], _computed(store, bundle, [target]).X[0])


def test_a_row_from_a_read_that_raced_an_ingest_is_never_served(seeded):
    store, bundle, ids, _ = seeded
    serving = ServingRows(store)
    serving.refresh(bundle, AS_OF)
    target = ids[0]
    stale = store.read_serving_rows([target], to_day(AS_OF), FEATURE_SET_KEY)[target]
    assert store.ingest(
        {
            "income_receipts": pd.DataFrame(
                {
                    "receipt_id": ["RCPT-NEW-1"],
                    "customer_id": [target],
                    "received_at": [pd.Timestamp("2026-05-25")],
                    "amount_cents": [250_000],
                    "source": ["salary"],
                }
            )
        }
    ).accepted
    # a slow writer that read before the ingest now stores what it computed
    store.write_serving_rows([stale])
    assert store.read_serving_rows([target], to_day(AS_OF), FEATURE_SET_KEY) == {}


def test_scores_of_another_model_are_not_reused(seeded, trained):
    store, bundle, ids, _ = seeded
    serving = ServingRows(store)
    serving.refresh(bundle, AS_OF)
    other = _recalibrated(bundle)  # same name, another calibration: must not share scores
    assert model_key(other) != model_key(bundle)
    served = serving.state(other, ids, AS_OF)
    assert served.materialised.all()  # the features are the model's business no more
    np.testing.assert_array_equal(served.probability, other.predict_proba(served.X))
    assert np.isnan(served.contributions[:, -1]).all()  # explained afresh on demand


def test_stored_scores_of_an_unexpected_width_are_scored_again_not_misread(seeded):
    """A row whose score bytes are neither the probability alone nor probability and
    contributions (a truncated write, a changed layout) is rescored, on the one-customer
    path of a served request and on the bulk path alike."""
    import dataclasses

    store, bundle, ids, _ = seeded
    serving = ServingRows(store)
    serving.refresh(bundle, AS_OF)
    day = to_day(AS_OF)
    rows = store.read_serving_rows(ids[:2], day, FEATURE_SET_KEY)
    store.write_serving_rows(
        [
            dataclasses.replace(r, scores=r.scores[:8] + bytes(16))  # same version: replaces
            for r in rows.values()
        ]
    )
    for asked in (ids[:1], ids[:2]):
        served = serving.state(bundle, asked, AS_OF)
        assert served.materialised.all()
        np.testing.assert_array_equal(served.probability, bundle.predict_proba(served.X))


def test_a_refresh_after_a_model_change_stores_the_new_models_scores(seeded):
    """Row validity follows the events, not the model: after the champion changed, a
    refresh counted every row valid and kept the old model's scores, so each request
    predicted and explained afresh until the customer's next event."""
    store, bundle, ids, _ = seeded
    serving = ServingRows(store)
    serving.refresh(bundle, AS_OF)
    other = _recalibrated(bundle)
    assert serving.refresh(other, AS_OF) == 0  # no features computed again ...
    assert serving.rescored == len(ids)  # ... but every row rescored for the new model
    rows = store.read_serving_rows(ids, to_day(AS_OF), FEATURE_SET_KEY)
    assert {r.model_version for r in rows.values()} == {model_key(other)}
    served = serving.state(other, ids, AS_OF)
    np.testing.assert_array_equal(served.probability, other.predict_proba(served.X))
    flagged = served.probability >= reasons_threshold(other)
    assert not np.isnan(served.contributions[flagged, -1]).any()  # stored, not to compute
    assert serving.refresh(other, AS_OF) == 0 and serving.rescored == len(ids)  # once


def test_rows_of_another_day_or_feature_set_are_not_served(seeded):
    store, bundle, ids, _ = seeded
    ServingRows(store).refresh(bundle, AS_OF)
    assert store.read_serving_rows(ids, to_day(AS_OF) + 1, FEATURE_SET_KEY) == {}
    assert store.read_serving_rows(ids, to_day(AS_OF), "2020.1.1:0123") == {}
    assert len(store.read_serving_rows(ids, to_day(AS_OF), FEATURE_SET_KEY)) == len(ids)
    assert store.purge_serving_rows(to_day(AS_OF) + 1) == len(ids)
    assert store.count_serving_rows() == 0


def test_disabled_serving_rows_always_compute(seeded):
    store, bundle, ids, _ = seeded
    ServingRows(store).refresh(bundle, AS_OF)
    served = ServingRows(store, enabled=False).state(bundle, ids[:4], AS_OF)
    assert not served.materialised.any()


def test_an_older_version_never_overwrites_a_newer_row(seeded):
    store, bundle, ids, _ = seeded
    ServingRows(store).refresh(bundle, AS_OF)
    day = to_day(AS_OF)
    row = store.read_serving_rows([ids[0]], day, FEATURE_SET_KEY)[ids[0]]
    older = ServingRow(
        row.customer_id, day, FEATURE_SET_KEY, row.version - 1, b"\x00" * 8, None, None
    )
    store.write_serving_rows([older])
    assert store.read_serving_rows([ids[0]], day, FEATURE_SET_KEY)[ids[0]] == row


def test_customers_ingested_before_versions_existed_are_served(seeded):
    store, bundle, ids, _ = seeded
    with store.engine.begin() as conn:  # a store from before this table: no versions at all
        conn.exec_driver_sql("DELETE FROM customer_versions")
    serving = ServingRows(store)
    assert serving.refresh(bundle, AS_OF) == len(ids)
    assert serving.state(bundle, ids, AS_OF).materialised.all()
    assert serving.refresh(bundle, AS_OF) == 0  # incremental: nothing left to compute


def test_score_batch_cold_and_warm_write_the_answers_of_assess(seeded, tmp_path):
    from training.batch_scoring import score_batch

    store, bundle, ids, _ = seeded
    expected = {
        a.customer_id: a
        for a in assess(bundle, EventArrays.from_frames(store.read_frames(ids), ids), AS_OF)
    }
    cold = score_batch(store, bundle, AS_OF, tmp_path / "cold.parquet", partition_size=25)
    warm = score_batch(store, bundle, AS_OF, tmp_path / "warm.parquet", partition_size=25)
    assert (cold.materialised, warm.materialised) == (0, len(ids))
    for name in ("cold", "warm"):
        out = pd.read_parquet(tmp_path / f"{name}.parquet").set_index("customer_id")
        assert sorted(out.index) == sorted(ids)
        for cid, a in expected.items():
            row = out.loc[cid]
            assert row["probability"] == a.probability
            assert row["band"] == a.band.value
            codes = [row[f"reason_{j}"] for j in (1, 2, 3)]
            want = [r.code.value for r in a.reasons] if a.early_warning else []
            assert codes == want + [""] * (3 - len(want))


def test_score_batch_with_features_writes_the_scored_rows_for_drift(seeded, tmp_path):
    from training.batch_scoring import score_batch
    from training.monitoring.drift import drift_report

    store, bundle, _, _ = seeded
    score_batch(store, bundle, AS_OF, tmp_path / "plain.parquet", partition_size=25)
    score_batch(
        store, bundle, AS_OF, tmp_path / "wide.parquet", partition_size=25, with_features=True
    )
    plain = pd.read_parquet(tmp_path / "plain.parquet")
    wide = pd.read_parquet(tmp_path / "wide.parquet")
    pd.testing.assert_frame_equal(wide[plain.columns], plain)
    state = ServingRows(store).state(bundle, list(wide["customer_id"]), AS_OF)
    np.testing.assert_array_equal(wide[list(bundle.feature_names)].to_numpy(), state.X)
    if bundle.reference:
        assert not drift_report(bundle.reference, wide).not_in_reference


def test_score_batch_in_worker_processes_writes_the_same_file(seeded, tmp_path):
    """Partitions scored in 2 spawned processes (each opens the store by its URL; the
    bundle and ids are pickled, as a Dask executor would) give the in-process file, row for
    row and in customer order, and store the same serving rows."""
    from training.batch_scoring import score_batch

    store, bundle, ids, _ = seeded
    parallel = score_batch(
        store, bundle, AS_OF, tmp_path / "parallel.parquet", partition_size=25, workers=2
    )
    assert (parallel.customers, parallel.materialised, parallel.workers) == (len(ids), 0, 2)
    here = score_batch(store, bundle, AS_OF, tmp_path / "here.parquet", partition_size=25)
    assert here.materialised == len(ids)  # the workers stored every row
    a = pd.read_parquet(tmp_path / "parallel.parquet")
    b = pd.read_parquet(tmp_path / "here.parquet")
    assert list(a["customer_id"]) == sorted(ids)
    pd.testing.assert_frame_equal(a, b)
    assert parallel.flagged == here.flagged


def test_score_batch_keeps_customer_order_whatever_order_partitions_finish_in(seeded, tmp_path):
    import random
    import time as _time
    from concurrent.futures import ThreadPoolExecutor

    from training import batch_scoring

    store, bundle, ids, _ = seeded
    real = batch_scoring._score_partition_elsewhere

    def shuffled(*args, **kwargs):  # later partitions tend to finish first
        _time.sleep(random.Random(args[3][0]).uniform(0.0, 0.05))
        return real(*args, **kwargs)

    batch_scoring._worker_stores.clear()
    try:
        batch_scoring._score_partition_elsewhere = shuffled
        with ThreadPoolExecutor(4) as pool:
            report = batch_scoring.score_batch(
                store, bundle, AS_OF, tmp_path / "t.parquet", partition_size=7, executor=pool
            )
    finally:
        batch_scoring._score_partition_elsewhere = real
        for opened in batch_scoring._worker_stores.values():
            opened.dispose()
        batch_scoring._worker_stores.clear()
    out = pd.read_parquet(tmp_path / "t.parquet")
    assert report.customers == len(ids)
    assert list(out["customer_id"]) == sorted(ids)


def test_a_partition_of_serving_rows_is_read_along_the_primary_key(tmp_path):
    """SQLite, without statistics, read a customer range through the as_of_day index: every
    row of the day for each partition (a 1,000,000-customer batch read its rows 10 times)."""
    import sqlite3

    from features.store import EventStore

    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.create_schema()
    store.dispose()
    sql = store._serving_select("s.customer_id BETWEEN ? AND ?", range_of_ids=True)
    with sqlite3.connect(tmp_path / "events.db") as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("a", "b", 1, "f")).fetchall()
    serving_step = next(row[3] for row in plan if row[3].startswith("SEARCH s "))
    assert "sqlite_autoindex_serving_rows_1 (customer_id>? AND customer_id<?)" in serving_step

"""Customer attributes with an effective date: validated, stored, used point in time.

The ``customer_attributes`` table (several dated rows per customer) feeds age, declared
income, household, employment and the days since application: a feature ``as_of`` a day
uses, per column, the latest row dated before it that states the value, else the customer
record. Pinned here: rows dated on or after ``as_of`` change nothing, the online read (one
customer, ``read_columns``) equals the training read (``read_frames``) on both back ends,
and a store made before the table still reads (no rows, the features as before).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from features.build import FEATURE_INDEX, build_features
from features.events import EventArrays
from features.schemas import TABLES
from features.store import EventStore, IngestRejected
from tests.conftest import build_event_batch

AS_OF = date(2024, 6, 1)
COLUMNS = ("age_years", "declared_income_eur", "household_adults", "employment_status")


def attribute_rows() -> pd.DataFrame:
    """c1: an application, an income update, then a row dated on and one after AS_OF.
    c2: one application row that states nothing but employment. c3: none."""
    d = pd.Timestamp
    rows = [
        ("a-c1-1", "c1", d("2023-01-10"), 1980, 250_000, "couple", "employed", d("2023-01-05")),
        ("a-c1-2", "c1", d("2024-02-01"), None, 150_000, None, "unemployed", None),
        ("a-c1-3", "c1", d("2024-06-01"), 1950, 900_000, "single", "retired", None),  # = as_of
        ("a-c1-4", "c1", d("2024-09-01"), 1940, 990_000, "single", "student", None),
        ("a-c2-1", "c2", d("2023-03-01"), None, None, None, "self_employed", d("2023-02-20")),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "attribute_id",
            "customer_id",
            "effective_date",
            "birth_year",
            "declared_net_income_cents",
            "household_type",
            "employment",
            "application_date",
        ],
    )
    return TABLES["customer_attributes"][0].validate(frame)


def features(frames: dict[str, pd.DataFrame], as_of: date = AS_OF) -> pd.DataFrame:
    events = EventArrays.from_frames(frames)
    X = build_features(events, as_of)
    cols = [*COLUMNS, "household_children", "days_since_application"]
    return pd.DataFrame(
        X[:, [FEATURE_INDEX[c] for c in cols]], index=events.customer_ids, columns=cols
    )


def test_the_latest_row_before_as_of_states_each_column_else_the_customer_record():
    frames = build_event_batch()
    frames["customer_attributes"] = attribute_rows()
    f = features(frames)
    # c1: income and employment from the update of 2024-02-01, birth year and household
    # from the application (the update left them out); the rows of 06-01 and 09-01 unseen
    assert f.loc["c1", "declared_income_eur"] == 1500.0
    assert f.loc["c1", "employment_status"] == 5  # unemployed
    assert f.loc["c1", "age_years"] == pytest.approx(
        AS_OF.year + 151 / 365.2425 - 1980 - 0.5, abs=0.01
    )
    assert f.loc["c1", "household_adults"] == 2  # couple
    assert f.loc["c1", "days_since_application"] == (AS_OF - date(2023, 1, 5)).days
    # c2: employment stated; the rest from the customer record (couple, no birth year)
    assert f.loc["c2", "employment_status"] == 1  # self-employed
    assert f.loc["c2", "household_adults"] == 2
    assert np.isnan(f.loc["c2", "age_years"])
    assert f.loc["c2", "declared_income_eur"] == 1810.0
    # c3: no rows: the customer record only, as before the table existed
    without = features(build_event_batch())
    pd.testing.assert_series_equal(f.loc["c3"], without.loc["c3"])
    assert np.isnan(f.loc["c3", "employment_status"])
    assert np.isnan(f.loc["c3", "days_since_application"])


def test_rows_dated_on_or_after_as_of_change_no_feature():
    frames = build_event_batch()
    rows = attribute_rows()
    frames["customer_attributes"] = rows
    past = dict(frames, customer_attributes=rows[rows["effective_date"] < pd.Timestamp(AS_OF)])
    pd.testing.assert_frame_equal(features(frames), features(past))
    # ... and the guard can fail: one day later, the row of 06-01 is seen
    later = date(2024, 6, 2)
    assert features(frames, later).loc["c1", "employment_status"] == 2  # retired
    assert features(past, later).loc["c1", "employment_status"] == 5


def test_a_row_order_in_the_batch_does_not_matter():
    frames = build_event_batch()
    frames["customer_attributes"] = attribute_rows()
    shuffled = dict(frames, customer_attributes=attribute_rows().iloc[::-1])
    pd.testing.assert_frame_equal(features(frames), features(shuffled))


def test_online_read_equals_the_training_read(store):
    """Parity: the request path (``read_columns``, one customer) and training
    (``read_frames``, everyone) give the same features, on SQLite and PostgreSQL."""
    frames = build_event_batch()
    frames["customer_attributes"] = attribute_rows()
    store.ingest(frames)
    assert store.count("customer_attributes") == 5
    everyone = EventArrays.from_frames(store.read_frames())
    X = build_features(everyone, AS_OF)
    np.testing.assert_array_equal(X, build_features(EventArrays.from_frames(frames), AS_OF))
    for i, cid in enumerate(everyone.customer_ids.tolist()):
        one = EventArrays.from_columns(store.read_columns([cid]), [cid])
        np.testing.assert_array_equal(build_features(one, AS_OF)[0], X[i])


def test_attribute_rows_are_validated_with_rows_and_columns_named(store):
    frames = build_event_batch()
    bad = attribute_rows().astype(object)
    bad.loc[1, "employment"] = "astronaut"
    bad.loc[4, "application_date"] = "2023-04-01"  # after its effective date
    bad.loc[2, "customer_id"] = "nobody"
    frames["customer_attributes"] = bad
    with pytest.raises(IngestRejected) as info:
        store.ingest(frames)
    errors = info.value.report.errors
    where = {(e.table, e.row, e.column) for e in errors}
    assert ("customer_attributes", 1, "employment") in where
    assert any(e.row == 4 and "application_date" in e.message for e in errors)
    assert store.count("customer_attributes") == 0


def test_a_customer_stating_two_rows_for_one_day_is_refused(store):
    frames = build_event_batch()
    rows = attribute_rows()
    rows.loc[1, "effective_date"] = rows.loc[0, "effective_date"]
    frames["customer_attributes"] = rows
    with pytest.raises(IngestRejected) as info:
        store.ingest(frames)
    assert {e.row for e in info.value.report.errors} == {0, 1}


@pytest.mark.parametrize("column", ["gender", "Religion", "marital_status"])
def test_special_category_columns_are_refused_and_named(store, column):
    frames = build_event_batch()
    rows = attribute_rows()
    rows[column] = "x"
    frames["customer_attributes"] = rows
    with pytest.raises(IngestRejected) as info:
        store.ingest(frames)
    (error,) = [e for e in info.value.report.errors if e.column == column]
    assert error.check == "special_category"
    assert "special-category" in error.message


def test_a_store_made_before_the_table_reads_no_rows(store_url):
    """An older store lacks ``customer_attributes``: reads find no rows (the features as
    before), and ``create_schema`` adds the table without touching the others."""
    url, schema = store_url.url, store_url.schema
    with EventStore(url, schema) as store:
        store.create_schema()
        store.ingest(build_event_batch())
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE customer_attributes")
    with EventStore(url, schema) as old:
        frames = old.read_frames()
        assert len(frames["customer_attributes"]) == 0
        assert old.count("customer_attributes") == 0
        cols = old.read_columns(["c1"])
        assert len(cols["customer_attributes"]["customer_id"]) == 0
        X = build_features(EventArrays.from_frames(frames), AS_OF)
        np.testing.assert_array_equal(
            X, build_features(EventArrays.from_frames(build_event_batch()), AS_OF)
        )
        old.create_schema()
        assert sa.inspect(old.engine).has_table("customer_attributes", schema=schema)
        frames = build_event_batch()
        frames["customer_attributes"] = attribute_rows()
        report = old.ingest(frames)
        assert report.tables["customer_attributes"].inserted == 5
        assert report.tables["invoices"].duplicates == len(frames["invoices"])


def test_the_employment_coding_is_the_documented_one():
    """``employment_status`` is documented (feature list, docs/customer-attributes.md) as
    this coding: a reordered enum would silently change what a trained model reads."""
    from features.build import FEATURES
    from features.events import EMPLOYMENT_CODES

    assert EMPLOYMENT_CODES == {
        "employed": 0,
        "self_employed": 1,
        "retired": 2,
        "student": 3,
        "other": 4,
        "unemployed": 5,
    }
    (spec,) = [f for f in FEATURES if f.name == "employment_status"]
    assert "0 employed, 1 self-employed, 2 retired, 3 student, 4 other, 5 unemployed" in (
        spec.description
    )

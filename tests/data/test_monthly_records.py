"""Month-by-month records (long format) and customer attributes → events.

The small example in ``docs/examples/own-data/`` (status only, per-account starts, the
``dpd_buckets`` vocabulary, an application file) and hand-written accounts whose events
are worked out in the comments; and the wide importer's sample, converted to long, giving
the same events.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_INDEX, build_features
from features.events import EventArrays
from features.schemas import TABLES
from tests.data.test_monthly_import import _config, _sample
from training.importers import (
    RecordsConfig,
    RecordsRejected,
    StatusVocabulary,
    import_monthly_records,
    import_monthly_statements,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "own-data"


def _example_config(**overrides: object) -> RecordsConfig:
    raw = json.loads((EXAMPLE / "mapping.json").read_text())
    return RecordsConfig.from_dict({**raw, **overrides})


@pytest.fixture(scope="module")
def example():
    records = pd.read_csv(EXAMPLE / "records.csv")
    attributes = pd.read_csv(EXAMPLE / "attributes.csv")
    return records, attributes, import_monthly_records(records, _example_config(), attributes)


def test_the_example_imports_into_valid_tables(example) -> None:
    _, _, result = example
    for name, frame in result.frames.items():
        if len(frame):
            TABLES[name][0].validate(frame)
    assert result.report["customers"] == 160
    assert not result.has_labels  # the example's mapping names no label column


def test_each_account_starts_at_its_application_and_ages(example) -> None:
    _, attributes, result = example
    customers = result.frames["customers"].set_index("customer_id")
    applied = pd.to_datetime(attributes.set_index("account")["application_date"])
    assert (
        customers["created_at"].to_numpy() == applied.loc[customers.index.str[3:]].to_numpy()
    ).all()
    events = EventArrays.from_frames(result.frames)
    X = build_features(events, date(2025, 1, 1))
    tenure = X[:, FEATURE_INDEX["tenure_days"]]
    assert np.unique(tenure).size > 50  # account age is a live feature
    assert np.isfinite(X[:, FEATURE_INDEX["age_years"]]).all()
    assert np.isfinite(X[:, FEATURE_INDEX["declared_income_eur"]]).all()


def test_attributes_are_unknown_before_their_effective_date(example) -> None:
    _, _, result = example
    events = EventArrays.from_frames(result.frames)
    created = result.frames["customers"]["created_at"]
    before = date(2023, 1, 1)
    X = build_features(events, before)
    not_yet = (created >= pd.Timestamp(before)).to_numpy()
    assert not_yet.any()
    assert np.isnan(X[not_yet, FEATURE_INDEX["declared_income_eur"]]).all()
    assert np.isnan(X[not_yet, FEATURE_INDEX["age_years"]]).all()


def test_special_category_columns_are_not_read_unless_allowed(example) -> None:
    records, attributes, result = example
    assert "gender" not in result.side.columns
    assert result.report["special_category_not_read"] == ["gender"]
    allowed = import_monthly_records(records, _example_config(), attributes, allow_sensitive=True)
    assert "gender" in allowed.side.columns
    for frame in allowed.frames.values():
        assert "gender" not in frame.columns  # never an event column


def _one_account(statuses: list[str], **config: object) -> dict[str, pd.DataFrame]:
    records = pd.DataFrame(
        {
            "account": "1",
            "month": [str(pd.Period("2024-01", "M") + k) for k in range(len(statuses))],
            "status": statuses,
        }
    )
    raw = {
        "format": "long",
        "records": {"id_column": "account", "month_column": "month", "status_column": "status"},
        "status": {"preset": "dpd_buckets"},
        **config,
    }
    return import_monthly_records(records, RecordsConfig.from_dict(raw)).frames


def test_dpd_buckets_become_settlement_days() -> None:
    # Jan: paid off (statement 0). Feb: 1-29 dpd = 1 month behind (statement 0, due
    # 20 Feb, unpaid at the end of Feb). Mar: 30-59 dpd = 2 behind (still statement 0).
    # Apr: paid off, so statement 0 was settled in April, 2 months late: 20 Feb + 60 days.
    # May: no balance: no statement issued in May, April's settled early.
    frames = _one_account(["C", "0", "1", "C", "X"])
    inv = frames["invoices"].set_index("invoice_id")
    assert list(inv["issue_date"].dt.strftime("%Y-%m-%d")) == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
    ]
    assert (inv["amount_cents"] == 100).all()  # status only: 1 unit per statement
    pay = frames["payments"].groupby("invoice_id")["paid_at"].max()
    assert pay.loc[inv.index[0]] == pd.Timestamp("2024-02-20") + pd.Timedelta(days=60)
    # February's statement (due 20 Mar) was the one behind at the end of March, and
    # settled with January's in April: on its own due date + 30 days
    assert pay.loc[inv.index[1]] == pd.Timestamp("2024-03-20") + pd.Timedelta(days=30)
    assert pay.loc[inv.index[3]] == pd.Timestamp("2024-05-20") - pd.Timedelta(days=5)


def test_declared_codes_extend_a_preset() -> None:
    vocab = StatusVocabulary.from_dict(
        {"preset": "dpd_buckets", "codes": {"OK": "current", "W": {"months_behind": 7}}}
    )
    behind, full, none_owed, unknown = vocab.decode(pd.Series(["OK", "W", "C", "X", "3", "?"]))
    assert behind.tolist() == [0, 7, 0, 0, 4, 0]
    assert full.tolist() == [False, False, True, True, False, False]
    assert none_owed.tolist() == [False, False, False, True, False, False]
    assert unknown.tolist() == [False] * 5 + [True]
    with pytest.raises(ValueError, match="preset must be one of"):
        StatusVocabulary.from_dict({"preset": "fico"})
    with pytest.raises(ValueError, match="got 'late'"):
        StatusVocabulary.from_dict({"codes": {"L": "late"}})


def test_the_wide_sample_as_long_records_gives_the_same_events() -> None:
    wide = _sample()
    months = ["2005-04", "2005-05", "2005-06", "2005-07", "2005-08", "2005-09"]
    records = pd.concat(
        [
            pd.DataFrame(
                {
                    "ID": wide["ID"],
                    "month": m,
                    "status": wide[f"ST{i}"],
                    "bill": wide[f"BILL{i}"],
                    "paid": wide[f"PAID{i}"],
                }
            )
            for i, m in enumerate(months)
        ]
    ).sort_values(["ID", "month"])
    attributes = wide[["ID", "LIMIT", "AGE", "y"]].assign(applied="2005-04-01")
    config = RecordsConfig.from_dict(
        {
            "format": "long",
            "records": {
                "id_column": "ID",
                "month_column": "month",
                "status_column": "status",
                "statement_column": "bill",
                "paid_column": "paid",
            },
            "status": {"preset": "months_behind", "paid_in_full": [-2, -1]},
            "attributes": {
                "id_column": "ID",
                "effective_date_column": "applied",
                "age_column": "AGE",
                "declared_income_column": "LIMIT",
            },
            "label_column": "y",
            "label_as_of": "2005-10-01",
        }
    )
    long = import_monthly_records(records, config, attributes)
    expected = import_monthly_statements(wide, _config())
    for name in ("invoices", "payments"):
        key = expected.frames[name].columns[0]
        a = expected.frames[name].sort_values(key).reset_index(drop=True)
        b = long.frames[name].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    # the wide import puts age and income on the customer record, the long one in
    # customer_attributes: the same features after the application
    cols = [FEATURE_INDEX[c] for c in ("age_years", "declared_income_eur", "household_adults")]
    on = date(2005, 10, 1)
    np.testing.assert_array_equal(
        build_features(EventArrays.from_frames(expected.frames), on)[:, cols],
        build_features(EventArrays.from_frames(long.frames), on)[:, cols],
    )
    pd.testing.assert_frame_equal(expected.labels, long.labels)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.assign(status=r["status"].replace({"C": "P"})), "not declared (found 'P'"),
        (lambda r: pd.concat([r, r.iloc[[3]]]), "repeat an (account, month) pair"),
        (lambda r: r.drop(index=[4]), "months without a record between"),
        (
            lambda r: r.assign(month=r["month"].replace({"2024-02": "02/2024"})),
            "not a month written YYYY-MM",
        ),
        (lambda r: r.assign(status=r["status"].where(r.index != 2)), "row 2 (EX-1: nan)"),
    ],
)
def test_records_that_cannot_be_mapped_are_refused_with_rows(change, expected) -> None:
    records = pd.DataFrame(
        {
            "account": ["1"] * 6,
            "month": [f"2024-0{k}" for k in range(1, 7)],
            "status": ["C", "C", "0", "C", "C", "X"],
        }
    )
    with pytest.raises(RecordsRejected, match="monthly records rejected") as err:
        import_monthly_records(
            change(records).reset_index(drop=True), _example_config(attributes=None)
        )
    assert expected in str(err.value)


def test_a_label_column_gives_one_label_per_account_at_the_label_date() -> None:
    frames = pd.DataFrame(
        {
            "account": ["1", "1", "2", "2"],
            "month": ["2024-01", "2024-02", "2024-02", "2024-03"],
            "status": ["C", "0", "C", "C"],
            "bad": [1, 1, 0, 0],
        }
    )
    config = _example_config(attributes=None, label_column="bad")
    result = import_monthly_records(frames, config)
    assert result.labels.to_dict("list") == {
        "customer_id": ["EX-1", "EX-2"],
        "as_of": [pd.Timestamp("2024-04-01")] * 2,
        "label": [1, 0],
    }
    frames.loc[1, "bad"] = 0
    with pytest.raises(RecordsRejected, match="more than one label"):
        import_monthly_records(frames, config)


def test_whole_history_features_read_a_status_history() -> None:
    # January's statement (due 20 Feb) is 1, 2, 3 months behind at the end of Feb, Mar,
    # Apr and paid off in May: settled 20 Feb + 90 days = 20 May, 90 days past due. The
    # statements of Feb and Mar are settled then too, 30 days late; the rest early.
    frames = _one_account(["C", "0", "1", "2", "C", "C", "C", "C"])
    events = EventArrays.from_frames(frames)
    x = build_features(events, date(2024, 8, 1))[0]
    assert x[FEATURE_INDEX["days_since_30dpd"]] == (date(2024, 8, 1) - date(2024, 5, 20)).days
    assert x[FEATURE_INDEX["days_since_60dpd"]] == (date(2024, 8, 1) - date(2024, 5, 20)).days
    assert x[FEATURE_INDEX["max_days_past_due_ever"]] == 90
    assert x[FEATURE_INDEX["late_share_ever"]] == pytest.approx(3 / 6)
    # in the middle of it, at 1 May: 30+ and 60+ days past due now (0 days since)
    now = build_features(events, date(2024, 5, 1))[0]
    assert now[FEATURE_INDEX["days_since_30dpd"]] == 0
    assert now[FEATURE_INDEX["days_since_60dpd"]] == 0
    # before it reached 30 days past due: never (unknown), not 0
    early = build_features(events, date(2024, 3, 15))[0]
    assert np.isnan(early[FEATURE_INDEX["days_since_30dpd"]])


def test_months_as_offsets_and_records_without_attributes() -> None:
    # a bureau export counts months back from the extraction month (0 = that month)
    records = pd.DataFrame(
        {
            "ID": [7, 7, 7, 8],
            "MONTHS_BALANCE": [-2, -1, 0, 0],
            "STATUS": ["C", "C", "0", "X"],
        }
    )
    raw = {
        "format": "long",
        "records": {
            "id_column": "ID",
            "month_column": "MONTHS_BALANCE",
            "status_column": "STATUS",
            "months_relative_to": "2024-06",
        },
        "status": {"preset": "dpd_buckets"},
    }
    result = import_monthly_records(records, RecordsConfig.from_dict(raw))
    customers = result.frames["customers"].set_index("customer_id")
    # no attributes: each record starts on the first day of the account's first month
    assert customers.loc["7", "created_at"] == pd.Timestamp("2024-04-01")
    assert customers.loc["8", "created_at"] == pd.Timestamp("2024-06-01")
    assert customers["birth_year"].isna().all()
    assert len(result.frames["customer_attributes"]) == 0
    assert result.report["months"] == 3
    assert set(result.frames["invoices"]["customer_id"]) == {"7"}  # X: no balance, no bill


def test_cli_import_writes_labels_with_what_they_mean(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from training.label_definition import read_label_file

    pd.DataFrame(
        {
            "account": ["1", "1", "2"],
            "month": ["2024-01", "2024-02", "2024-02"],
            "status": ["C", "0", "C"],
            "bad": [1, 1, 0],
        }
    ).to_csv(tmp_path / "records.csv", index=False)
    mapping = {
        "format": "long",
        "records": {"id_column": "account", "month_column": "month", "status_column": "status"},
        "status": {"preset": "dpd_buckets"},
        "label_column": "bad",
        "label_horizon_days": 365,
        "label_definition": "60+ days past due within 12 months",
    }
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    out = tmp_path / "events"
    args = ["import", str(tmp_path / "records.csv"), "--mapping", str(tmp_path / "mapping.json")]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    labels = read_label_file(out / "labels.parquet", None, 90)
    assert labels.warning is None
    assert labels.definition.horizon_days == 365
    assert labels.definition.definition == "60+ days past due within 12 months"
    assert labels.frame["label"].tolist() == [1, 0]


def _dated_attributes(**changes: object) -> tuple[pd.DataFrame, pd.DataFrame, RecordsConfig]:
    """Two accounts of 2024; account 1 applies in January and states a new job and income
    in April (the update leaves birth date and household out)."""
    records = pd.DataFrame(
        {
            "account": ["1"] * 6 + ["2"] * 3,
            "month": [f"2024-0{m}" for m in range(1, 7)] + ["2024-04", "2024-05", "2024-06"],
            "status": "C",
        }
    )
    attributes = pd.DataFrame(
        {
            "account": ["1", "1", "2"],
            "as_of": ["2024-01-03", "2024-04-10", "2024-03-20"],
            "applied": ["2024-01-02", None, "2024-03-20"],
            "born": ["1980-05-01", None, "1999-01-01"],
            "income": [2500, 1200, 1800],
            "household": ["couple", None, "single"],
            "job": ["E", "U", "S"],
        }
    )
    for key, value in changes.items():
        column, row = key.rsplit("_", 1)
        attributes.loc[int(row), column] = value
    raw = {
        "format": "long",
        "records": {"id_column": "account", "month_column": "month", "status_column": "status"},
        "status": {"preset": "dpd_buckets"},
        "attributes": {
            "id_column": "account",
            "effective_date_column": "as_of",
            "application_date_column": "applied",
            "birth_date_column": "born",
            "declared_income_column": "income",
            "household_column": "household",
            "household_map": {"couple": "couple", "single": "single"},
            "employment_column": "job",
            "employment_map": {"E": "employed", "U": "unemployed", "S": "student"},
        },
    }
    return records, attributes, RecordsConfig.from_dict(raw)


def test_dated_attribute_rows_become_customer_attributes_used_point_in_time() -> None:
    records, attributes, config = _dated_attributes()
    result = import_monthly_records(records, config, attributes)
    rows = TABLES["customer_attributes"][0].validate(result.frames["customer_attributes"])
    assert rows["attribute_id"].tolist() == ["1@2024-01-03", "1@2024-04-10", "2@2024-03-20"]
    assert rows["employment"].tolist() == ["employed", "unemployed", "student"]
    assert result.report["attribute_rows"] == 3
    customers = result.frames["customers"].set_index("customer_id")
    assert customers.loc["1", "created_at"] == pd.Timestamp("2024-01-03")  # first statement
    events = EventArrays.from_frames(result.frames)
    f = {
        on: pd.DataFrame(build_features(events, on), columns=list(FEATURE_INDEX)).iloc[0]
        for on in (date(2024, 4, 10), date(2024, 4, 11))
    }
    # on the update's own day it is not yet known; the day after it is
    assert f[date(2024, 4, 10)]["declared_income_eur"] == 2500.0
    assert f[date(2024, 4, 10)]["employment_status"] == 0
    assert f[date(2024, 4, 11)]["declared_income_eur"] == 1200.0
    assert f[date(2024, 4, 11)]["employment_status"] == 5
    assert f[date(2024, 4, 11)]["household_adults"] == 2  # from the application
    assert f[date(2024, 4, 11)]["days_since_application"] == 100


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"job_2": "X"}, "column 'job': 1 value(s) not an employment status"),
        ({"applied_0": "2024-02-01"}, "not on or before the row's effective date"),
        ({"as_of_1": "2024-01-03"}, "two rows for one effective date"),
        ({"as_of_2": "20/03/2024"}, "column 'as_of': 1 value(s) not a date"),
    ],
)
def test_attribute_rows_that_cannot_be_mapped_are_refused_with_rows(changes, expected) -> None:
    from training.importers import AttributesRejected

    records, attributes, config = _dated_attributes(**changes)
    with pytest.raises(AttributesRejected, match=re.escape(expected)):
        import_monthly_records(records, config, attributes)

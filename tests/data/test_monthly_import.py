"""The monthly-statement importer: mapping, contract validity, label alignment.

Built on a 50-row table made here (never the real Taiwan file), with a few hand-written
accounts whose expected events are worked out in the comments.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_INDEX, build_features
from features.events import EventArrays, to_day
from features.schemas import TABLES
from training.dataset import snapshots_from_external_labels
from training.importers import MappingConfig, SourceRejected, import_monthly_statements

MONTHS = ["2005-04", "2005-05", "2005-06", "2005-07", "2005-08", "2005-09"]
AS_OF = date(2005, 10, 1)


def _config(**overrides: object) -> MappingConfig:
    raw = {
        "id_column": "ID",
        "label_column": "y",
        "label_as_of": AS_OF.isoformat(),
        "months": [
            {"period": p, "statement": f"BILL{i}", "paid": f"PAID{i}", "status": f"ST{i}"}
            for i, p in enumerate(MONTHS)
        ],
        "due_days": 20,
        "paid_early_days": 5,
        "cents_per_unit": 100,
        "customer": {
            "created_at": "2004-10-01",
            "declared_income_column": "LIMIT",
            "age_column": "AGE",
            "age_reference_year": 2005,
            "household_column": "MARRIAGE",
            "household_map": {"1": "couple", "2": "single"},
        },
        "sensitive_columns": ["SEX", "MARRIAGE"],
        "side_columns": ["SEX", "MARRIAGE", "EDUCATION"],
        **overrides,
    }
    return MappingConfig.from_dict(raw)


def _sample(n: int = 50, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"ID": np.arange(1, n + 1)})
    df["LIMIT"] = rng.integers(1, 50, n) * 10_000
    df["AGE"] = rng.integers(21, 70, n)
    df["SEX"] = rng.integers(1, 3, n)
    df["MARRIAGE"] = rng.integers(1, 3, n)
    df["EDUCATION"] = rng.integers(1, 5, n)
    for i in range(6):
        df[f"BILL{i}"] = rng.integers(-500, 60_000, n)
        df[f"PAID{i}"] = rng.integers(0, 8_000, n)
        df[f"ST{i}"] = rng.choice([-2, -1, 0, 0, 0, 1, 2, 3], n)
    df["y"] = rng.integers(0, 2, n)
    # account 1: always paid in full before the due date
    df.loc[0, [f"ST{i}" for i in range(6)]] = -1
    df.loc[0, [f"BILL{i}" for i in range(6)]] = 1_000
    df.loc[0, [f"PAID{i}" for i in range(6)]] = 1_000
    # account 2: on time until July, then 1 month behind in Aug and 2 months in Sep
    df.loc[1, [f"ST{i}" for i in range(6)]] = [0, 0, 0, 0, 1, 2]
    df.loc[1, [f"BILL{i}" for i in range(6)]] = [500, 500, 500, 500, 1_000, 1_500]
    df.loc[1, [f"PAID{i}" for i in range(6)]] = 0
    # account 3: 2 months behind already in April (a carry-over statement from February)
    df.loc[2, [f"ST{i}" for i in range(6)]] = [2, 0, 0, 0, 0, 0]
    df.loc[2, [f"BILL{i}" for i in range(6)]] = [700, 700, 700, 0, 0, 0]
    df.loc[2, [f"PAID{i}" for i in range(6)]] = 0
    return df


@pytest.fixture(scope="module")
def imported() -> tuple[pd.DataFrame, object]:
    source = _sample()
    return source, import_monthly_statements(source, _config())


def _settled(frames: dict[str, pd.DataFrame]) -> pd.Series:
    """Invoice id -> the day its payments first add up to its amount (NaT = open)."""
    inv = frames["invoices"].set_index("invoice_id")
    amount = inv["amount_cents"].to_dict()
    pay = frames["payments"].sort_values("paid_at")
    out = {}
    for iid, group in pay.groupby("invoice_id"):
        cum = group["amount_cents"].cumsum()
        hit = group["paid_at"][cum >= amount[iid]]
        out[iid] = hit.iloc[0] if len(hit) else pd.NaT
    return pd.Series(out).reindex(inv.index)


def test_every_table_validates_against_the_contract(imported: tuple) -> None:
    _, result = imported
    for name, frame in result.frames.items():
        TABLES[name][0].validate(frame)  # raises on any violation
    assert set(result.frames) == set(TABLES)


def test_statements_become_invoices_with_month_end_issue_and_due_date(imported: tuple) -> None:
    source, result = imported
    inv = result.frames["invoices"]
    first = inv[inv["customer_id"] == "1"].sort_values("issue_date")
    assert list(first["issue_date"].dt.date) == [
        date(2005, 4, 30),
        date(2005, 5, 31),
        date(2005, 6, 30),
        date(2005, 7, 31),
        date(2005, 8, 31),
        date(2005, 9, 30),
    ]
    assert ((first["due_date"] - first["issue_date"]).dt.days == 20).all()
    assert (first["amount_cents"] == 100_000).all()
    # non-positive statements make no invoice; positive ones all do (plus carry-overs)
    in_window = inv[inv["issue_date"] >= pd.Timestamp("2005-04-30")]
    expected = int((source[[f"BILL{i}" for i in range(6)]] > 0).to_numpy().sum())
    assert len(in_window) == expected


def test_delay_status_sets_the_settlement_day(imported: tuple) -> None:
    _, result = imported
    settled = _settled(result.frames)
    inv = result.frames["invoices"].set_index("invoice_id")
    # account 1: paid in full -> settled 5 days before each due date (the last not due yet)
    one = inv[inv["customer_id"] == "1"].sort_values("issue_date")
    for iid, row in one.iloc[:-1].iterrows():
        assert settled[iid] == row["due_date"] - pd.Timedelta(days=5)
    assert pd.isna(settled[one.index[-1]])  # the September statement is due after as_of
    # account 2: the July statement (due Aug 20) is still 2 months behind in September -> open
    two = inv[inv["customer_id"] == "2"].sort_values("issue_date")
    july, august = two.index[3], two.index[4]
    assert pd.isna(settled[july]) and pd.isna(settled[august])
    assert settled[two.index[2]] == two.loc[two.index[2], "due_date"]  # June: on time (status 0)
    # account 3: the February carry-over is 2 months behind in April, caught up in May
    three = inv[inv["customer_id"] == "3"].sort_values("issue_date")
    assert three["issue_date"].iloc[0] == pd.Timestamp("2005-02-28")
    assert three["amount_cents"].iloc[0] == 70_000  # the first positive statement
    assert settled[three.index[0]] == three["due_date"].iloc[0] + pd.Timedelta(days=60)


def test_features_see_the_delay_magnitude(imported: tuple) -> None:
    _, result = imported
    events = EventArrays.from_frames(result.frames)
    X = build_features(events, AS_OF)
    row = {cid: i for i, cid in enumerate(events.customer_ids.tolist())}
    dpd = X[:, FEATURE_INDEX["current_days_past_due"]]
    assert dpd[row["2"]] == to_day(AS_OF) - to_day(date(2005, 8, 20))  # July statement, 42 days
    assert dpd[row["1"]] == 0
    assert X[row["1"], FEATURE_INDEX["paid_before_due_share_365d"]] == 1.0


def test_real_payments_are_kept_and_never_settle_early(imported: tuple) -> None:
    source, result = imported
    pay = result.frames["payments"]
    real = pay[~pay["payment_id"].str.endswith("-s")]
    # every real payment amount comes from the source (none invented), at most the source total
    assert (
        real["amount_cents"].sum()
        <= int(source[[f"PAID{i}" for i in range(6)]].to_numpy().sum()) * 100
    )
    assert (
        real.groupby("customer_id")["amount_cents"].sum().get("1") == 5 * 100_000
    )  # May..Sep payments
    assert result.report["payments_dropped"] >= 0


def test_labels_line_up_with_customers(imported: tuple) -> None:
    source, result = imported
    labels = result.labels
    assert list(labels["customer_id"]) == [str(i) for i in source["ID"]]
    assert (labels["label"].to_numpy() == source["y"].to_numpy()).all()
    assert (pd.to_datetime(labels["as_of"]) == pd.Timestamp(AS_OF)).all()
    events = EventArrays.from_frames(result.frames)
    snaps = snapshots_from_external_labels(events, labels)
    assert len(snaps) == len(source)
    truth = dict(zip(labels["customer_id"], source["y"], strict=True))
    ids = events.customer_ids[snaps.customer]
    assert (snaps.y == np.array([truth[c] for c in ids], dtype=np.float64)).all()
    # every event is dated before as_of: the label window is not leaked into features
    for name, frame in result.frames.items():
        date_col = TABLES[name][2]
        if len(frame):
            assert (pd.to_datetime(frame[date_col]) < pd.Timestamp(AS_OF)).all(), name


def test_sensitive_attributes_only_when_allowed() -> None:
    source = _sample()
    default = import_monthly_statements(source, _config())
    assert set(default.frames["customers"]["household_type"]) == {"single"}
    assert list(default.side.columns) == ["customer_id", "EDUCATION"]
    allowed = import_monthly_statements(source, _config(), allow_sensitive=True)
    expected = source["MARRIAGE"].map({1: "couple", 2: "single"}).tolist()
    assert allowed.frames["customers"]["household_type"].tolist() == expected
    assert {"SEX", "MARRIAGE"} <= set(allowed.side.columns)
    # without the flag, a source without the sensitive columns imports fine
    import_monthly_statements(source.drop(columns=["SEX", "MARRIAGE"]), _config())


def test_customer_record_from_static_columns(imported: tuple) -> None:
    source, result = imported
    cust = result.frames["customers"].set_index("customer_id")
    assert cust.loc["1", "birth_year"] == 2005 - source.loc[0, "AGE"]
    assert cust.loc["1", "declared_net_income_cents"] == source.loc[0, "LIMIT"] * 100


def test_bad_config_is_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="consecutive"):
        _config(
            months=[
                {"period": "2005-04", "statement": "a", "paid": "b", "status": "c"},
                {"period": "2005-06", "statement": "d", "paid": "e", "status": "f"},
            ]
        )
    with pytest.raises(ValueError, match="lacks mapped columns"):
        import_monthly_statements(_sample().drop(columns=["BILL3"]), _config())


def test_missing_or_fractional_statuses_labels_and_amounts_are_refused_with_rows() -> None:
    """A missing status used to become -2**63 (settling every open statement with
    synthetic payments) and a missing label -9.2e18: now the import stops and names them."""
    source = _sample()
    source["ST3"] = source["ST3"].astype(float)
    source.loc[1, "ST3"] = np.nan  # account 2, behind from August: would settle all
    source.loc[[4, 7], "y"] = np.nan
    source["ST5"] = source["ST5"].astype(float)
    source.loc[5, "ST5"] = 1.5
    source["PAID0"] = source["PAID0"].astype(object)
    source.loc[6, "PAID0"] = "n/a"
    with pytest.raises(SourceRejected) as rejected:
        import_monthly_statements(source, _config())
    message = str(rejected.value)
    assert "column 'ST3': 1 value(s) missing, row 1 (ID 2)" in message
    assert "column 'y': 2 value(s) missing, row 4 (ID 5), row 7 (ID 8)" in message
    assert "column 'ST5': 1 value(s) not a whole number, row 5 (ID 6: 1.5)" in message
    assert "column 'PAID0': 1 value(s) not a finite number, row 6 (ID 7: 'n/a')" in message
    assert isinstance(rejected.value, ValueError)


def test_account_ids_are_checked_as_they_will_be_stored() -> None:
    """A missing id became the customer "nan", and ids 1 and "1" one customer."""
    source = _sample()
    source["ID"] = source["ID"].astype(object)
    source.loc[3, "ID"] = None
    source.loc[4, "ID"] = "1"  # the same customer as the integer 1 in row 0
    with pytest.raises(SourceRejected) as rejected:
        import_monthly_statements(source, _config())
    message = str(rejected.value)
    assert "1 id(s) missing, rows 3" in message
    assert "2 rows share an id" in message and "row 4 ('1' → 1)" in message
    floats = _sample()
    floats["ID"] = floats["ID"].astype(float)  # what a gap elsewhere in the column does
    imported = import_monthly_statements(floats, _config())
    assert imported.frames["customers"]["customer_id"].iloc[0] == "1"


def test_cli_import_writes_an_ingestible_folder_and_labels(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from features.io import read_event_dir

    source = _sample()
    source.to_csv(tmp_path / "accounts.csv", index=False)
    config = {
        "id_column": "ID",
        "label_column": "y",
        "label_as_of": AS_OF.isoformat(),
        "months": [
            {"period": p, "statement": f"BILL{i}", "paid": f"PAID{i}", "status": f"ST{i}"}
            for i, p in enumerate(MONTHS)
        ],
        "sensitive_columns": ["SEX", "MARRIAGE"],
    }
    (tmp_path / "map.json").write_text(json.dumps(config))
    out = tmp_path / "events"
    result = CliRunner().invoke(
        app,
        [
            "import",
            str(tmp_path / "accounts.csv"),
            "--mapping",
            str(tmp_path / "map.json"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    frames = read_event_dir(out)
    for name, frame in frames.items():
        TABLES[name][0].validate(frame)
    labels = pd.read_parquet(out / "labels.parquet")
    assert len(labels) == len(source)

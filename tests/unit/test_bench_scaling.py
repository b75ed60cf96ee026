"""The scaling benchmark's derived figures: growth between sizes and rows carried over."""

from __future__ import annotations

import pytest

from benchmarks.scaling import (
    carried_over,
    growth_between,
    per_customer_month_us,
    simulator_speed_note,
)


def _row(n: int, train: float, oracles: float | None = None, **extra) -> dict:
    stages = {"read events": 0.1 * train, "model": 0.9 * train - (oracles or 0.0)}
    if oracles is not None:
        stages["oracle"] = oracles
    return {
        "customers": n,
        "simulate_s": n / 1000,
        "ingest_s": n / 500,
        "train_s": train,
        "train_stages_s": stages,
        **extra,
    }


def test_growth_is_per_consecutive_pair_and_linear_work_reads_one():
    rows = [_row(10_000, 10.0), _row(100_000, 100.0), _row(1_000_000, 1000.0)]
    growth = growth_between(rows)
    assert [(g["from"], g["to"]) for g in growth] == [(10_000, 100_000), (100_000, 1_000_000)]
    for g in growth:
        for key in ("simulate", "ingest", "train", "train_without_oracles"):
            assert g[key] == pytest.approx(1.0)


def test_growth_without_oracles_compares_the_work_both_sizes_did():
    # the smaller size spent half its training on oracles the larger one cannot fit
    small = _row(100_000, 100.0, oracles=50.0)
    large = _row(1_000_000, 500.0)  # 10x the work that both did
    (g,) = growth_between([small, large])
    assert g["train"] == pytest.approx(0.699, abs=1e-3)  # log10(5): looks sub-linear
    assert g["train_without_oracles"] == pytest.approx(1.0)


def test_growth_without_stages_is_left_out():
    a, b = _row(10_000, 10.0), _row(100_000, 100.0)
    del a["train_stages_s"]
    (g,) = growth_between([a, b])
    assert "train_without_oracles" not in g and g["train"] == pytest.approx(1.0)


def test_only_unmeasured_sizes_of_the_same_feature_set_are_carried_over():
    previous = {
        "date": "2026-12-01T14:35:02+00:00",
        "machine": {"cpu": "Intel(R) Xeon(R) Processor"},
        "sizes": [
            _row(10_000, 10.0, feature_set="2026.12.1"),
            _row(1_000_000, 1000.0, feature_set="2026.12.1"),
            _row(2_000_000, 2000.0, feature_set="2026.11.3"),  # older features: dropped
        ],
        "quality": {"10,000": {"model": {}}, "1,000,000": {"model": {"roc_auc": 0.94}}},
    }
    rows, quality = carried_over(previous, {10_000, 100_000}, "2026.12.1")
    assert [r["customers"] for r in rows] == [1_000_000]
    assert rows[0]["measured"] == previous["date"]
    assert rows[0]["measured_on"] == "Intel(R) Xeon(R) Processor"  # a VM can change hardware
    assert quality == {"1,000,000": {"model": {"roc_auc": 0.94}}}
    assert carried_over(None, {10_000}, "2026.12.1") == ([], {})


def test_growth_to_a_chunk_built_size_compares_the_work_without_oracles():
    """The 1,000,000-customer store fits no oracles and predates per-stage times: its
    whole training is compared with the smaller size's training without its oracles
    (0.83 on the totals read as sub-linear; like for like it is 0.96)."""
    import math

    from benchmarks.common import ORACLE_STAGES
    from benchmarks.scaling import growth_between

    small = {
        "customers": 100_000,
        "simulate_s": 41.1,
        "ingest_s": 96.1,
        "train_s": 274.9,
        "train_stages_s": {"model": 203.3, ORACLE_STAGES[0]: 40.0, ORACLE_STAGES[1]: 31.6},
    }
    big = {"customers": 1_000_000, "simulate_s": 488.1, "ingest_s": 1450.8, "train_s": 1848.2}
    (step,) = growth_between([small, big])
    assert step["train"] == math.log(1848.2 / 274.9) / math.log(10)
    assert round(step["train_without_oracles"], 2) == 0.96


def test_simulator_time_is_per_customer_and_simulated_month():
    # 10,000 customers over 24 months in 12 s: 50 µs per customer-month (20,000 per second);
    # a row without months (carried over from older results) is 24 months
    rows = [
        {"customers": 10_000, "months": 24, "simulate_s": 12.0},
        {"customers": 20_000, "simulate_s": 12.0},
    ]
    assert per_customer_month_us(rows[0]) == pytest.approx(50.0)
    assert per_customer_month_us(rows[1]) == pytest.approx(25.0)
    note = simulator_speed_note(rows)
    assert "10,000: 50.0 µs (20,000 customer-months/s)" in note
    assert "20,000: 25.0 µs (40,000 customer-months/s)" in note

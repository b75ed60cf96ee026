"""The training_scale benchmark's summary: AUC against in-process, growth exponents."""

from __future__ import annotations

import pytest

from benchmarks.training_scale import growth, summarise


def _run(size, variant, seconds, peak, auc):
    return {
        "size": size,
        "variant": variant,
        "seconds": seconds,
        "peak": {"peak_tree_rss_mb": peak},
        "metrics": {"roc_auc": auc},
    }


def test_summary_compares_each_variant_with_in_process_at_the_same_size():
    runs = [
        _run(100_000, "in_process", 100, 4000, 0.80),
        _run(100_000, "sample", 40, 1000, 0.799),
        _run(1_000_000, "sample", 400, 5000, 0.801),
    ]
    summary = summarise(runs)
    sample = summary["sample"]
    assert sample["sizes"][0]["auc_minus_in_process"] == pytest.approx(-0.001)
    assert sample["sizes"][1]["auc_minus_in_process"] is None  # no in-process run at 1M
    assert sample["growth_seconds"] == pytest.approx(1.0)
    assert sample["growth_peak"] == pytest.approx(0.69897, abs=1e-4)
    assert summary["in_process"]["growth_seconds"] is None  # one size only


def test_without_an_in_process_run_the_partitioned_fit_is_the_reference():
    runs = [
        _run(1_000_000, "partitioned", 700, 8000, 0.941),
        _run(1_000_000, "sample", 500, 4600, 0.9398),
        _run(3_000_000, "sample", 1500, 9000, 0.942),
    ]
    sample = summarise(runs)["sample"]["sizes"]
    assert sample[0]["auc_minus_in_process"] == pytest.approx(-0.0012)
    assert sample[1]["auc_minus_in_process"] is None  # nothing fitted on all at 3M


def test_growth_needs_two_sizes():
    assert growth([{"customers": 10, "s": 1.0}], "s") is None
    assert growth([{"customers": 10, "s": 1.0}, {"customers": 100, "s": 100.0}], "s") == 2.0

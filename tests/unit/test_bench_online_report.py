"""The online benchmark's pay-later verdict (benchmarks.online.report) on hand-made rounds:
ratios to the bare endpoint of the same round, and issue 21's goal and moonshot per round."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.online.report import RatioGoal, pay_later_against_bare


def _load(
    bare: list[tuple[float, float]], bnpl: list[tuple[float, float]], keyed: bool = True
) -> dict[str, Any]:
    """A load result with (requests/s, p99 ms) per round for each endpoint."""
    return {
        "bare": {"rps_rounds": [r for r, _ in bare], "p99_rounds_ms": [p for _, p in bare]},
        "bnpl": {
            "rps_rounds": [r for r, _ in bnpl],
            "p99_rounds_ms": [p for _, p in bnpl],
            "keyed": keyed,
        },
    }


def _rows(lines: list[str]) -> list[list[str]]:
    """The table's data rows, split into cells."""
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| round")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]


def test_each_round_is_judged_on_its_own_ratios_to_bare() -> None:
    lines = pay_later_against_bare(
        _load(
            bare=[(1000, 5.0), (1000, 5.0), (2000, 4.0)],
            bnpl=[(300, 10.0), (600, 7.0), (400, 12.0)],
        )
    )
    assert _rows(lines) == [
        ["1", "0.300 (300 / 1,000 requests/s)", "2.00 (10.0 / 5.0 ms)", "met", "missed (throughput, p99)"],
        ["2", "0.600 (600 / 1,000 requests/s)", "1.40 (7.0 / 5.0 ms)", "met", "met"],
        ["3", "0.200 (400 / 2,000 requests/s)", "3.00 (12.0 / 4.0 ms)", "missed (throughput, p99)", "missed (throughput, p99)"],
    ]  # fmt: skip
    assert lines[-1] == (
        "Issue 21 goal in every round: **missed** (met in 2 of 3); "
        "moonshot: **missed** (met in 1 of 3)."
    )
    assert lines[1].startswith("Keyed pay-later (an `Idempotency-Key` per order)")


def test_the_goal_is_met_only_when_every_round_meets_it() -> None:
    lines = pay_later_against_bare(
        _load(bare=[(1000, 5.0), (1000, 5.0)], bnpl=[(250, 12.5), (260, 12.0)])
    )
    assert [row[3] for row in _rows(lines)] == ["met", "met"]  # the bounds themselves count
    assert lines[-1].startswith("Issue 21 goal in every round: **met** (met in 2 of 2)")


def test_a_run_without_keys_says_so() -> None:
    lines = pay_later_against_bare(_load(bare=[(1000, 5.0)], bnpl=[(300, 10.0)], keyed=False))
    assert lines[1].startswith("Pay-later (sent without an `Idempotency-Key` in this run)")


def test_no_rounds_no_verdict() -> None:
    assert pay_later_against_bare({"bare": {"rps": 1000.0}, "bnpl": {"rps": 300.0}}) == []


@pytest.mark.parametrize(
    ("throughput", "p99", "missed"),
    [
        (0.25, 2.5, []),
        (0.249, 2.5, ["throughput"]),
        (0.25, 2.51, ["p99"]),
        (0.1, 4.0, ["throughput", "p99"]),
    ],
)
def test_shortfalls_name_what_a_round_missed(
    throughput: float, p99: float, missed: list[str]
) -> None:
    assert RatioGoal(min_throughput=0.25, max_p99=2.5).shortfalls(throughput, p99) == missed

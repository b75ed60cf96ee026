"""The calibration table: world rates on a hand-built world with known answers, verdicts."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from features.io import write_event_dir
from training.simulation.calibration import (
    PublishedFigure,
    WorldRate,
    calibration_table,
    load_published,
    main,
    to_markdown,
    verdict,
    world_rates,
)

END = date(2026, 1, 1)  # the last year is 2025; invoices due by 2025-05-06 are mature


def _ts(*days: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d) for d in days]


def _world() -> dict[str, pd.DataFrame]:
    """C1, C2, C4 known since 2024; C3 joins mid-2025 (outside the whole-year base).

    I1 C1 regular, paid on time. I2 C1 regular, never paid, walks every step.
    I3 C2 pay-later, reminded, paid late. I4 C2 pay-later, up to the agency, paid 15 June.
    I5 C2 regular, not mature (due November). I6 C3 regular, reminded, not mature.
    """
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4"],
            "household_type": ["single"] * 4,
            "birth_year": pd.array([1980] * 4, dtype="Int64"),
            "declared_net_income_cents": pd.array([None] * 4, dtype="Int64"),
            "created_at": _ts("2024-01-01", "2024-01-01", "2025-06-01", "2024-01-01"),
        }
    )
    invoices = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "I4", "I5", "I6"],
            "customer_id": ["C1", "C1", "C2", "C2", "C2", "C3"],
            "issue_date": _ts(
                "2025-01-18", "2025-02-15", "2025-02-15", "2025-03-18", "2025-10-18", "2025-06-17"
            ),
            "due_date": _ts(
                "2025-02-01", "2025-03-01", "2025-03-01", "2025-04-01", "2025-11-01", "2025-07-01"
            ),
            "amount_cents": [100_00] * 6,
            "product": ["energy", "energy", "bnpl", "bnpl", "energy", "energy"],
            "collection_method": ["transfer"] * 6,
        }
    )
    payments = pd.DataFrame(
        {
            "payment_id": ["P1", "P3", "P4", "P6"],
            "customer_id": ["C1", "C2", "C2", "C3"],
            "invoice_id": ["I1", "I3", "I4", "I6"],
            "paid_at": _ts("2025-02-01", "2025-03-10", "2025-06-15", "2025-07-10"),
            "amount_cents": [100_00] * 4,
            "method": ["transfer"] * 4,
        }
    )
    steps = [
        ("I2", "C1", "2025-03-08", "reminder"),
        ("I2", "C1", "2025-03-22", "fourteen_day_letter"),
        ("I2", "C1", "2025-04-07", "agency"),
        ("I2", "C1", "2025-06-29", "bailiff"),
        ("I3", "C2", "2025-03-03", "reminder"),
        ("I4", "C2", "2025-04-03", "reminder"),
        ("I4", "C2", "2025-04-22", "fourteen_day_letter"),
        ("I4", "C2", "2025-06-30", "agency"),
        ("I5", "C2", "2025-11-08", "reminder"),
        ("I6", "C3", "2025-07-08", "reminder"),
    ]
    collection_steps = pd.DataFrame(
        {
            "step_id": [f"S{i}" for i in range(len(steps))],
            "customer_id": [s[1] for s in steps],
            "invoice_id": [s[0] for s in steps],
            "step_date": _ts(*(s[2] for s in steps)),
            "step": [s[3] for s in steps],
            "cost_cents": [0] * len(steps),
        }
    )
    debit_attempts = pd.DataFrame(
        {
            "attempt_id": ["D1", "D2", "D3", "D4"],
            "customer_id": ["C1", "C1", "C2", "C2"],
            "invoice_id": ["I1", "I2", "I2", "I3"],
            "attempted_at": _ts("2025-02-01", "2025-03-01", "2025-03-08", "2025-03-01"),
            "amount_cents": [100_00] * 4,
            "result": ["success", "failed", "failed", "reversed"],
            "reason_code": [None, "AM04", "MS03", "MD06"],
        }
    )
    arrangements = pd.DataFrame(
        {
            "arrangement_id": ["A1", "A2", "A3", "A4"],
            "customer_id": ["C1", "C2", "C2", "C3"],
            "start_date": _ts("2025-06-01", "2024-06-01", "2024-09-01", "2024-12-01"),
            "debt_cents": [100_00] * 4,
            "monthly_amount_cents": [20_00] * 4,
            "term_months": [5] * 4,
            "outcome": ["kept", "broken", "broken", "active"],
            "end_date": _ts("2025-10-01", "2024-08-01", "2024-11-01", "NaT"),
        }
    )
    return {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
        "debit_attempts": debit_attempts,
        "collection_steps": collection_steps,
        "arrangements": arrangements,
    }


@pytest.fixture(scope="module")
def rates() -> dict[str, WorldRate]:
    return world_rates(_world(), end=END)


@pytest.mark.parametrize(
    ("name", "value", "denominator"),
    [
        ("invoices_reminded", 1 / 2, 2),  # I1, I2 (I5, I6 not mature)
        ("invoices_at_letter", 1 / 2, 2),
        ("invoices_at_agency", 1 / 2, 2),
        ("invoices_at_bailiff", 1 / 2, 2),
        ("bnpl_reminded", 1.0, 2),  # I3, I4
        ("bnpl_at_letter", 1 / 2, 2),
        ("bnpl_at_agency", 1 / 2, 2),
        ("bnpl_agency_of_reminded", 1 / 2, 2),
        ("agency_to_bailiff", 1 / 2, 2),  # I2 went on, I4 did not
        ("direct_debits_returned", 3 / 4, 4),
        ("direct_debits_failed", 2 / 4, 4),
        ("arrangements_kept", 1 / 3, 3),  # the active one is not counted
        ("customers_reminded_12m", 2 / 3, 3),  # C1, C2 of C1, C2, C4 (C3 joined mid-year)
        ("customers_paid_late_12m", 2 / 3, 3),  # C1 (I2 unpaid), C2 (I3 late)
        ("customers_arrangement_12m", 1 / 3, 3),  # only C1 started one in 2025
    ],
)
def test_world_rates_on_a_hand_built_world(
    rates: dict[str, WorldRate], name: str, value: float, denominator: int
) -> None:
    assert rates[name].value == pytest.approx(value)
    assert rates[name].denominator == denominator
    assert rates[name].definition


def test_problem_debt_is_the_mean_point_in_time_share_over_the_year(
    rates: dict[str, WorldRate],
) -> None:
    # I2 (due 1 March, never paid) is 90+ days overdue from 30 May: the month starts
    # June..December flag C1, among 4 known customers (C3 from June). I4 was paid before
    # it reached 90 days. January..May: nobody.
    assert rates["customers_problem_debt"].value == pytest.approx(7 * (1 / 4) / 12)


def test_agency_cases_per_customer_year(rates: dict[str, WorldRate]) -> None:
    # I2 and I4 handed over in 2025, three customers known the whole year
    assert rates["agency_cases_per_customer_year"].value == pytest.approx(2 / 3)
    assert rates["agency_cases_per_customer_year"].unit == "per_year"


def test_end_defaults_to_the_day_after_the_last_event() -> None:
    frames = _world()
    inferred = world_rates(frames)
    # the last event is the reminder of 8 November 2025: invoices due by 13 March are
    # mature, so I1 and I2 count and nothing else changes for the regular invoices
    assert inferred["invoices_reminded"].denominator == 2
    assert inferred["bnpl_reminded"].denominator == 1  # I3 only; I4 is due in April


FIGURE = PublishedFigure(
    id="x",
    rate="r",
    label="x",
    value=0.10,
    unit="share",
    year="2024",
    source="S 2024",
    citation="S",
    comparability="",
)


@pytest.mark.parametrize(
    ("world", "figure", "expected"),
    [
        (0.12, FIGURE, "close"),
        (0.15, FIGURE, "close"),  # exactly the factor 1.5
        (0.16, FIGURE, "far: world is 1.6x the published figure; the definitions do not"),
        (0.05, FIGURE, "far: world is 0.5x the published figure; the definitions do not"),
        (
            0.05,
            replace(FIGURE, world_expected="lower", expected_reason="one creditor"),
            "far: world is 0.5x the published figure, lower as expected (one creditor)",
        ),
        (
            0.11,
            replace(FIGURE, world_expected="lower", expected_reason="one creditor"),
            "close in value, but lower was expected (one creditor): the world is higher",
        ),
        (0.08, replace(FIGURE, world_expected="lower"), "close"),
        (0.09, replace(FIGURE, bound="at_most"), "close (within the published upper bound)"),
        (0.42, replace(FIGURE, bound="at_most"), "far: world is 4.2x the published upper bound"),
        (0.0, FIGURE, "far: the world has none"),
        (float("nan"), FIGURE, "no world value"),
    ],
)
def test_verdict(world: float, figure: PublishedFigure, expected: str) -> None:
    assert verdict(world, figure).startswith(expected)


def test_calibration_table_rows() -> None:
    rates = {"r": WorldRate(0.13, "d", 100)}
    other = replace(FIGURE, rate="not_measured")
    rows = calibration_table(rates, [FIGURE, other])
    assert [r.rate for r in rows] == ["r", "not_measured"]
    assert rows[0].world == 0.13 and rows[0].published == 0.10
    assert rows[0].difference == pytest.approx(0.03)
    assert rows[0].verdict == "close" and rows[0].source == "S 2024"
    assert math.isnan(rows[1].world) and rows[1].verdict.startswith("no world value")
    text = to_markdown(rows, rates)
    assert "| 13.0 % | 10.0 % | S 2024 [1] | +3.0 pp | close |" in text
    assert "n/a" in text and "1. S; figure for 2024" in text


def test_every_published_figure_names_a_measured_rate_and_a_source(
    rates: dict[str, WorldRate],
) -> None:
    figures = load_published()
    assert len(figures) >= 10
    assert len({f.id for f in figures}) == len(figures)
    for f in figures:
        assert f.rate in rates, f.id
        assert f.unit == rates[f.rate].unit, f.id
        assert "http" in f.citation and f.comparability and f.year, f.id
        assert f.world_expected in ("same", "lower", "higher"), f.id
        assert f.world_expected == "same" or f.expected_reason, f.id


def test_main_writes_the_table_for_an_event_folder(tmp_path, capsys) -> None:
    write_event_dir(_world(), tmp_path / "events")
    out = tmp_path / "table.md"
    assert (
        main(["--events", str(tmp_path / "events"), "--end", END.isoformat(), "--out", str(out)])
        == 0
    )
    text = out.read_text(encoding="utf-8")
    assert "`bnpl_at_agency`" in text and "| `invoices_reminded` | 50.0 % | 2 |" in text
    assert capsys.readouterr().out == text

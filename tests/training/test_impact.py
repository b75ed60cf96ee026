"""The impact report: stage outcomes and collection costs on a hand-built world with known
answers, the empty cases, the JSON round trip, and a simulated world's cross-checks."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from features.io import write_event_dir
from features.schemas import TABLES, columns_of
from features.store import EventStore
from models.legal import legal_table_on
from training.reports.impact import OUTCOMES, ImpactReport, impact_report, log_to_mlflow, main
from training.reports.impact_html import render_html
from training.reports.impact_model import headlines

SPLIT = date(2025, 2, 1)


def _ts(*days: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d) for d in days]


def _empty(table: str) -> pd.DataFrame:
    return TABLES[table][0].validate(pd.DataFrame({c: [] for c in columns_of(table)}))


def _world() -> dict[str, pd.DataFrame]:
    """Five January invoices due 1 February 2025, one March invoice, each ending differently.

    I1 C1 €500 paid on time.          I2 C1 €100 paid 3 days late, before any reminder.
    I3 C2 €500 paid after a reminder. I4 C2 €500 at the agency, paid there in two parts.
    I5 C3 €100 pay-later: agency, bailiff, never paid.
    I6 C4 €200 (March cohort) paid after the 14-day letter.
    The last event is a debit on 31 December 2025: the data end on 1 January 2026.
    """
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4"],
            "household_type": ["single"] * 4,
            "birth_year": pd.array([1980] * 4, dtype="Int64"),
            "declared_net_income_cents": pd.array([None] * 4, dtype="Int64"),
            "created_at": _ts(*["2024-01-01"] * 4),
        }
    )
    invoices = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "I4", "I5", "I6"],
            "customer_id": ["C1", "C1", "C2", "C2", "C3", "C4"],
            "issue_date": _ts(*["2025-01-18"] * 5, "2025-03-01"),
            "due_date": _ts(*["2025-02-01"] * 5, "2025-03-15"),
            "amount_cents": [500_00, 100_00, 500_00, 500_00, 100_00, 200_00],
            "product": ["energy", "energy", "energy", "energy", "bnpl", "telecom"],
            "collection_method": ["transfer"] * 6,
        }
    )
    payments = pd.DataFrame(
        {
            "payment_id": ["P1", "P2", "P3", "P4a", "P4b", "P6"],
            "customer_id": ["C1", "C1", "C2", "C2", "C2", "C4"],
            "invoice_id": ["I1", "I2", "I3", "I4", "I4", "I6"],
            "paid_at": _ts(
                "2025-02-01", "2025-02-04", "2025-02-10", "2025-03-20", "2025-04-01", "2025-04-20"
            ),
            "amount_cents": [500_00, 100_00, 500_00, 300_00, 200_00, 200_00],
            "method": ["transfer", "transfer", "transfer", "agency", "agency", "transfer"],
        }
    )
    step_rows = [
        ("S1", "C2", "I3", "2025-02-08", "reminder", 0),
        ("S2", "C2", "I4", "2025-02-08", "reminder", 0),
        ("S3", "C2", "I4", "2025-02-22", "fourteen_day_letter", 0),
        ("S4", "C2", "I4", "2025-03-10", "agency", 75_00),
        ("S5", "C3", "I5", "2025-02-03", "reminder", 0),
        ("S6", "C3", "I5", "2025-02-22", "fourteen_day_letter", 0),
        ("S7", "C3", "I5", "2025-05-02", "agency", 40_00),
        ("S8", "C3", "I5", "2025-07-31", "bailiff", 120_00),
        ("S9", "C4", "I6", "2025-03-22", "reminder", 0),
        ("S10", "C4", "I6", "2025-04-05", "fourteen_day_letter", 0),
    ]
    steps = pd.DataFrame(
        step_rows,
        columns=["step_id", "customer_id", "invoice_id", "step_date", "step", "cost_cents"],
    )
    steps["step_date"] = pd.to_datetime(steps["step_date"])
    debits = pd.DataFrame(
        {
            "attempt_id": ["D1", "D2", "D3", "D4"],
            "customer_id": ["C1", "C2", "C3", "C4"],
            "invoice_id": ["I1", "I3", "I5", "I6"],
            "attempted_at": _ts("2025-02-01", "2025-02-01", "2025-02-01", "2025-12-31"),
            "amount_cents": [500_00, 500_00, 100_00, 200_00],
            "result": ["success", "failed", "reversed", "success"],
            "reason_code": ["", "AM04", "MD06", ""],
        }
    )
    debits["reason_code"] = debits["reason_code"].replace("", None)
    arrangements = pd.DataFrame(
        {
            "arrangement_id": ["A1", "A2", "A3"],
            "customer_id": ["C2", "C3", "C4"],
            "start_date": _ts("2025-03-12", "2025-05-10", "2025-04-01"),
            "debt_cents": [500_00, 100_00, 200_00],
            "monthly_amount_cents": [250_00, 50_00, 100_00],
            "term_months": [2, 2, 2],
            "outcome": ["kept", "broken", "active"],
            "end_date": _ts("2025-04-01", "2025-06-20", "NaT"),
        }
    )
    frames = {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
        "debit_attempts": debits,
        "collection_steps": steps,
        "arrangements": arrangements,
        "income_receipts": _empty("income_receipts"),
        "account_balances": _empty("account_balances"),
    }
    return {name: TABLES[name][0].validate(frame) for name, frame in frames.items()}


def _interest_cents(principal_cents: int, days: int) -> float:
    """Simple statutory interest at the rate of the legal table of 2025 (one rate all year)."""
    pct = legal_table_on(date(2025, 6, 1)).statutory_interest_consumer_pct
    return principal_cents * pct / 100 * days / 365


def test_stage_outcomes_and_funnel_on_known_world():
    report = impact_report(_world())
    inv = report.total.invoices
    assert inv.invoices == 6 and inv.customers == 4 and inv.principal_cents == 1_900_00
    assert inv.by_outcome == {
        "paid_on_time": 1,
        "paid_late_before_reminder": 1,
        "paid_after_reminder": 1,
        "paid_after_letter": 1,
        "paid_at_agency": 1,
        "paid_at_bailiff": 0,
        "open": 1,
    }
    assert inv.reached == {"reminder": 4, "fourteen_day_letter": 3, "agency": 2, "bailiff": 1}
    assert report.observed_until == date(2026, 1, 1)
    # debits and arrangements count to the end of the data, past the last cohort
    assert (report.period_start, report.period_end) == (date(2025, 1, 1), date(2026, 1, 1))


def test_costs_on_top_of_principal_follow_the_wik_scale_and_statutory_interest():
    costs = impact_report(_world()).total.costs
    assert costs.invoices_in_collection == 2 and costs.customers_affected == 2
    assert costs.principal_in_collection_cents == 600_00
    assert costs.wik_cents == 75_00 + 40_00  # WIK scale: €500 -> €75, €100 -> €40 (minimum)
    # I4: €300 paid 47 days after the due date, €200 after 59; I5: €100 open for 334 days
    expected_interest = round(_interest_cents(300_00, 47) + _interest_cents(200_00, 59)) + round(
        _interest_cents(100_00, 334)
    )
    assert costs.interest_cents == expected_interest
    assert costs.bailiff_cents == 120_00
    assert costs.other_step_costs_cents == 0
    assert costs.recorded_agency_costs_cents == costs.wik_cents
    total = 115_00 + expected_interest + 120_00
    assert costs.total_cents == total
    assert costs.per_customer_affected_cents == pytest.approx(total / 2)
    assert costs.per_euro_in_collection == pytest.approx(total / 600_00)
    assert costs.per_euro_invoiced == pytest.approx(total / 1_900_00)


def test_debits_arrangements_and_pay_later():
    total = impact_report(_world()).total
    assert (total.debits.attempts, total.debits.failed, total.debits.reversed) == (4, 1, 1)
    assert total.debits.failed_per_1000 == pytest.approx(250.0)
    a = total.arrangements
    assert (a.made, a.kept, a.broken, a.active, a.kept_share) == (3, 1, 1, 1, 0.5)
    assert total.pay_later.invoices == 1 and total.pay_later.by_outcome["open"] == 1
    assert total.pay_later_costs.wik_cents == 40_00
    assert total.pay_later_costs.bailiff_cents == 120_00


def test_monthly_cohorts_add_up_and_the_split_divides_them():
    report = impact_report(_world(), split_at=SPLIT)
    assert [m.label for m in report.monthly] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert [m.invoices.invoices for m in report.monthly[:4]] == [5, 0, 1, 0]
    assert sum(m.costs.total_cents for m in report.monthly) == report.total.costs.total_cents
    # debits and arrangements by their own dates
    assert [m.debits.attempts for m in report.monthly] == [0, 3] + [0] * 9 + [1]
    assert [m.arrangements.made for m in report.monthly[:5]] == [0, 0, 1, 1, 1]
    assert report.before.invoices.invoices == 5 and report.after.invoices.invoices == 1
    assert report.before.debits.attempts == 0 and report.after.debits.attempts == 4
    assert report.after.invoices.by_outcome["paid_after_letter"] == 1
    assert any(line.startswith(f"Before {SPLIT}") for line in report.to_dict()["headlines"])


def test_since_and_until_bound_the_cohorts():
    report = impact_report(_world(), since=date(2025, 3, 1), until=date(2025, 4, 1))
    assert report.total.invoices.invoices == 1
    assert report.total.costs.invoices_in_collection == 0
    with pytest.raises(ValueError, match="until must be after since"):
        impact_report(_world(), since=date(2025, 3, 1), until=date(2025, 3, 1))


def test_empty_store_gives_a_clear_empty_report():
    drop = ("invoices", "payments", "collection_steps", "debit_attempts")
    tables = {k: (_empty(k) if k in drop else v) for k, v in _world().items()}
    report = impact_report(tables)
    assert report.empty and "no invoices" in report.empty_reason
    assert report.total is None and report.monthly == ()
    assert ImpactReport.from_json(report.to_json()) == report
    page = render_html(report)
    assert "Empty report" in page and "no invoices" in page and "<svg" not in page


def test_a_store_without_collection_steps_reports_payments_and_says_what_is_missing():
    full = impact_report(_world())
    tables = {k: (_empty(k) if k == "collection_steps" else v) for k, v in _world().items()}
    report = impact_report(tables)
    assert not report.empty and "no collection steps recorded" in report.steps_not_recorded
    inv, ref = report.total.invoices, full.total.invoices
    # the payment outcomes do not depend on the steps: on time and open are the same
    assert inv.invoices == ref.invoices
    assert inv.by_outcome["paid_on_time"] == ref.by_outcome["paid_on_time"]
    assert inv.by_outcome["open"] == ref.by_outcome["open"]
    assert sum(inv.reached.values()) == 0 and report.total.costs.total_cents == 0
    assert report.total.debits == full.total.debits
    lines = " ".join(headlines(report))
    assert "not measured" in lines and "Collection costs on top" not in lines
    assert ImpactReport.from_json(report.to_json()) == report
    page = render_html(report)
    assert 'id="costs-not-recorded"' in page and "Cost waterfall" not in page
    assert page.count("<svg") == 2  # payment outcomes and monthly trends


def test_json_round_trip():
    report = impact_report(_world(), split_at=SPLIT)
    text = report.to_json()
    assert ImpactReport.from_json(text) == report
    assert '"paid_on_time"' in text and '"per_customer_affected_cents"' in text


def test_reads_an_event_store_and_a_folder_alike(tmp_path):
    tables = _world()
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.create_schema()
    store.ingest(tables)
    write_event_dir(tables, tmp_path / "events", fmt="csv")
    expected = impact_report(tables).to_json()
    assert impact_report(store).to_json() == expected
    assert impact_report(tmp_path / "events").to_json() == expected
    store.dispose()


def test_main_writes_the_page_and_the_json(tmp_path, capsys):
    write_event_dir(_world(), tmp_path / "events")
    assert main(["--events", str(tmp_path / "events"), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "impact.html").read_text(encoding="utf-8")
    # self-contained: nothing loaded from elsewhere (XML namespace names and url(#id) are not loads)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//|url\((?!#)|@import", page)
    assert page.count("<svg") == 3
    assert ImpactReport.from_json((tmp_path / "out" / "impact.json").read_text())
    assert "Paid on time: 16.7%" in capsys.readouterr().out


def test_simulated_world_wik_matches_the_costs_the_simulator_recorded(population):
    """The simulator records WIK by the same scale on the agency step: the report's scale
    figure must agree with it to the cent, and the cohorts must add up to the total."""
    report = impact_report(population.tables)
    total = report.total
    assert total.costs.invoices_in_collection > 0
    assert total.costs.wik_cents == total.costs.recorded_agency_costs_cents
    assert sum(total.invoices.by_outcome[o] for o in OUTCOMES) == total.invoices.invoices
    assert sum(m.invoices.invoices for m in report.monthly) == total.invoices.invoices
    assert sum(m.costs.total_cents for m in report.monthly) == total.costs.total_cents


def test_log_to_mlflow_keeps_the_page_and_the_json(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact folder is under the cwd
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = impact_report(_world())
    run_id = log_to_mlflow(report, uri)
    client = MlflowClient(uri)
    names = sorted(a.path for a in client.list_artifacts(run_id, "impact"))
    assert names == ["impact/impact.html", "impact/impact.json"]
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="impact")
    assert ImpactReport.from_json(Path(folder, "impact.json").read_text()) == report
    metrics = client.get_run(run_id).data.metrics
    assert metrics["impact.failed_debits_per_1000"] == pytest.approx(250.0)

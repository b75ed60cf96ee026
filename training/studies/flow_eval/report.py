"""The flow evaluation's report: Markdown for people, JSON for machines, an MLflow run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from training.studies.flow_eval.figures import GOAL_RECOVERED_POINTS_MAX_BELOW
from training.studies.flow_eval.levers import LEVERS

#: the table rows: (figure key, label, format)
ROWS: tuple[tuple[str, str, str], ...] = (
    ("collection_costs_eur", "collection costs on top of principal (EUR)", "eur"),
    ("wik_eur", "  of which WIK (EUR)", "eur"),
    ("statutory_interest_eur", "  of which statutory interest (EUR)", "eur"),
    ("bailiff_costs_eur", "  of which bailiff (EUR)", "eur"),
    ("collection_costs_per_euro_principal", "costs per euro of principal due", "cents"),
    ("principal_recovered_pct", "principal recovered at the end (% of due)", "pct"),
    ("customers_reaching_agency", "customers reaching an agency", "int"),
    ("customers_reaching_bailiff", "customers reaching a bailiff", "int"),
    ("failed_debits_per_1000", "failed debits per 1,000 attempts", "f1"),
    ("plans_made", "plans made", "int"),
    ("plans_kept", "plans kept", "int"),
    ("plans_kept_share", "plans kept (of ended)", "share"),
    ("debt_help_referrals", "debt-help referrals", "int"),
    ("pay_later_approved", "pay-later orders approved", "int"),
    ("pay_later_approved_share", "pay-later approval rate", "share"),
    ("pay_later_reached_agency", "pay-later invoices reaching an agency", "int"),
    ("calls", "calls made", "int"),
    ("debit_days_changed", "customers with another debit day", "int"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "eur":
        return f"{value:,.0f}"
    if kind == "cents":
        return f"{100 * value:.2f} ct"
    if kind == "pct":
        return f"{value:.2f} %"
    if kind == "share":
        return f"{100 * value:.1f} %"
    if kind == "f1":
        return f"{value:.1f}"
    return f"{int(value):,}"


#: how each goal's traditional and tijdig values are written
GOAL_FORMATS = {
    "collection_costs_eur": "eur",
    "principal_recovered_pct": "pct",
    "customers_reaching_bailiff": "int",
}


def _goal_value(row: dict[str, Any]) -> str:
    if row["key"] == "principal_recovered_pct":
        return f"{row['measured']:+.2f} points (target ≥ {row['target']:+.1f})"
    return f"{100 * row['measured']:.1f} % lower (target ≥ {100 * row['target']:.0f} %)"


def _gap(row: dict[str, Any]) -> str:
    if row["met"]:
        return "met"
    if row["key"] == "principal_recovered_pct":
        return f"missed by {row['gap']:.2f} points"
    return f"missed by {100 * row['gap']:.1f} points of reduction"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page: the goals, the per-run table, the levers' shares."""
    runs = report["runs"]
    names = list(runs)
    lines = [
        f"# Whole flow vs. traditional ({report['customers']:,} customers, seed {report['seed']})",
        "",
        f"World {report['period'][0]} to {report['period'][1]}; tijdig adopted on "
        f"{report['adoption']} ({report['months_from_adoption']} months after it). Every "
        "figure counts invoices issued from the adoption day (outcomes as known at the end), "
        "and debits and plans dated from it.",
        "",
        "## Goals (tijdig against traditional)",
        "",
        "| goal | traditional | tijdig | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    for row in report["goals"]:
        kind = GOAL_FORMATS[row["key"]]
        lines.append(
            f"| {row['goal']} | {_fmt(row['traditional'], kind)} | {_fmt(row['tijdig'], kind)} "
            f"| {_goal_value(row)} | {_gap(row)} |"
        )
    lines += ["", "## Per run", "", "| figure | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for key, label, kind in ROWS:
        row_cells = " | ".join(_fmt(runs[n].get(key), kind) for n in names)
        lines.append(f"| {label} | {row_cells} |")
    lines += [
        "",
        "## Each lever's share of tijdig's change",
        "",
        "`alone`: the lever on top of the traditional flow, minus traditional; "
        "`leave-one-out` (when run): tijdig minus tijdig without the lever. Shares are of "
        "tijdig's change against traditional; levers interact (a call offers tijdig's plan "
        "only when both are on), so neither column adds up to 100 %.",
        "",
        "| figure | tijdig − traditional | " + " | ".join(LEVERS) + " |",
        "|---|---|" + "---|" * len(LEVERS),
    ]
    for key, share in report["shares"].items():
        cells = []
        for lever in LEVERS:
            entry = share.get(lever, {})
            parts: list[str] = []
            if "alone" in entry:
                parts.append(f"alone {entry['alone']:+,.2f}{_share(entry.get('alone_share'))}")
            if "leave_one_out" in entry:
                parts.append(
                    f"l-o-o {entry['leave_one_out']:+,.2f}"
                    f"{_share(entry.get('leave_one_out_share'))}"
                )
            cells.append("; ".join(parts) or "n/a")
        lines.append(f"| {key} | {share['change']:+,.2f} | " + " | ".join(cells) + " |")
    levers = report["levers"]
    lines += [
        "",
        "## How the levers were built",
        "",
        f"- Training world: seed {levers['train_seed']}, {levers['train_period'][0]} to "
        f"{levers['train_period'][1]} (another population); bundle {levers['bundle']}.",
        f"- Contact: {levers['capacity_per_business_day']} calls per business day, ranked by "
        f"tijdig's probability ({levers['targeting']}).",
        f"- Debit day: {levers['debit_days_changed']:,} customers moved "
        f"({100 * levers['debit_days_changed_share']:.1f} %), from {levers['debit_days_from']} "
        f"(debit model: {levers['debit_model']}).",
        f"- Pay-later: policy {levers['bnpl_policy']}, risk cut-off {levers['bnpl_risk_cutoff']}.",
        "",
        "Runs share their history before the adoption day (event rows differing before it: "
        + ", ".join(f"{k} {v}" for k, v in report["shared_history"].items())
        + ").",
        "",
        f"Principal goal: tijdig's recovered share may be at most "
        f"{GOAL_RECOVERED_POINTS_MAX_BELOW:g} point below traditional's.",
        "",
    ]
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "" if value is None else f" ({100 * value:.0f} %)"


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``flow_eval.json`` and ``flow_eval.md`` in ``out``."""
    from training.studies.flow_eval.run import to_json

    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "flow_eval.json", out / "flow_eval.md"
    json_path.write_text(to_json(report), encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path


def log_to_mlflow(uri: str, report: dict[str, Any]) -> str:
    """The report (JSON and Markdown) and each run's headline figures as one MLflow run of
    the experiment ``tijdig-flow``; returns the run id."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tijdig-flow")
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(
            {
                "customers": report["customers"],
                "seed": report["seed"],
                "adoption": report["adoption"],
                "bundle": report["levers"]["bundle"],
                "capacity_per_business_day": report["levers"]["capacity_per_business_day"],
            }
        )
        for name, figures in report["runs"].items():
            for key, _, _ in ROWS:
                value = figures.get(key)
                if isinstance(value, int | float):
                    mlflow.log_metric(f"{name}.{key}", float(value))
        for row in report["goals"]:
            mlflow.log_metric(f"goal.{row['key']}.met", float(row["met"]))
        for path in write_report(report, Path(tmp)):
            mlflow.log_artifact(str(path))
        return str(run.info.run_id)

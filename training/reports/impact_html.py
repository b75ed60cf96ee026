"""The impact report as one self-contained HTML page: headline figures, a stage funnel, a
cost waterfall, monthly trends and the tables behind them.

Nothing is fetched from elsewhere: the CSS is inline and the plots are inline SVG drawn by
matplotlib (text kept as text, so the figures stay searchable and sharp at any zoom).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from datetime import date
from html import escape

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from training.reports.impact_model import (
    OUTCOMES,
    STEPS,
    Costs,
    Figures,
    ImpactReport,
    euros,
    headlines,
    percent,
)

__all__ = ["render_html"]

_STEP_LABELS = {
    "reminder": "Reminder",
    "fourteen_day_letter": "14-day letter",
    "agency": "Agency",
    "bailiff": "Bailiff",
}
_OUTCOME_LABELS = {
    "paid_on_time": "Paid on time",
    "paid_late_before_reminder": "Paid late, before a reminder",
    "paid_after_reminder": "Paid after a reminder",
    "paid_after_letter": "Paid after the 14-day letter",
    "paid_at_agency": "Paid at the agency",
    "paid_at_bailiff": "Paid at the bailiff",
    "open": "Still open",
}
_REACHED = "#c9d6e3"
_PAID = "#2f6f9f"
_COST = "#c0504d"
_TOTAL = "#5a5a5a"
_LINES = {"on time": "#2f6f9f", "reminder": "#e0a030", "agency": "#c0504d", "open": "#7f7f7f"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d1d1d; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 32px 0 8px; border-bottom: 2px solid #e4e8ec; padding-bottom: 4px; }
p.meta { color: #555; margin: 0 0 16px; font-size: 0.92rem; }
ul.headlines { background: #f3f7fa; border-left: 4px solid #2f6f9f; padding: 12px 16px 12px 34px;
               margin: 0; font-size: 1.02rem; }
ul.headlines li { margin: 4px 0; }
.empty { background: #fff4e5; border-left: 4px solid #e0a030; padding: 12px 16px; font-size: 1.05rem; }
figure { margin: 8px 0 12px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.88rem; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 8px 0; width: 100%; }
th, td { padding: 4px 6px; border-bottom: 1px solid #e4e8ec; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f7fa; }
tr.running td { color: #777; font-style: italic; }
.scroll { overflow-x: auto; }
dl { font-size: 0.88rem; color: #333; }
dt { font-weight: 600; margin-top: 6px; }
dd { margin-left: 16px; }
"""


def render_html(report: ImpactReport) -> str:
    """The report as a self-contained HTML page (UTF-8, no external resources)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>tijdig: collection impact</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>Collection impact</h1>",
        f'<p class="meta">{escape(_meta(report))}</p>',
    ]
    if report.empty_reason is not None or report.total is None:
        parts.append(f'<p class="empty" id="empty">{escape(headlines(report)[0])}</p>')
    else:
        parts += _body(report, report.total)
    parts.append(_definitions(report))
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _meta(report: ImpactReport) -> str:
    bits = []
    if report.period_start or report.period_end:
        bits.append(f"Invoices issued {report.period_start or '…'} to {report.period_end or '…'}")
    if report.observed_until:
        bits.append(f"outcomes as known on {report.observed_until}")
    if report.split_at:
        bits.append(f"split at {report.split_at}")
    if report.legal_versions:
        bits.append("legal tables " + ", ".join(report.legal_versions))
    return "; ".join(bits) if bits else "No period: the event store holds nothing to measure."


def _body(report: ImpactReport, total: Figures) -> list[str]:
    lines = "".join(f"<li>{escape(line)}</li>" for line in headlines(report))
    out = [
        '<section id="headlines"><h2>Headline figures</h2>',
        f'<ul class="headlines">{lines}</ul></section>',
    ]
    if report.steps_not_recorded is None:
        out += [
            '<section id="funnel"><h2>Where invoices get paid</h2>',
            _figure(_funnel_plot(total), "Stage funnel", _funnel_caption(total)),
            _outcome_table(report),
            "</section>",
            '<section id="costs"><h2>Collection costs on top of the principal</h2>',
            _figure(_waterfall_plot(total.costs), "Cost waterfall", _cost_caption(total.costs)),
            _cost_table(report),
            "</section>",
        ]
    else:
        out += [
            '<section id="funnel"><h2>When invoices get paid</h2>',
            _figure(_outcome_plot(total), "Payment outcomes", _outcome_caption(total)),
            _outcome_table(report, with_steps=False),
            "</section>",
            '<section id="costs"><h2>Collection costs on top of the principal</h2>',
            f'<p class="empty" id="costs-not-recorded">Not measured: '
            f"{escape(report.steps_not_recorded)}.</p>",
            "</section>",
        ]
    if report.monthly:
        out += [
            '<section id="trends"><h2>Month by month</h2>',
            _figure(
                _trend_plot(
                    report.monthly, report.split_at, steps=report.steps_not_recorded is None
                ),
                "Monthly trends",
                "By month of issue (debits and arrangements by their own month). Grey rows "
                "and the shaded months: cohorts still running, their open share will fall.",
            ),
            _monthly_table(report.monthly),
            "</section>",
        ]
    out += ['<section id="pay-later"><h2>Pay-later orders</h2>', _pay_later_table(report)]
    out.append("</section>")
    return out


# ---------------------------------------------------------------------------- plots


def _svg(fig: Figure, label: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": label}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    # the XML prolog cannot stand inside HTML; the RDF metadata only names the generator
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg") :], flags=re.S)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


def _figure(fig: Figure, label: str, caption: str) -> str:
    return f"<figure>{_svg(fig, label)}<figcaption>{escape(caption)}</figcaption></figure>"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    fig.set_facecolor("white")
    return fig


def _funnel_plot(total: Figures) -> Figure:
    inv = total.invoices
    rows = ["All invoices", *(_STEP_LABELS[s] for s in STEPS)]
    reached = [inv.invoices, *(inv.reached[s] for s in STEPS)]
    paid_here = [inv.by_outcome["paid_on_time"]] + [inv.by_outcome[o] for o in OUTCOMES[2:6]]
    fig = _new_figure(9, 3.2)
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, reached, color=_REACHED, label="reached the step")
    ax.barh(y, paid_here, color=_PAID, height=0.5, label="paid there (on time: first row)")
    top = max(reached) or 1
    for row, (yi, n, p) in enumerate(zip(y, reached, paid_here, strict=True)):
        paid = "paid on time" if row == 0 else "paid there"
        ax.text(
            n + top * 0.01,
            yi,
            f"{n:,} ({percent(n / inv.invoices if inv.invoices else None)}), {paid} {p:,}",
            va="center",
            fontsize=9,
        )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_yticks(y, rows)
    ax.set_xlim(0, top * 1.45)
    ax.set_xlabel("invoices")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("Stage funnel: invoices reaching each step, and paid there", fontsize=11)
    return fig


def _funnel_caption(total: Figures) -> str:
    inv = total.invoices
    return (
        f"{inv.invoices:,} invoices; the pale bar counts those that reached a step, the dark "
        "bar those paid while that was their furthest step."
    )


def _outcome_plot(total: Figures) -> Figure:
    """Paid on time, paid late, still open: the funnel of a store without collection steps."""
    inv = total.invoices
    late = sum(inv.by_outcome[o] for o in OUTCOMES[1:6])
    rows = [
        ("Paid on time", inv.by_outcome["paid_on_time"], _PAID),
        ("Paid late", late, _REACHED),
        ("Still open", inv.by_outcome["open"], _COST),
    ]
    fig = _new_figure(9, 2.4)
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, [n for _, n, _ in rows], color=[c for _, _, c in rows])
    top = max(n for _, n, _ in rows) or 1
    for yi, (_, n, _) in zip(y, rows, strict=True):
        share = percent(n / inv.invoices if inv.invoices else None)
        ax.text(n + top * 0.01, yi, f"{n:,} ({share})", va="center", fontsize=9)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_yticks(y, [label for label, _, _ in rows])
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel("invoices")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Payment outcomes (no collection steps recorded)", fontsize=11)
    return fig


def _outcome_caption(total: Figures) -> str:
    return (
        f"{total.invoices.invoices:,} invoices; late = paid after the due date. Without "
        "collection steps the stage at which a late invoice was paid is unknown."
    )


def _waterfall_plot(costs: Costs) -> Figure:
    steps = [
        ("WIK (scale)", costs.wik_cents),
        ("+ statutory interest", costs.interest_cents),
        ("+ bailiff", costs.bailiff_cents),
    ]
    if costs.other_step_costs_cents:
        steps.append(("+ reminder/letter costs", costs.other_step_costs_cents))
    fig = _new_figure(9, 3.2)
    ax = fig.add_subplot()
    base = 0
    labels = []
    for i, (label, cents) in enumerate(steps):
        ax.bar(i, cents / 100, bottom=base / 100, color=_COST, width=0.6)
        ax.text(i, (base + cents) / 100, euros(cents), ha="center", va="bottom", fontsize=9)
        base += cents
        labels.append(label)
    ax.bar(len(steps), base / 100, color=_TOTAL, width=0.6)
    ax.text(len(steps), base / 100, euros(base), ha="center", va="bottom", fontsize=9)
    labels.append("= total")
    ax.set_xticks(range(len(labels)), labels, fontsize=9)
    ax.set_ylabel("euro")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: euros(v * 100)))
    ax.set_ylim(0, max(base, 1) / 100 * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(
        f"Costs on top of {euros(costs.principal_in_collection_cents)} principal in collection",
        fontsize=11,
    )
    return fig


def _cost_caption(costs: Costs) -> str:
    per_customer = costs.per_customer_affected_cents
    return (
        f"{costs.invoices_in_collection:,} invoices of {costs.customers_affected:,} customers "
        "were handed to the agency; "
        + ("" if per_customer is None else f"{euros(per_customer)} per customer affected.")
    )


def _month_start(label: str) -> date:
    return date.fromisoformat(label + "-01")


def _trend_plot(monthly: Sequence[Figures], split_at: date | None, steps: bool = True) -> Figure:
    x = [_month_start(m.label) for m in monthly]
    fig = _new_figure(9, 6.4)
    axes = fig.subplots(3, 1, sharex=True)
    series: list[tuple[str, Callable[[Figures], float | None]]] = [
        ("on time", lambda m: m.invoices.shares()["paid_on_time"]),
        ("reminder", lambda m: m.invoices.reached_shares()["reminder"]),
        ("agency", lambda m: m.invoices.reached_shares()["agency"]),
        ("open", lambda m: m.invoices.shares()["open"]),
    ]
    if not steps:  # zero lines would read as "nobody reached a reminder"
        series = [s for s in series if s[0] not in ("reminder", "agency")]
    for name, value in series:
        ys = [_pct(value(m)) for m in monthly]
        axes[0].plot(x, ys, marker="o", ms=3, color=_LINES[name], label=_series_label(name))
    axes[0].set_ylabel("% of invoices")
    axes[0].set_ylim(0, 100)
    axes[0].legend(fontsize=8, ncol=4, frameon=False, loc="upper center")
    axes[1].bar(x, [m.debits.failed_per_1000 or 0 for m in monthly], width=20, color=_COST)
    axes[1].set_ylabel("failed debits\nper 1,000")
    axes[2].plot(
        x, [_pct(m.arrangements.kept_share) for m in monthly], marker="o", ms=3, color=_PAID
    )
    axes[2].set_ylabel("arrangements\nkept (%)")
    axes[2].set_ylim(0, 100)
    running = [xi for xi, m in zip(x, monthly, strict=True) if not m.mature]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#e4e8ec")
        if running:
            ax.axvspan(running[0], running[-1], color="#eeeeee", zorder=0)
        if split_at is not None:
            ax.axvline(split_at, color="black", ls="--", lw=1)
    if split_at is not None:
        axes[0].text(split_at, 96, f" split {split_at}", fontsize=8, va="top")
    axes[0].set_title("Monthly trends by invoice cohort", fontsize=11)
    fig.autofmt_xdate()
    return fig


def _series_label(name: str) -> str:
    return {
        "on time": "paid on time",
        "reminder": "reached a reminder",
        "agency": "reached the agency",
        "open": "still open",
    }[name]


def _pct(share: float | None) -> float:
    return float("nan") if share is None else 100 * share


# ---------------------------------------------------------------------------- tables


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], row_class: Sequence[str] = ()
) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if i < len(row_class) and row_class[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _columns(report: ImpactReport) -> list[Figures]:
    cols = [f for f in (report.total, report.before, report.after) if f is not None]
    return cols


def _outcome_table(report: ImpactReport, with_steps: bool = True) -> str:
    cols = _columns(report)
    # without steps every late payment counts as "before a reminder": call it what it is
    labels = _OUTCOME_LABELS if with_steps else {**_OUTCOME_LABELS, OUTCOMES[1]: "Paid late"}
    rows = [
        [labels[o], *(_count_share(f.invoices.by_outcome[o], f.invoices.invoices) for f in cols)]
        for o in OUTCOMES
        if with_steps or o in ("paid_on_time", OUTCOMES[1], "open")
    ]
    if not with_steps:
        return _table(["Invoices", *(f.label for f in cols)], rows)
    rows += [
        [
            f"Reached: {_STEP_LABELS[s]}",
            *(_count_share(f.invoices.reached[s], f.invoices.invoices) for f in cols),
        ]
        for s in STEPS
    ]
    return _table(["Invoices", *(f.label for f in cols)], rows)


def _count_share(n: int, of: int) -> str:
    return f"{n:,} ({percent(n / of if of else None)})"


def _cost_table(report: ImpactReport) -> str:
    cols = _columns(report)

    def row(label: str, fmt: Callable[[Figures], str]) -> list[str]:
        return [label, *(fmt(f) for f in cols)]

    rows = [
        row("Invoices in collection", lambda f: f"{f.costs.invoices_in_collection:,}"),
        row("Customers affected", lambda f: f"{f.costs.customers_affected:,}"),
        row("Principal in collection", lambda f: euros(f.costs.principal_in_collection_cents)),
        row("WIK (statutory scale)", lambda f: euros(f.costs.wik_cents)),
        row("Statutory interest", lambda f: euros(f.costs.interest_cents)),
        row("Bailiff costs (recorded)", lambda f: euros(f.costs.bailiff_cents)),
        row("Reminder/letter costs (recorded)", lambda f: euros(f.costs.other_step_costs_cents)),
        row("Total on top of the principal", lambda f: euros(f.costs.total_cents)),
        row("Per customer affected", lambda f: _opt_euros(f.costs.per_customer_affected_cents)),
        row(
            "Per euro of principal in collection",
            lambda f: _opt_ratio(f.costs.per_euro_in_collection),
        ),
        row("Per euro invoiced", lambda f: _opt_ratio(f.costs.per_euro_invoiced)),
        row(
            "Agency costs as recorded (check on WIK)",
            lambda f: euros(f.costs.recorded_agency_costs_cents),
        ),
        row("Failed debits per 1,000 attempts", lambda f: _opt_number(f.debits.failed_per_1000)),
        row(
            "Reversed debits per 1,000 attempts", lambda f: _opt_number(f.debits.reversed_per_1000)
        ),
        row("Arrangements made", lambda f: f"{f.arrangements.made:,}"),
        row(
            "Arrangements kept (of ended)",
            lambda f: (
                f"{f.arrangements.kept:,} of {f.arrangements.kept + f.arrangements.broken:,} "
                f"({percent(f.arrangements.kept_share)})"
            ),
        ),
        row("Debt-help referrals", lambda f: "not recorded"),
    ]
    return _table(["Costs and care", *(f.label for f in cols)], rows)


def _opt_euros(cents: float | None) -> str:
    return "n/a" if cents is None else euros(cents)


def _opt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"€{ratio:.3f}"


def _opt_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _monthly_table(monthly: Sequence[Figures]) -> str:
    head = [
        "Month", "Invoices", "On time", "Reminder", "Letter", "Agency", "Bailiff", "Open",
        "Costs", "Per cust.", "Failed /1,000", "Arr. made", "Arr. kept",
    ]  # fmt: skip
    rows = []
    for m in monthly:
        shares, reached = m.invoices.shares(), m.invoices.reached_shares()
        rows.append(
            [
                m.label,
                f"{m.invoices.invoices:,}",
                percent(shares["paid_on_time"]),
                *(percent(reached[s]) for s in STEPS),
                percent(shares["open"]),
                euros(m.costs.total_cents),
                _opt_euros(m.costs.per_customer_affected_cents),
                _opt_number(m.debits.failed_per_1000),
                f"{m.arrangements.made:,}",
                percent(m.arrangements.kept_share),
            ]
        )
    return _table(head, rows, ["" if m.mature else "running" for m in monthly])


def _pay_later_table(report: ImpactReport) -> str:
    cols = _columns(report)
    rows = [
        ["Orders", *(f"{f.pay_later.invoices:,}" for f in cols)],
        ["Customers", *(f"{f.pay_later.customers:,}" for f in cols)],
        ["Principal", *(euros(f.pay_later.principal_cents) for f in cols)],
    ]
    rows += [
        [
            _OUTCOME_LABELS[o],
            *(_count_share(f.pay_later.by_outcome[o], f.pay_later.invoices) for f in cols),
        ]
        for o in OUTCOMES
    ]
    rows.append(
        ["Costs on top of the principal", *(euros(f.pay_later_costs.total_cents) for f in cols)]
    )
    return _table(["Pay-later (bnpl)", *(f.label for f in cols)], rows)


def _definitions(report: ImpactReport) -> str:
    items = "".join(
        f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{escape(v)}</dd>"
        for k, v in report.definitions.items()
    )
    return f'<section id="definitions"><h2>Definitions</h2><dl>{items}</dl></section>'

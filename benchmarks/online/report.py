"""The online benchmark's words: the notes a run writes beside its figures (:func:`notes`,
stored in ``results/online.json``) and its section of RESULTS.md (:func:`results_section`),
with pay-later judged round by round against the bare endpoint
(:func:`pay_later_against_bare`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.common import measured_on
from benchmarks.online.load import CONCURRENCY


@dataclass(frozen=True)
class RatioGoal:
    """A goal for an endpoint against the bare endpoint in the same round: its throughput at
    least ``min_throughput`` times the bare one, its p99 at most ``max_p99`` times the bare p99."""

    min_throughput: float
    max_p99: float

    def shortfalls(self, throughput_ratio: float, p99_ratio: float) -> list[str]:
        """What a round missed (``"throughput"``, ``"p99"``); empty when it met the goal."""
        return [
            *(["throughput"] if throughput_ratio < self.min_throughput else []),
            *(["p99"] if p99_ratio > self.max_p99 else []),
        ]


#: Issue 21: keyed pay-later calls against the bare endpoint, in every round of one run.
PAY_LATER_GOAL = RatioGoal(min_throughput=0.25, max_p99=2.5)
PAY_LATER_MOONSHOT = RatioGoal(min_throughput=0.5, max_p99=1.5)


def _p99_verdict(load: dict[str, Any], goal_ms: float = 15.0) -> str:
    """The p99 over all rounds against the goal, and in how many rounds it held: the
    rounds differ in how the kernel spread the connections."""
    pooled = load["p99_ms"]
    rounds = load.get("p99_rounds_ms") or []
    held = sum(x <= goal_ms for x in rounds)
    return (
        f"{pooled:.2f} ms over all rounds (goal ≤ {goal_ms:g} ms: "
        f"{'met' if pooled <= goal_ms else 'missed'}"
        + (
            f"; by round {', '.join(f'{x:.1f}' for x in rounds)} ms, met in {held} of {len(rounds)}"
            if rounds
            else ""
        )
        + ")"
    )


def pay_later_against_bare(load: dict[str, Any]) -> list[str]:
    """Pay-later against the bare endpoint round by round (throughput and p99 as ratios to
    the bare endpoint's in the same round) and whether every round met issue 21's goal and
    moonshot; no lines when the results lack either endpoint's rounds."""
    bare, bnpl = load.get("bare", {}), load.get("bnpl", {})
    rounds = list(
        zip(
            bare.get("rps_rounds") or [],
            bnpl.get("rps_rounds") or [],
            bare.get("p99_rounds_ms") or [],
            bnpl.get("p99_rounds_ms") or [],
            strict=False,
        )
    )
    if not rounds:
        return []
    goal, moon = PAY_LATER_GOAL, PAY_LATER_MOONSHOT

    def verdict(missed: list[str]) -> str:
        return "met" if not missed else "missed (" + ", ".join(missed) + ")"

    what = (
        "Keyed pay-later (an `Idempotency-Key` per order)"
        if bnpl.get("keyed")
        else "Pay-later (sent without an `Idempotency-Key` in this run)"
    )
    lines = [
        "",
        f"{what} against the bare endpoint, by round (issue 21: throughput ≥ "
        f"{goal.min_throughput:g} × bare and p99 ≤ {goal.max_p99:g} × bare p99 in every round "
        f"of one run; moonshot ≥ {moon.min_throughput:g} × and ≤ {moon.max_p99:g} ×):",
        "",
        "| round | throughput pay-later / bare | p99 pay-later / bare | goal | moonshot |",
        "|---|---|---|---|---|",
    ]
    met_goal = met_moon = 0
    for i, (bare_rps, bnpl_rps, bare_p99, bnpl_p99) in enumerate(rounds, start=1):
        throughput, p99 = bnpl_rps / bare_rps, bnpl_p99 / bare_p99
        missed_goal = goal.shortfalls(throughput, p99)
        missed_moon = moon.shortfalls(throughput, p99)
        met_goal += not missed_goal
        met_moon += not missed_moon
        lines.append(
            f"| {i} | {throughput:.3f} ({bnpl_rps:,.0f} / {bare_rps:,.0f} requests/s) "
            f"| {p99:.2f} ({bnpl_p99:.1f} / {bare_p99:.1f} ms) "
            f"| {verdict(missed_goal)} | {verdict(missed_moon)} |"
        )
    n = len(rounds)
    lines += [
        "",
        f"Issue 21 goal in every round: **{'met' if met_goal == n else 'missed'}** (met in "
        f"{met_goal} of {n}); moonshot: **{'met' if met_moon == n else 'missed'}** (met in "
        f"{met_moon} of {n}).",
    ]
    return lines


def _ratios_by_round(label: str, ratios: list[float] | None) -> str:
    """`` (<label>: 0.271, 0.270, …)``, or nothing for results without rounds."""
    return f" ({label}: " + ", ".join(f"{x:.3f}" for x in ratios) + ")" if ratios else ""


def results_section(r: dict[str, Any]) -> list[str]:
    """The online section of RESULTS.md from ``results/online.json`` (``r``)."""
    lines = [
        "## Online: POST /v1/risk/scores under load",
        "",
        f"Measured {r['date']}{measured_on(r)}. {r['setup']}",
        "",
        "| endpoint | requests/s | p50 ms | p99 ms, all rounds (by round) | errors | requests | connections per worker, by round |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in r["load"].items():
        kinds = v.get("error_kinds") or {}
        errors = f"{v['errors']:,}" + (
            " (" + ", ".join(f"{k}: {n:,}" for k, n in sorted(kinds.items())) + ")" if kinds else ""
        )
        spread = ", ".join(
            "/".join(map(str, s)) for s in v.get("spread_rounds") or [] if s is not None
        )
        by_round = ", ".join(f"{x:.1f}" for x in v.get("p99_rounds_ms") or [])
        lines.append(
            f"| {name} | {v['rps']:,.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f}"
            + (f" ({by_round})" if by_round else "")
            + f" | {errors} | {v['requests']:,} | {spread or 'not recorded'} |"
        )
    lines += [
        "",
        f"Throughput ratio score/bare: **{r['ratio_rps']:.3f}**"
        + _ratios_by_round("median of the rounds", r.get("ratio_rps_rounds"))
        + " (goal ≥ 0.20: "
        f"{'met' if r['ratio_rps'] >= 0.2 else 'missed'}); score p99 "
        + _p99_verdict(r["load"]["score"])
        + ".",
        *(
            [
                "",
                f"Pay-later decisions (`POST /v1/bnpl/decisions`), same server: ratio bnpl/bare "
                f"**{r['ratio_rps_bnpl']:.3f}**"
                + _ratios_by_round("rounds", r.get("ratio_rps_bnpl_rounds"))
                + ", p99 "
                + _p99_verdict(r["load"]["bnpl"])
                + f", errors {r['load']['bnpl']['errors']} (issue 5 goal: 0 errors, p99 ≤ 15 ms, "
                "ratio ≥ 0.20).",
            ]
            if "ratio_rps_bnpl" in r
            else []
        ),
        *pay_later_against_bare(r["load"]),
        *(
            [
                "",
                f"Score endpoint with serving rows off (history read, features, predict, SHAP on "
                f"the request path; `score_computed`): ratio **{r['ratio_rps_computed']:.3f}**, "
                f"p99 {r['load']['score_computed']['p99_ms']:.2f} ms. Before the load "
                f"`tijdig features refresh` made all {r['refresh']['customers']:,} customers' "
                f"rows valid ({r['refresh']['computed']:,} computed, the rest still valid) in "
                f"{r['refresh']['seconds']:.1f} s.",
            ]
            if "ratio_rps_computed" in r
            else []
        ),
    ]
    splits = [("computed from the events", r["split"])]
    if "split_served" in r:
        served = {k: v for k, v in r["split_served"].items() if k != "misses"}
        splits.insert(0, ("served from a refreshed serving row", served))
    for title, split in splits:
        lines += [
            "",
            f"In-process cost per request, {title} (one customer, median of repeats, µs):",
            "",
            "| step | median µs | IQR µs | share |",
            "|---|---|---|---|",
        ]
        total = sum(v["median_us"] for v in split.values())
        for step, v in split.items():
            lines.append(
                f"| {step} | {v['median_us']:,.0f} | {v['iqr_us']:,.0f} | {v['median_us'] / total:.0%} |"
            )
        lines.append(f"| total | {total:,.0f} | | |")
    if "asgi" in r:
        a = r["asgi"]
        lines += [
            "",
            "In-process, the whole app, one request at a time as direct ASGI calls (no "
            "sockets, no load generator; CPU per request, the decision-log writer thread "
            "included; median of interleaved repeats):",
            "",
            "| app | CPU µs per request | IQR µs | throughput ratio to bare |",
            "|---|---|---|---|",
            f"| bare | {a['bare']['cpu_us']:,.0f} | {a['bare']['iqr_us']:,.0f} | 1 |",
            f"| score (served row) | {a['score']['cpu_us']:,.0f} | {a['score']['iqr_us']:,.0f} "
            f"| {a['ratio_score']:.3f} |",
            f"| bnpl (served row) | {a['bnpl']['cpu_us']:,.0f} | {a['bnpl']['iqr_us']:,.0f} "
            f"| {a['ratio_bnpl']:.3f} |",
        ]
    if r.get("notes"):
        lines += ["", *[f"- {n}" for n in r["notes"]]]
    lines.append("")
    return lines


def notes(load: dict[str, Any], split_served: dict[str, Any], asgi: dict[str, Any]) -> list[str]:
    """What the figures say about the goals (computed from this run only; experiments
    measured by hand, with their dates, are in docs/performance.md)."""
    from features.build import FEATURE_NAMES

    score, bare = load["score"], load["bare"]
    ours = sum(v["median_us"] for k, v in split_served.items() if k != "misses")
    log_us = split_served["decision log"]["median_us"]
    cpu_ms = 2 / score["rps"] * 1000  # two cores' worth of time per answered request
    mean_ms = CONCURRENCY / score["rps"] * 1000
    tail = score["p99_ms"] / mean_ms  # this run's p99 / mean
    needed_rps = CONCURRENCY / (15 / tail / 1000)
    bare_ms = 2 / bare["rps"] * 1000
    by_round = "; ".join(
        f"{name} "
        + ", ".join(
            f"{'/'.join(map(str, spread))} → {p99:.1f} ms"
            for spread, p99 in zip(
                load[name]["spread_rounds"], load[name]["p99_rounds_ms"], strict=True
            )
            if spread
        )
        for name in ("score", "bnpl")
        if load[name].get("p99_rounds_ms")
    )
    return [
        *(
            [
                "Each worker listens on its own socket and the kernel spreads the "
                f"{CONCURRENCY} connections by a hash, evenly or not; a worker holding k of "
                "them answers each request after up to k others. Connections per worker → "
                f"p99, by round: {by_round}."
            ]
            if by_round
            else []
        ),
        f"Closed loop: {CONCURRENCY} connections always waiting, so the mean latency is "
        f"{CONCURRENCY} / throughput (Little's law): {mean_ms:.2f} ms at "
        f"{score['rps']:,.0f} requests/s, and this run's p99 is {tail:.2f} times that mean. "
        f"At that shape a p99 of 15 ms needs the mean near {15 / tail:.1f} ms, i.e. about "
        f"{needed_rps:,.0f} requests/s: {needed_rps / (0.2 * bare['rps']):.2f} times the "
        "throughput the ratio goal asks for in this run. A closed loop also leaves out the "
        "queueing that requests arriving at a fixed rate would meet during a stall "
        "(coordinated omission), so the p99 here is a lower bound for an open-loop client.",
        *(
            [
                f"CPU per answered request, the servers' processes alone (from /proc): bare "
                f"{bare['server_cpu_us']:,.0f} µs, score {score['server_cpu_us']:,.0f} µs, "
                f"pay-later {load['bnpl']['server_cpu_us']:,.0f} µs; ratio of server CPU "
                f"bare/score {bare['server_cpu_us'] / score['server_cpu_us']:.3f}, bare/pay-later "
                f"{bare['server_cpu_us'] / load['bnpl']['server_cpu_us']:.3f}. The load "
                f"generator spent {bare['generator_cpu_us']:,.0f} µs per bare and "
                f"{score['generator_cpu_us']:,.0f} µs per score request on the same cores: "
                "the same cost on both sides pulls the throughput ratio towards 1, so the "
                "server-CPU ratio is the stricter reading."
            ]
            if bare.get("server_cpu_us") and score.get("server_cpu_us")
            else []
        ),
        f"The tail is the machine's as much as the route's: the bare endpoint's p99 is "
        f"{bare['p99_ms'] / bare['p50_ms']:.1f} times its p50, the score endpoint's "
        f"{score['p99_ms'] / score['p50_ms']:.1f} times. Three busy processes (the load "
        "generator and 2 workers) share 2 cores, and a request waits whenever its worker "
        "or the load generator is off the CPU for a scheduler time slice.",
        f"Per answered request under load the machine spends about {cpu_ms:.2f} ms of its 2 "
        f"cores (bare endpoint: {bare_ms:.2f} ms), the load generator included in both. "
        f"In-process, one request at a time and without the load generator, the whole app "
        f"costs {asgi['score']['cpu_us']:,.0f} µs of CPU per score request and "
        f"{asgi['bnpl']['cpu_us']:,.0f} µs per pay-later decision, against "
        f"{asgi['bare']['cpu_us']:,.0f} µs for the bare endpoint (ratios "
        f"{asgi['ratio_score']:.3f} and {asgi['ratio_bnpl']:.3f}).",
        f"Of a served score request, tijdig's own steps take {ours:,.0f} µs (table above), "
        f"{log_us:,.0f} µs of it the decision log (a JSON row with the {len(FEATURE_NAMES)} "
        "named features, committed before the answer leaves); the rest of the in-process figure is "
        "the web stack around them: request parsing and validation, the API-key dependency, "
        "the Prometheus samples and the JSON request log line.",
    ]

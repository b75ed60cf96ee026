"""The pay-later replay: tijdig's decisions on recorded orders, day by day, and the
operating point the policy's stated rule picks from them.

bnpl-eval (:mod:`training.studies.bnpl_eval`, on a simulated population) and training
(:mod:`training.bnpl_policy`, on the store's out-of-time validation period) both come
here, so the cut-off in a bundle and the one in the evidence are chosen by one code
path. An order is decided on its features as of the order day (point in time: the order
itself and everything after it unseen), the model's probability, the open-case flag,
the policy, and the decline memory of the replay's own earlier answers
(:mod:`models.decline_memory`, as the service reads its decision log). The closed loop
(:class:`training.studies.bnpl_eval.policies.TijdigBnplPolicy`) decides through the same
:func:`remembered_decisions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.build import build_features
from features.collection_cases import open_collection_cases
from features.events import EventArrays, from_day, to_day
from models.bnpl import AgeCheck, BnplDecision, BnplPolicy, decide
from models.bnpl_adjustment import BnplAdjustment
from models.bnpl_operating_point import choose_operating_point
from models.budget import budget_arrays
from models.decline_memory import DecisionHistory, DecisionLogArrays, decline_memory

#: an order issued at least this long before the run's end has a known outcome (an agency
#: comes ~105-120 days after the order): only those count in the money lost
MATURED_DAYS = 120
#: the trade-off curve's cut-offs when the policy's rule names none
CUTOFFS = (0.02, 0.03, 0.05, 0.07, 0.09, 0.12, 0.15, 0.2, 0.3, 0.5, 1.01)


def order_inputs(
    events: EventArrays, cust: np.ndarray, day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Features and open-case flags of orders by customers ``cust`` (positions in
    ``events``) on days ``day`` (day numbers), each as of its own day: only events dated
    before the order day count. The replay and the closed loop both come here.

    A customer may order many times; round k takes every customer's k-th order, so each
    round is one columnar call with a per-customer as_of.
    """
    cust = np.asarray(cust, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    rank = pd.Series(cust).groupby(cust).cumcount().to_numpy()
    X = np.empty((len(cust), 0))
    cases = np.zeros(len(cust), dtype=bool)
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        rows = np.flatnonzero(rank == k)
        as_of = np.full(events.n, day.min(), dtype=np.int64)
        as_of[cust[rows]] = day[rows]
        Xk = build_features(events, as_of)
        if X.shape[1] == 0:
            X = np.full((len(cust), Xk.shape[1]), np.nan)
        X[rows] = Xk[cust[rows]]
        cases[rows] = open_collection_cases(events, as_of)[cust[rows]]
    return X, cases


def order_decision(
    policy: BnplPolicy,
    *,
    amount_cents: int,
    on: date,
    features: np.ndarray,
    probability: float,
    open_case: bool,
    birth_year: float,
    memory: dict[str, float] | None = None,
    free_room_eur: float | None = None,
    pay_later_probability: float | None = None,
) -> BnplDecision:
    """tijdig's decision on one simulated order: the one call of :func:`models.bnpl.decide`
    that the replay and the closed loop share. The simulator knows a birth year, not a
    birth date: the age is taken as on 1 July of that year (verified)."""
    born = date(int(birth_year), 7, 1) if np.isfinite(birth_year) else None
    return decide(
        policy,
        order_eur=amount_cents / 100,
        currency="EUR",
        age=AgeCheck(verified=born is not None, birth_date=born, method="simulated"),
        on=on,
        features=features,
        probability=probability,
        open_case=open_case,
        memory=memory,
        free_room_eur=free_room_eur,
        pay_later_probability=pay_later_probability,
    )


def decide_orders(
    policy: BnplPolicy,
    amount_cents: np.ndarray,
    days: list[date],
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    memory: list[dict[str, float]] | None = None,
    pay_later: np.ndarray | None = None,
) -> list[BnplDecision]:
    """:func:`order_decision` for each order (row ``i`` of every argument; ``memory``:
    each order's decline memory; ``pay_later``: each order's adjusted probability). The budget's free room is computed for all orders in
    one columnar call (the same function the single decision calls)."""
    day_numbers = np.array([to_day(d) for d in days], dtype=np.int64)
    _, room = budget_arrays(X, day_numbers, prudent=True) if len(X) else (None, np.zeros(0))
    return [
        order_decision(
            policy,
            amount_cents=int(amount_cents[i]),
            on=days[i],
            features=X[i],
            probability=float(p[i]),
            open_case=bool(cases[i]),
            birth_year=float(birth_years[i]),
            memory=None if memory is None else memory[i],
            free_room_eur=float(room[i]),
            pay_later_probability=None if pay_later is None else float(pay_later[i]),
        )
        for i in range(len(amount_cents))
    ]


def remembered_decisions(
    policy: BnplPolicy,
    log: DecisionLogArrays,
    cust: np.ndarray,
    day: np.ndarray,
    amount_cents: np.ndarray,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    adjustment: BnplAdjustment | None = None,
) -> tuple[list[BnplDecision], list[dict[str, float]]]:
    """One day's orders (``day`` all equal; ``cust``: positions in ``log``'s customer
    index): each decided with its decline memory from ``log`` as of the day
    (:func:`models.decline_memory.decline_memory`, the computation the service runs on
    its decision log) and, with ``adjustment``, the pay-later probability it gives
    (:meth:`~models.bnpl_adjustment.BnplAdjustment.adjust`, as the service calls it);
    then the answers are added to ``log``. Returns the decisions and the memory rows
    they were decided on."""
    memory = decline_memory(log.history(), cust, day, term_days=policy.term_days)
    rows = [memory.row(i) for i in range(len(cust))]
    days = [from_day(int(d)) for d in day]
    pay_later = None if adjustment is None else adjustment.adjust(p, memory)
    decisions = decide_orders(policy, amount_cents, days, X, p, cases, birth_years, rows, pay_later)
    log.add(
        DecisionHistory.of(
            cust,
            day,
            [d.offer for d in decisions],
            amount_cents,
            [[r.code.value for r in d.reasons if r.declines] for d in decisions],
        )
    )
    return decisions, rows


def replay_decisions(
    policy: BnplPolicy,
    cust: np.ndarray,
    day: np.ndarray,
    amount_cents: np.ndarray,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    adjustment: BnplAdjustment | None = None,
) -> list[BnplDecision]:
    """The replay: every order (row ``i`` of every argument; ``day``: day numbers) decided
    day by day, each with the memory of the replay's own earlier answers, as the loop
    and the service decide. Returns the decisions in the rows' order."""
    log = DecisionLogArrays()
    out: list[BnplDecision | None] = [None] * len(cust)
    for d in np.unique(day):
        rows = np.flatnonzero(day == d)
        for i, decision in zip(
            rows,
            remembered_decisions(
                policy,
                log,
                cust[rows],
                day[rows],
                amount_cents[rows],
                X[rows],
                p[rows],
                cases[rows],
                birth_years[rows],
                adjustment,
            )[0],
            strict=True,
        ):
            out[i] = decision
    return [d for d in out if d is not None]


def decline_codes(decisions: list[BnplDecision]) -> list[list[str]]:
    """The declining reason codes of each decision (most decisive first)."""
    return [[r.code.value for r in d.reasons if r.declines] for d in decisions]


def rates(approved: np.ndarray, collection: np.ndarray) -> dict[str, float]:
    n = len(approved)
    return {
        "orders": float(n),
        "approved": float(approved.sum()),
        "approval_rate": float(approved.mean()) if n else float("nan"),
        "collection_rate_approved": float(collection[approved].mean()) if approved.any() else 0.0,
        "approved_to_collection": float(collection[approved].sum()),
    }


def money(orders: pd.DataFrame, approved: np.ndarray) -> dict[str, float]:
    """Pay-later lent (every approved order) and lost (principal still unpaid at the end of
    the run, of the approved orders whose outcome is known) when ``approved`` is lent;
    empty without ``lost_cents`` in ``orders``."""
    if "lost_cents" not in orders:
        return {}
    approved = np.asarray(approved, dtype=bool)
    matured = orders["matured"].to_numpy(bool) & approved
    lent = orders["amount_cents"].to_numpy(np.float64)
    lost = orders["lost_cents"].to_numpy(np.float64)
    lent_matured = lent[matured].sum()
    return {
        "lent_eur": float(lent[approved].sum() / 100),
        "lent_matured_eur": float(lent_matured / 100),
        "lost_eur": float(lost[matured].sum() / 100),
        "lost_share_of_lent": float(lost[matured].sum() / lent_matured) if lent_matured else 0.0,
    }


def decline_table(
    codes: list[list[str]], collection: np.ndarray | None
) -> dict[str, dict[str, float]]:
    """Per decline reason: the share of the orders it declines, the share it alone declines
    and, with ``collection`` (per order: did it reach an agency when approved?), how often
    the orders it declines did."""
    by_code: dict[str, list[int]] = {}
    alone: dict[str, int] = {}
    for i, row in enumerate(codes):
        for code in row:
            by_code.setdefault(code, []).append(i)
        if len(row) == 1:
            alone[row[0]] = alone.get(row[0], 0) + 1
    n = max(len(codes), 1)
    table: dict[str, dict[str, float]] = {}
    for code, rows in sorted(by_code.items(), key=lambda kv: -len(kv[1])):
        table[code] = {
            "declined_share": len(rows) / n,
            "declined_alone_share": alone.get(code, 0) / n,
        }
        if collection is not None:
            table[code]["collection_rate_declined"] = float(collection[rows].mean())
    return table


def order_days(orders: pd.DataFrame) -> np.ndarray:
    return np.array([to_day(d) for d in orders["issue_date"]], dtype=np.int64)


def evaluate_policy(
    policy: BnplPolicy,
    orders: pd.DataFrame,
    X: np.ndarray,
    p: np.ndarray,
    cases: np.ndarray,
    birth_years: np.ndarray,
    declines: dict[str, dict[str, float]] | None = None,
    offered: np.ndarray | None = None,
    cust: np.ndarray | None = None,
    limits: np.ndarray | None = None,
    counted: np.ndarray | None = None,
    adjustment: BnplAdjustment | None = None,
) -> dict[str, float]:
    """Approval and collection rates of ``policy`` on the orders, replayed day by day with
    the decline memory of the replay's own answers (:func:`replay_decisions`; ``cust``:
    each order's customer position, default one customer per order). With ``declines``
    given, it is filled per decline reason: the share of orders it declines, the share it
    alone declines, and how often those orders reached an agency under the naive run.
    With ``offered`` (a bool array, one per order) given, it is filled with the decisions,
    and ``limits`` with the limits. With ``lost_cents`` in ``orders`` the money figures
    (:func:`money`) are added. ``counted`` (a bool array, default all): the orders the
    figures count; the others are decided and remembered only (a warm-up for the decline
    memory). ``adjustment``: the bundle's pay-later adjustment (None: none)."""
    n = len(orders)
    decisions = replay_decisions(
        policy,
        np.arange(n) if cust is None else np.asarray(cust, dtype=np.int64),
        order_days(orders),
        orders["amount_cents"].to_numpy(np.int64),
        X,
        p,
        cases,
        birth_years,
        adjustment,
    )
    offer = np.array([d.offer for d in decisions], dtype=bool)
    if offered is not None:
        offered[:] = offer
    if limits is not None:
        limits[:] = [d.limit_eur for d in decisions]
    if counted is not None:
        rows = np.flatnonzero(counted)
        orders, offer = orders.iloc[rows], offer[rows]
        decisions = [decisions[i] for i in rows]
    collection = orders["collection"].to_numpy()
    if declines is not None:
        declines.update(decline_table(decline_codes(decisions), collection))
    return {**rates(offer, collection), **money(orders, offer)}


Replay = Callable[..., dict[str, float]]


@dataclass
class PolicyChoice:
    """What :func:`choose_policy` found on one set of orders."""

    #: the policy in force: the winning variant at its chosen cut-off (the given policy
    #: when it states no ``operating_point`` rule)
    policy: BnplPolicy
    #: the rules alone on the same orders (the yardstick) and why they declined
    rules_only: dict[str, float]
    rules_only_declines: dict[str, dict[str, float]]
    #: the trade-off curve of the policy in force's variant (of the given policy without a rule)
    curve: list[dict[str, float]]
    #: every variant the rule was put to: its curve and chosen point
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the chosen point (``cutoff``, rates, ``meets_rule``, ``variant``); empty without a rule
    chosen: dict[str, Any] = field(default_factory=dict)


def policy_variants(policy: BnplPolicy) -> dict[str, BnplPolicy]:
    """The variants of ``policy`` its ``operating_point`` rule chooses between, by name:
    the policy as it is; with arrears left to the model (``arrears_rule: by_evidence``; the
    model's features include the days past due); and each without the decline memory's
    declining rules (``memory_rule: by_evidence``: no sticky codes, no stricter cut-off
    after a decline). Names say what each variant is, so a policy chosen already (a
    trained bundle's, arrears to the model and no sticky declines) is one variant, named
    as such, not four copies named for rules it no longer has."""
    op = policy.operating_point

    def sticky(candidate: BnplPolicy) -> bool:
        return bool(candidate.sticky_codes and candidate.sticky_days) or (
            candidate.after_decline_cutoff_factor < 1
        )

    def name(candidate: BnplPolicy) -> str:
        arrears = "hard_rule" if candidate.arrears_grace_days is not None else "as_model_input"
        return f"arrears_{arrears}" + ("" if sticky(candidate) else "+no_sticky_declines")

    candidates = [policy]
    if op.get("arrears_rule") == "by_evidence" and policy.arrears_grace_days is not None:
        candidates.append(replace(policy, arrears_grace_days=None))
    if op.get("memory_rule") == "by_evidence":
        candidates += [
            replace(c, sticky_codes=(), sticky_days=0, after_decline_cutoff_factor=1.0)
            for c in candidates
            if sticky(c)
        ]
    return {name(c): c for c in candidates}


def choose_policy(
    policy: BnplPolicy, replay: Replay, log: Callable[[str], None] = lambda text: None
) -> PolicyChoice:
    """Put ``policy``'s stated rule (``operating_point``) to the orders ``replay`` decides
    (``replay(policy, **kw)``: :func:`evaluate_policy` on them): the rules alone, the
    trade-off curve of each variant (:func:`policy_variants`) over the rule's cut-offs,
    the point the rule picks on each (:func:`choose_operating_point`), and the variant
    whose point meets the rule with the fewest approved orders at an agency (when none
    meets it, the one that approves the most)."""
    op = policy.operating_point
    rules_declines: dict[str, dict[str, float]] = {}
    rules_only = replay(policy.rules_only(), declines=rules_declines)
    cutoffs = tuple(op.get("cutoffs", CUTOFFS))

    def curve_of(candidate: BnplPolicy) -> list[dict[str, float]]:
        return [{"cutoff": c, **replay(candidate.with_cutoff(min(c, 0.999)))} for c in cutoffs]

    if not op:
        log(f"replaying {len(cutoffs)} cut-offs (the policy states no rule)")
        return PolicyChoice(policy, rules_only, rules_declines, curve_of(policy))
    variants: dict[str, dict[str, Any]] = {}
    candidates = policy_variants(policy)
    for name, candidate in candidates.items():
        log(f"replaying {len(cutoffs)} cut-offs: {name}")
        points = curve_of(candidate)
        variants[name] = {
            "curve": points,
            "chosen": choose_operating_point(points, rules_only, op),
        }
    meeting = [n for n, v in variants.items() if v["chosen"]["meets_rule"]]
    winner = (
        min(meeting, key=lambda n: variants[n]["chosen"]["collection_rate_approved"])
        if meeting
        else max(variants, key=lambda n: variants[n]["chosen"]["approval_rate"])
    )
    chosen = {**variants[winner]["chosen"], "variant": winner}
    return PolicyChoice(
        policy=candidates[winner].with_cutoff(min(chosen["cutoff"], 0.999)),
        rules_only=rules_only,
        rules_only_declines=rules_declines,
        curve=variants[winner]["curve"],
        variants=variants,
        chosen=chosen,
    )

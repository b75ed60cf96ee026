"""The day-stepping engine: one loop over days, numpy over customers and open invoices.

Order of events within a day (a day's events are dated that day):

1. on the 1st: monthly income transitions (job loss/recovery, income cuts), then the
   hidden state at the start of the month is recorded (balance before the day's events);
2. income (main pay, toeslagen), rent/fixed costs, unexpected cost shocks;
3. new invoices (regular monthly invoice, approved pay-later orders);
4. direct debits (first attempts on the due date, one retry 5 business days later);
5. arrangement instalments; 6. voluntary payments (transfers);
6b. calls of a contact team, when the policy has one (:mod:`training.simulation.contact`);
7. dunning steps for invoices still unpaid (and arrangements offered at them, or taken up
   in a call);
8. daily living spending.

Conventions (documented choices):

* Every random draw is a function of (seed, purpose, day, customer)
  (:mod:`training.simulation.streams`): a decision for one customer (debit day, plan
  amount, pay-later answer) changes only that customer's history in a counterfactual run.
* A debit succeeds iff the *available* balance (balance + allowed overdraft) covers it.
* A reversed debit (MD06, "unwilling" customers only) is one ``debit_attempts`` row with
  result ``reversed``, dated on the collection day, and **no** payment row: the money
  stays with the customer and the invoice stays unpaid (no retry; dunning goes on).
* Collection costs are recorded on ``collection_steps`` (WIK at the agency step on the
  invoice amount; a fixed bailiff cost) but never collected: payments only settle
  principal, and an invoice is settled when its payments add up to its amount.
* An arrangement covers all of the customer's overdue unpaid invoices; while it runs
  they get no dunning steps, no debit retries and no other payments. Instalments are
  ``payments`` rows with method ``arrangement`` (allocated oldest invoice first).
  ``end_date`` is the day of the last instalment (kept) or the day the grace period of
  a missed instalment ran out (broken). A plan whose policy offers a pause may be paused
  when the customer's income drops (:mod:`training.simulation.pauses`): no instalment
  is due during the pause and the end date moves.
* A policy may answer an arrangement request with 0 for a customer: no plan, a referral
  to debt help (CCD2 art. 36). The covered invoices then get no dunning step for
  ``referral_pause_days`` (the intake; DOMAIN.md: phase 1 takes about 4 months), while
  voluntary payments go on; after it the creditor's dunning path resumes.
* Payments against an invoice at the agency or bailiff stage have method ``agency``.
* Pay-later invoices are paid voluntarily before the regular ones, on their own terms
  (``BNPL_P_PAY``; less of the living costs kept back; the overdraft may be used), and an
  approved order replaces part of the living spending that follows (see SimulationConfig).

Why one file of ~800 lines: :func:`run` is one loop over days whose steps share the
day's state (balances, open invoices, the day's random streams); split over modules, the
order of a day's events fixed above could no longer be read in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.legal import legal_table_on, legal_tables
from training.simulation.pauses import PAUSE_COLUMNS, pause_on_income_drop
from training.simulation.policy import (
    ArrangementAnswer,
    ArrangementRequest,
    BnplRequest,
    CollectionPolicy,
)
from training.simulation.population import (
    RNG_ARRANGEMENT,
    RNG_BNPL,
    RNG_DEBIT,
    RNG_INCOME,
    RNG_INCOME_SHOCK,
    RNG_PAUSE,
    RNG_PAY,
    RNG_SHOCK,
    RNG_SPEND,
    PopulationState,
)
from training.simulation.streams import Streams

if TYPE_CHECKING:
    from training.simulation.calendar import Calendar
    from training.simulation.config import SimulationConfig

NEVER = 1 << 40
BALANCE_EVERY_DAYS = 7  # open-banking balance observed once a week (end of day)
STEP_OFFSETS = np.array(
    [7, 21, 37, 120, NEVER], dtype=np.int64
)  # days after due: reminder, letter, agency, bailiff
# Pay-later providers remind early and hand over late: a free reminder 2 days after the
# missed date, costs and the agency only after 90 days (DOMAIN.md §4, Riverty "Betaal in 3";
# NL BNPL code of conduct: more lenient reminders and collection).
BNPL_STEP_OFFSETS = np.array([2, 21, 90, 180, NEVER], dtype=np.int64)
PRODUCT_BNPL = 3
# pay-later goods replace living spending at 1/BNPL_SUBSTITUTE_DAYS of what is left per day
# (about 60% within 14 days, the shorter payment term; see SimulationConfig)
BNPL_SUBSTITUTE_DAYS = 15.0
ARRANGEMENT_GRACE = 14  # days after an instalment's date before it counts as missed
FIRST_INSTALMENT_AFTER = 7
# pay methods (order of features.schemas.PaymentMethod)
PM_DD, PM_TRANSFER, PM_ARRANGEMENT, PM_AGENCY = 0, 1, 2, 3
# debit results / reasons
DR_SUCCESS, DR_FAILED, DR_REVERSED = 0, 1, 2
RC_NONE, RC_AM04, RC_MS03, RC_MD06 = -1, 0, 1, 2
# arrangement outcomes
AO_ACTIVE, AO_KEPT, AO_BROKEN = 0, 1, 2
# income sources of receipts
IS_SALARY, IS_BENEFIT, IS_PENSION, IS_ALLOWANCE = 0, 1, 2, 3

# P(paying today | able), by behaviour (willing, forgetful, cannot_cope, unwilling) and
# the furthest stage of the customer's open invoices: not yet due, overdue, reminder,
# 14-day letter, agency, bailiff.
P_PAY = np.array(
    [
        [0.15, 0.30, 0.45, 0.55, 0.60, 0.60],
        [0.02, 0.03, 0.35, 0.50, 0.55, 0.60],
        [0.05, 0.06, 0.10, 0.15, 0.20, 0.30],
        [0.00, 0.00, 0.00, 0.01, 0.10, 0.35],
    ]
)
# the same for pay-later invoices (stages at BNPL_STEP_OFFSETS: reminder +2 days, letter +21,
# agency +90). Assumptions (DOMAIN.md §4, §6): the provider's app reminds before the due date
# and payment is one tap, so forgetful customers mostly pay on time; the goods were chosen
# and further pay-later use is blocked while a payment is overdue, so unwilling customers
# pay late rather than not at all. Willing and cannot-cope rows as for other invoices.
BNPL_P_PAY = np.array(
    [
        [0.15, 0.30, 0.45, 0.55, 0.60, 0.60],
        [0.08, 0.10, 0.35, 0.50, 0.55, 0.60],
        [0.05, 0.06, 0.10, 0.15, 0.20, 0.30],
        [0.01, 0.01, 0.02, 0.04, 0.10, 0.35],
    ]
)
# share of the money needed until the next pay (rent still to come + living costs) that a
# customer keeps back before paying an invoice voluntarily, by behaviour
RESERVE_SHARE = np.array([1.0, 1.0, 1.0, 1.0])


def _next_event(
    days: np.ndarray, cust: np.ndarray, n: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """For events sorted by day: the day of the same customer's next event; and each customer's first."""
    order = np.lexsort((days, cust))
    d_s, c_s = days[order], cust[order]
    nxt_s = np.full(len(days), horizon, np.int64)
    same = c_s[1:] == c_s[:-1]
    nxt_s[:-1][same] = d_s[1:][same]
    nxt = np.empty_like(nxt_s)
    nxt[order] = nxt_s
    first = np.full(n, horizon, np.int64)
    first[c_s[::-1]] = d_s[::-1]
    return nxt, first


@dataclass
class RawEvents:
    """Integer-coded events straight from the loop (indices into the population)."""

    inv_cust: np.ndarray
    inv_issue: np.ndarray
    inv_due: np.ndarray
    inv_amount: np.ndarray
    inv_product: np.ndarray  # 0..2 regular product, 3 = bnpl
    inv_method: np.ndarray  # 0 direct debit, 1 transfer
    inv_settled: np.ndarray  # day the payments reached the amount, or -1
    payments: dict[str, np.ndarray]
    debits: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    arrangements: dict[str, np.ndarray]
    receipts: dict[str, np.ndarray]
    balances: dict[str, np.ndarray]  # weekly end-of-day balances seen through open banking
    truth_monthly: dict[str, np.ndarray]
    debit_day_used: np.ndarray


class _Log:
    """Collects per-day arrays and concatenates them once at the end."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in names}

    def add(self, **cols: np.ndarray | int) -> None:
        sizes = [np.size(v) for v in cols.values() if np.ndim(v) > 0]
        size = max(sizes) if sizes else 1
        if size == 0:
            return
        for k in self.names:
            v = cols[k]
            self.parts[k].append(
                np.broadcast_to(np.asarray(v), (size,)).copy() if np.ndim(v) == 0 else np.asarray(v)
            )

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns so far (read only). The parts are merged in place: a policy that
        reads the events every day (``observed``) then pays one copy of each column, not a
        concatenation of every day's part."""
        for k, v in self.parts.items():
            if len(v) > 1:
                self.parts[k] = [np.concatenate(v)]
        return {k: (v[0] if v else np.empty(0, dtype=np.int64)) for k, v in self.parts.items()}


def _group_before(cust_sorted: np.ndarray, values_sorted: np.ndarray) -> np.ndarray:
    """Sum of ``values`` of earlier rows of the same customer (rows sorted by customer)."""
    cum = np.cumsum(values_sorted)
    before_all = cum - values_sorted
    start = (
        np.r_[True, cust_sorted[1:] != cust_sorted[:-1]] if len(cust_sorted) else np.empty(0, bool)
    )
    group = np.cumsum(start) - 1
    return before_all - before_all[start][group]


def _regular_invoices(pop: PopulationState, policy: CollectionPolicy) -> tuple[np.ndarray, ...]:
    cal, cfg = pop.calendar, pop.config
    T = cal.n_days
    n = pop.n
    new_days = (
        pop.debit_day if policy.debit_day is None else np.asarray(policy.debit_day, dtype=np.int64)
    )
    if len(new_days) != n:
        raise ValueError(f"policy.debit_day has {len(new_days)} entries for {n} customers")
    from_day = -NEVER if policy.debit_day_from is None else cal.day_of(policy.debit_day_from)
    issue_l, due_l, cust_l, amount_l = [], [], [], []
    everyone = np.arange(n)
    for m in range(0, cfg.months + 1):
        month_start = int(cal.day_in_month(m, np.asarray(1)))
        days = new_days if month_start >= from_day else pop.debit_day
        collect = cal.next_business(cal.day_in_month(m, days))
        bill = cal.day_in_month(m, pop.bill_day)
        issue = np.where(pop.method == 0, collect - 14, bill)
        due = np.where(pop.method == 0, collect, bill + 14)
        keep = (issue >= pop.created_day) & (issue < T)
        issue_l.append(issue[keep])
        due_l.append(due[keep])
        cust_l.append(everyone[keep])
        amount_l.append(pop.invoice_amount[m - cal.month_lo][keep])
    issue, due, cust, amount = (
        np.concatenate(x).astype(np.int64) for x in (issue_l, due_l, cust_l, amount_l)
    )
    order = np.lexsort((cust, issue))
    final_days = (
        new_days
        if from_day <= int(cal.day_in_month(cfg.months - 1, np.asarray(1)))
        else pop.debit_day
    )
    return issue[order], due[order], cust[order], amount[order], final_days


def _income_shock(
    cfg: SimulationConfig, cal: Calendar, streams: Streams, n: int
) -> tuple[int, np.ndarray]:
    """(first day, income factor per customer) of the configured population-wide income
    shock; a day after the period (nobody hit) when it is off. Who is hit is drawn from a
    stream of its own, so switching the shock on moves no other draw."""
    start = cfg.income_shock_start()
    if start is None:
        return NEVER, np.ones(n)
    hit = streams.day(RNG_INCOME_SHOCK, 0).uniform() < cfg.income_shock_share
    return cal.day_of(start), np.where(hit, 1.0 - cfg.income_shock_cut, 1.0)


def run(
    pop: PopulationState,
    policy: CollectionPolicy | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RawEvents:
    """Simulate the population's whole period under ``policy`` (default: current practice)."""
    policy = policy or CollectionPolicy.current_practice()
    cfg, cal = pop.config, pop.calendar
    T, n, lo = cal.n_days, pop.n, cal.lo
    streams = Streams(cfg.seed, n)
    earliest_legal = legal_tables()[0].effective_from

    # --- customer state -------------------------------------------------------------
    bal = pop.initial_balance.astype(np.int64).copy()
    extra = np.zeros(n)
    living_daily = pop.living_costs / 30.44
    fixed_other = (pop.fixed_costs - pop.base_invoice_amount).astype(np.int64)
    unemployed = np.zeros(n, bool)
    skip_next = np.zeros(n, bool)
    cut_left = np.zeros(n, np.int64)
    cut_factor = np.ones(n)
    main_income = pop.net_income.astype(np.float64).copy()
    last_shock = np.full(n, -NEVER, np.int64)
    shock_day, shock_factor = _income_shock(cfg, cal, streams, n)
    active_arr = np.full(n, -1, np.int64)
    # pay-later goods not yet "used up": they replace living spending while this runs down
    bnpl_substitute = np.zeros(n)
    behaviour = pop.behaviour
    salary = pop.source == 0
    monthly_pattern = pop.pattern <= 1
    pattern_mult = np.array([1.0, 1.0, 12 / 13, 12 / 52, 0.5])

    # --- invoices -------------------------------------------------------------------
    r_issue, r_due, r_cust, r_amount, debit_day_used = _regular_invoices(pop, policy)
    r_ptr = np.searchsorted(r_issue, np.arange(T + 1))
    cap = len(r_issue) + int(pop.bnpl_rate.sum() * cfg.months * 1.3) + 1000
    inv = {
        "cust": np.zeros(cap, np.int64),
        "issue": np.zeros(cap, np.int64),
        "due": np.zeros(cap, np.int64),
        "amount": np.zeros(cap, np.int64),
        "paid": np.zeros(cap, np.int64),
        "product": np.zeros(cap, np.int64),
        "method": np.zeros(cap, np.int64),
        "stage": np.zeros(cap, np.int64),
        "next_step": np.zeros(cap, np.int64),
        "next_debit": np.zeros(cap, np.int64),
        "n_debits": np.zeros(cap, np.int64),
        "manual": np.zeros(cap, bool),
        "arr": np.zeros(cap, np.int64),
        "settled": np.zeros(cap, np.int64),
    }
    n_inv = 0
    open_idx = np.empty(0, np.int64)

    def add_invoices(cust, issue, due, amount, product, method) -> None:
        nonlocal n_inv, open_idx, inv
        k = len(cust)
        if k == 0:
            return
        if n_inv + k > len(inv["cust"]):
            grow = max(k, len(inv["cust"]) // 2)
            inv = {key: np.concatenate([a, np.zeros(grow, a.dtype)]) for key, a in inv.items()}
        s = slice(n_inv, n_inv + k)
        inv["cust"][s], inv["issue"][s], inv["due"][s], inv["amount"][s] = cust, issue, due, amount
        inv["product"][s], inv["method"][s] = product, method
        inv["paid"][s] = 0
        inv["stage"][s] = 0
        inv["next_step"][s] = due + np.where(
            product == PRODUCT_BNPL, BNPL_STEP_OFFSETS[0], STEP_OFFSETS[0]
        )
        inv["next_debit"][s] = np.where(method == 0, due, -1)
        inv["n_debits"][s] = 0
        inv["manual"][s] = False
        inv["arr"][s] = -1
        inv["settled"][s] = -1
        open_idx = np.concatenate([open_idx, np.arange(n_inv, n_inv + k)])
        n_inv += k

    # --- arrangements ---------------------------------------------------------------
    arr_cap = max(1000, n)
    arr = {
        k: np.zeros(arr_cap, np.int64)
        for k in (
            "cust",
            "start",
            "debt",
            "monthly",
            "term",
            "outcome",
            "end",
            "anchor",
            "k",
            "tries",
            "remaining",
            "next_due",
            *PAUSE_COLUMNS,
        )
    }
    arr_fits = np.zeros(arr_cap, bool)
    n_arr = 0
    active_list = np.empty(0, np.int64)

    # --- logs -----------------------------------------------------------------------
    pay_log = _Log("inv", "day", "amount", "method")
    deb_log = _Log("inv", "day", "amount", "result", "reason")
    step_log = _Log("inv", "day", "step", "cost")
    rec_log = _Log("cust", "day", "amount", "source")
    bal_log = _Log("cust", "day", "balance")
    observed = np.flatnonzero(pop.has_open_banking)
    truth_log = _Log(
        "cust", "month", "balance", "income", "unemployed", "income_cut", "in_shock", "free_room"
    )

    def events_so_far(truth_monthly: dict[str, np.ndarray], debit_days: np.ndarray) -> RawEvents:
        """The events logged up to now (the loop's state is read at call time)."""
        arrangements = {k: v[:n_arr].copy() for k, v in arr.items()}
        arrangements["fits"] = arr_fits[:n_arr].copy()
        return RawEvents(
            inv_cust=inv["cust"][:n_inv].copy(),
            inv_issue=inv["issue"][:n_inv].copy(),
            inv_due=inv["due"][:n_inv].copy(),
            inv_amount=inv["amount"][:n_inv].copy(),
            inv_product=inv["product"][:n_inv].copy(),
            inv_method=inv["method"][:n_inv].copy(),
            inv_settled=inv["settled"][:n_inv].copy(),
            payments=pay_log.arrays(),
            debits=deb_log.arrays(),
            steps=step_log.arrays(),
            arrangements=arrangements,
            receipts=rec_log.arrays(),
            balances=bal_log.arrays(),
            truth_monthly=truth_monthly,
            debit_day_used=debit_days,
        )

    def observed_so_far() -> RawEvents:
        """What a creditor could observe so far (for policies that may use only that)."""
        return events_so_far({}, np.zeros(0, np.int64))

    pay_ptr = np.searchsorted(pop.pay_day, np.arange(T + 1))
    allow_ptr = np.searchsorted(pop.allow_day, np.arange(T + 1))
    rent_ptr = np.searchsorted(pop.rent_ev_day, np.arange(T + 1))
    everyone = np.arange(n)
    pay_next, next_pay = _next_event(pop.pay_day, pop.pay_cust, n, T + 31)
    rent_next, next_rent = _next_event(pop.rent_ev_day, pop.rent_ev_cust, n, T + 31)
    reserve_share = RESERVE_SHARE[behaviour]
    wik_cache: dict[tuple[int, int], int] = {}
    # calls of a contact team (training.simulation.contact); None: no step, no draws
    contact = None if policy.contact is None else policy.contact.begin(n)
    no_take_up = np.zeros(n, bool)

    def record_payments(
        ii: np.ndarray, amounts: np.ndarray, method: np.ndarray | int, d: int
    ) -> None:
        keep = amounts > 0
        ii, amounts = ii[keep], amounts[keep]
        if len(ii) == 0:
            return
        method = np.broadcast_to(method, keep.shape)[keep] if np.ndim(method) else method
        inv["paid"][ii] += amounts
        done = (inv["paid"][ii] >= inv["amount"][ii]) & (inv["settled"][ii] < 0)
        inv["settled"][ii[done]] = d
        np.subtract.at(bal, inv["cust"][ii], amounts)
        pay_log.add(inv=ii, day=d, amount=amounts, method=method)

    def allocate(ii: np.ndarray, budget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spread per-customer ``budget`` over invoices ``ii`` (oldest first); returns (ii, amounts)."""
        cc = inv["cust"][ii]
        order = np.argsort(cc, kind="stable")
        ii, cc = ii[order], cc[order]
        out = inv["amount"][ii] - inv["paid"][ii]
        before = _group_before(cc, out)
        pay = np.clip(budget[cc] - before, 0, out).astype(np.int64)
        return ii, pay

    for d in range(T):
        ci = d - lo
        dom = cal.dom[ci]
        if dom == 1:
            # The truth row of a month is the state before today's draws: what held up to
            # the end of yesterday. A snapshot's as_of is this day and its features see
            # only events before it; a job loss or income cut drawn today is the label
            # horizon's future, which the oracle must not see either.
            income_now = np.round(main_income).astype(np.int64) + pop.allowance
            truth_log.add(
                cust=everyone,
                month=int(cal.month_of[ci]),
                balance=bal.copy(),
                income=income_now,
                unemployed=unemployed.copy(),
                income_cut=cut_left > 0,
                in_shock=unemployed | (cut_left > 0) | (d - last_shock < 60),
                free_room=income_now - pop.fixed_costs - pop.living_costs,
            )
            # ---- monthly transitions of income (path independent) ----
            draws = streams.day(RNG_INCOME, d)
            u = draws.uniform(4)
            factors = draws.generator.uniform(0.6, 0.85, n)
            durations = draws.generator.integers(2, 9, n)
            lose = salary & ~unemployed & (u[0] < cfg.job_loss_rate)
            recover = unemployed & (u[1] < cfg.job_recovery_rate)
            unemployed = (unemployed | lose) & ~recover
            skip_next |= lose & (u[2] < 0.5)
            cut_left = np.maximum(cut_left - 1, 0)
            new_cut = (pop.source != 2) & (cut_left == 0) & (u[3] < cfg.income_cut_rate)
            cut_left[new_cut] = durations[new_cut]
            cut_factor = np.where(new_cut, factors, np.where(cut_left > 0, cut_factor, 1.0))
            main_income = np.where(unemployed, pop.benefit_level, pop.net_income) * cut_factor
            if d >= shock_day:  # the population-wide income shock (off by default)
                main_income = main_income * shock_factor
            pause_on_income_drop(
                arr,
                active_list,
                lose | new_cut,
                streams.day(RNG_PAUSE, d),
                cfg.plan_pause_ask_rate,
                cal,
                d,
            )

        # ---- income ----
        s = slice(pay_ptr[d], pay_ptr[d + 1])
        c = pop.pay_cust[s]
        if len(c):
            mult = pattern_mult[pop.pattern[c]] * np.where(
                pop.pattern[c] == 4, pop.pay_noise[s], 1.0
            )
            may = (cal.month_number[ci] == 5) & salary[c] & ~unemployed[c] & monthly_pattern[c]
            amount = np.round(main_income[c] * mult * np.where(may, 1.8, 1.0)).astype(np.int64)
            amount[skip_next[c]] = 0
            skip_next[c] = False
            next_pay[c] = pay_next[s]
            surplus = bal[c] - pop.buffer[c]
            extra[c] = np.where(
                surplus > 0, surplus / 30.0, np.maximum(surplus / 60.0, -0.3 * living_daily[c])
            )
            bal[c] += amount
            seen = pop.has_open_banking[c] & (pop.created_day[c] <= d) & (amount > 0)
            src = np.where(salary[c] & unemployed[c], IS_BENEFIT, pop.source[c])
            rec_log.add(cust=c[seen], day=d, amount=amount[seen], source=src[seen])
        s = slice(allow_ptr[d], allow_ptr[d + 1])
        c = pop.allow_cust[s]
        if len(c):
            bal[c] += pop.allowance[c]
            seen = pop.has_open_banking[c] & (pop.created_day[c] <= d)
            rec_log.add(cust=c[seen], day=d, amount=pop.allowance[c][seen], source=IS_ALLOWANCE)
        s = slice(rent_ptr[d], rent_ptr[d + 1])
        c = pop.rent_ev_cust[s]
        bal[c] -= fixed_other[c]
        next_rent[c] = rent_next[s]
        # ---- unexpected costs ----
        draws = streams.day(RNG_SHOCK, d)
        u = draws.uniform()
        shock_amount = draws.generator.uniform(300_00, 1500_00, n)
        hit = u < cfg.cost_shock_rate / 30.44
        bal[hit] -= np.round(shock_amount[hit]).astype(np.int64)
        last_shock[hit] = d
        small = (u >= cfg.cost_shock_rate / 30.44) & (
            u < (cfg.cost_shock_rate + cfg.small_shock_rate) / 30.44
        )
        bal[small] -= np.round(75_00 + (shock_amount[small] - 300_00) * (225 / 1200)).astype(
            np.int64
        )

        # ---- new invoices ----
        s = slice(r_ptr[d], r_ptr[d + 1])
        add_invoices(
            r_cust[s],
            r_issue[s],
            r_due[s],
            r_amount[s],
            pop.product[r_cust[s]],
            pop.method[r_cust[s]],
        )
        draws = streams.day(RNG_BNPL, d)
        orders = np.flatnonzero(draws.uniform() < pop.bnpl_rate / 30.44)
        if len(orders):
            log_amount = draws.normal_at(orders, np.log(70_00), 0.7)
            amount = np.round(np.clip(np.exp(log_amount), 20_00, 400_00)).astype(np.int64)
            term = np.where(draws.uniform()[orders] < 0.6, 14, 30)
            known = pop.created_day[orders] <= d
            orders, amount, term = orders[known], amount[known], term[known]
            if len(orders):
                o = open_idx
                out = inv["amount"][o] - inv["paid"][o]
                at_agency = np.bincount(
                    inv["cust"][o], weights=(inv["stage"][o] >= 3) & (out > 0), minlength=n
                )
                overdue = np.bincount(
                    inv["cust"][o], weights=(inv["due"][o] < d) & (out > 0), minlength=n
                )
                request = BnplRequest(
                    day=cal.date_of(d),
                    customer_index=orders,
                    customer_id=pop.customer_ids[orders],
                    amount_cents=amount,
                    open_agency_claims=at_agency[orders].astype(np.int64),
                    overdue_invoices=overdue[orders].astype(np.int64),
                    population=pop,
                    observed=observed_so_far,
                )
                ok = np.asarray(policy.approve_bnpl(request), dtype=bool)
                k = int(ok.sum())
                np.add.at(bnpl_substitute, orders[ok], cfg.bnpl_substitution_share * amount[ok])
                add_invoices(
                    orders[ok],
                    np.full(k, d),
                    d + term[ok],
                    amount[ok],
                    np.full(k, 3),
                    np.full(k, 1),
                )

        # ---- direct debits ----
        o = open_idx
        out = inv["amount"][o] - inv["paid"][o]
        m = (inv["next_debit"][o] == d) & (inv["arr"][o] < 0) & (out > 0)
        if m.any():
            ii = o[m]
            cc = inv["cust"][ii]
            order = np.argsort(cc, kind="stable")
            ii, cc = ii[order], cc[order]
            amount = inv["amount"][ii] - inv["paid"][ii]
            before = _group_before(cc, amount)
            success = before + amount <= bal[cc] + pop.overdraft[cc]
            u = streams.day(RNG_DEBIT, d).per_case(cc, 2)
            reversed_ = success & (behaviour[cc] == 3) & (u[0] < cfg.reversal_rate)
            paid = success & ~reversed_
            failed = ~success
            result = np.where(paid, DR_SUCCESS, np.where(failed, DR_FAILED, DR_REVERSED))
            reason = np.where(
                paid, RC_NONE, np.where(failed, np.where(u[1] < 0.8, RC_AM04, RC_MS03), RC_MD06)
            )
            deb_log.add(inv=ii, day=d, amount=amount, result=result, reason=reason)
            first = inv["n_debits"][ii] == 0
            inv["n_debits"][ii] += 1
            retry = cal.add_business_days(np.full(len(ii), d), 5)
            inv["next_debit"][ii] = np.where(failed & first, retry, -1)
            inv["manual"][ii[~paid]] = True
            record_payments(ii[paid], amount[paid], PM_DD, d)

        # ---- arrangement instalments ----
        if len(active_list):
            a = active_list[arr["next_due"][active_list] <= d]
            if len(a):
                c = arr["cust"][a]
                inst = np.minimum(arr["monthly"][a], arr["remaining"][a])
                room = np.where(arr_fits[a], bal[c] + pop.overdraft[c], bal[c])
                pays = (arr_fits[a] | (arr["k"][a] < arr["tries"][a])) & (room - inst >= 0)
                if pays.any():
                    budget = np.zeros(n, np.int64)
                    budget[c[pays]] = inst[pays]
                    o = open_idx
                    ii = o[(inv["arr"][o] >= 0) & (budget[inv["cust"][o]] > 0)]
                    ii, amounts = allocate(ii, budget)
                    record_payments(ii, amounts, PM_ARRANGEMENT, d)
                    ap = a[pays]
                    arr["remaining"][ap] -= inst[pays]
                    arr["k"][ap] += 1
                    arr["next_due"][ap] = cal.add_months(arr["anchor"][ap], arr["k"][ap])
                    kept = ap[arr["remaining"][ap] <= 0]
                    arr["outcome"][kept] = AO_KEPT
                    arr["end"][kept] = d
                    active_arr[arr["cust"][kept]] = -1
                missed = a[~pays & (d >= arr["next_due"][a] + ARRANGEMENT_GRACE)]
                if len(missed):
                    arr["outcome"][missed] = AO_BROKEN
                    arr["end"][missed] = d
                    flag = np.zeros(arr_cap, bool)
                    flag[missed] = True
                    o = open_idx
                    ii = o[(inv["arr"][o] >= 0)]
                    ii = ii[flag[inv["arr"][ii]]]
                    inv["arr"][ii] = -1
                    inv["next_step"][ii] = np.maximum(inv["next_step"][ii], d + 7)
                    active_arr[arr["cust"][missed]] = -1
                active_list = active_list[arr["outcome"][active_list] == AO_ACTIVE]

        # ---- voluntary payments ----
        # Pay-later invoices first, on their own: a separate small debt in the provider's
        # app, paid when the money covers it, not queued behind the customer's older
        # invoices; then the regular invoices, oldest first (see SimulationConfig).
        u = streams.day(RNG_PAY, d).uniform(2)
        for bnpl_pass, u_pay in ((True, u[1]), (False, u[0])):
            o = open_idx
            out = inv["amount"][o] - inv["paid"][o]
            elig = (inv["arr"][o] < 0) & (out > 0) & ((inv["method"][o] == 1) | inv["manual"][o])
            elig &= (inv["product"][o] == PRODUCT_BNPL) == bnpl_pass
            if not elig.any():
                continue
            ii = o[elig]
            cc = inv["cust"][ii]
            out = out[elig]
            stage_idx = np.where(
                inv["stage"][ii] > 0, inv["stage"][ii] + 1, (inv["due"][ii] < d).astype(np.int64)
            )
            cust_stage = np.zeros(n, np.int64)
            np.maximum.at(cust_stage, cc, stage_idx)
            total = np.bincount(cc, weights=out, minlength=n)
            order = np.argsort(cc, kind="stable")
            cs = cc[order]
            first = np.r_[True, cs[1:] != cs[:-1]]
            oldest = np.zeros(n)
            oldest[cs[first]] = out[order][first]
            to_pay = np.maximum(next_pay - d, 1)
            rent_due = np.where(next_rent < next_pay, fixed_other, 0)
            if bnpl_pass:
                reserve = cfg.bnpl_living_reserve_share * living_daily * to_pay + rent_due
            else:
                reserve = reserve_share * (living_daily * to_pay + rent_due)
            budget = np.floor(bal - reserve - pop.margin)
            if bnpl_pass:
                budget += cfg.bnpl_overdraft_share * pop.overdraft
            p = (BNPL_P_PAY if bnpl_pass else P_PAY)[behaviour, cust_stage]
            if contact is not None:  # a reached customer nudged to pay
                p = contact.pay_probability(p, d)
            has = total > 0
            full = has & (u_pay < p) & (budget >= oldest)
            partial = has & ~full & (u_pay < 0.4 * p) & (cust_stage >= 2) & (budget >= 20_00)
            amount = np.where(
                full, np.minimum(total, budget), np.where(partial, budget // 100 * 100, 0)
            )
            if (amount > 0).any():
                amount = amount.astype(np.int64)
                pick = amount[cc] > 0
                ii, pays = allocate(ii[pick], amount)
                method = np.where(inv["stage"][ii] >= 3, PM_AGENCY, PM_TRANSFER)
                record_payments(ii, pays, method, d)

        # ---- contacts: a reached customer may take up a plan or help (made below) ----
        take_up = no_take_up
        if contact is not None:
            take_up = contact.step(d, pop, streams, inv, open_idx, active_arr, observed_so_far)

        # ---- dunning ----
        o = open_idx
        out = inv["amount"][o] - inv["paid"][o]
        m = (inv["next_step"][o] <= d) & (inv["arr"][o] < 0) & (out > 0)
        if m.any() or take_up.any():
            ii = o[m]
            stage = inv["stage"][ii]
            cost = np.zeros(len(ii), np.int64)
            agency = np.flatnonzero(stage == 2)
            if len(agency):
                on = max(cal.date_of(d), earliest_legal)
                table = legal_table_on(on)
                for j in agency:
                    key = (int(inv["amount"][ii[j]]), on.toordinal())
                    if key not in wik_cache:
                        wik_cache[key] = table.wik.costs_cents(key[0])
                    cost[j] = wik_cache[key]
            cost[stage == 3] = cfg.bailiff_cost_cents
            step_log.add(inv=ii, day=d, step=stage, cost=cost)
            inv["stage"][ii] = stage + 1
            offsets = np.where(
                inv["product"][ii] == PRODUCT_BNPL,
                BNPL_STEP_OFFSETS[stage + 1],
                STEP_OFFSETS[stage + 1],
            )
            inv["next_step"][ii] = inv["due"][ii] + offsets
            # arrangements offered at the agency step (sometimes at the 14-day letter)
            cc = inv["cust"][ii]
            trig_agency = np.zeros(n, bool)
            trig_letter = np.zeros(n, bool)
            trig_agency[cc[stage == 2]] = True
            trig_letter[cc[stage == 1]] = True
            cand = np.flatnonzero((trig_agency | trig_letter | take_up) & (active_arr < 0))
            draws = streams.day(RNG_ARRANGEMENT, d)
            if len(cand):
                rate = np.where(
                    trig_agency[cand], cfg.arrangement_offer_rate, cfg.arrangement_offer_rate_letter
                )
                rate = np.where(take_up[cand], 1.0, rate)  # the contacted customer asked
                cand = cand[draws.uniform()[cand] < rate]
            if len(cand):
                chosen = np.zeros(n, bool)
                chosen[cand] = True
                o = open_idx
                out = inv["amount"][o] - inv["paid"][o]
                cover = o[
                    chosen[inv["cust"][o]] & (inv["arr"][o] < 0) & (out > 0) & (inv["due"][o] < d)
                ]
                debt = np.bincount(
                    inv["cust"][cover],
                    weights=inv["amount"][cover] - inv["paid"][cover],
                    minlength=n,
                )
                cand = cand[debt[cand] > 0]
                if len(cand):
                    debt_c = debt[cand].astype(np.int64)
                    arrangement_request = ArrangementRequest(
                        day=cal.date_of(d),
                        customer_index=cand,
                        customer_id=pop.customer_ids[cand],
                        debt_cents=debt_c,
                        population=pop,
                        observed=observed_so_far,
                    )
                    answer = ArrangementAnswer.of(policy.arrangement_monthly(arrangement_request))
                    asked = answer.monthly_cents
                    pause_months = np.asarray(answer.pause_max_months, dtype=np.int64)
                    pause_times = np.asarray(answer.pause_times, dtype=np.int64)
                    # 0 = no plan: referred to debt help. Escalation of the covered
                    # invoices pauses for the intake; the dunning path resumes after it.
                    refer = asked <= 0
                    if refer.any():
                        referred = np.zeros(n, bool)
                        referred[cand[refer]] = True
                        held = cover[referred[inv["cust"][cover]]]
                        inv["next_step"][held] = np.maximum(
                            inv["next_step"][held], d + cfg.referral_pause_days
                        )
                        keep = ~refer
                        cand, debt_c, asked = cand[keep], debt_c[keep], asked[keep]
                        pause_months, pause_times = pause_months[keep], pause_times[keep]
                        cover = cover[~referred[inv["cust"][cover]]]
                if len(cand):
                    monthly = np.clip(asked, 1, debt_c)
                    monthly = np.maximum(monthly, -(-debt_c // 120))
                    term = -(-debt_c // monthly)
                    k = len(cand)
                    if n_arr + k > arr_cap:
                        grow = max(k, arr_cap)
                        arr = {
                            key: np.concatenate([v, np.zeros(grow, v.dtype)])
                            for key, v in arr.items()
                        }
                        arr_fits = np.concatenate([arr_fits, np.zeros(grow, bool)])
                        arr_cap += grow
                    ids = np.arange(n_arr, n_arr + k)
                    room_now = (
                        np.round(main_income[cand]).astype(np.int64)
                        + pop.allowance[cand]
                        - pop.fixed_costs[cand]
                        - pop.living_costs[cand]
                    )
                    honest = draws.uniform()[cand] < 0.5
                    # what they can really pay: free room plus some belt-tightening, misjudged (noise)
                    capacity = room_now + 0.15 * pop.living_costs[cand]
                    perceived = capacity * np.exp(draws.normal_at(cand, 0.0, 0.35))
                    fits = (monthly <= perceived) & ((behaviour[cand] != 3) | honest)
                    arr["cust"][ids] = cand
                    arr["start"][ids] = d
                    arr["debt"][ids] = debt_c
                    arr["remaining"][ids] = debt_c
                    arr["monthly"][ids] = monthly
                    arr["term"][ids] = term
                    arr["outcome"][ids] = AO_ACTIVE
                    arr["end"][ids] = -1
                    arr["anchor"][ids] = d + FIRST_INSTALMENT_AFTER
                    arr["next_due"][ids] = d + FIRST_INSTALMENT_AFTER
                    arr["k"][ids] = 0
                    arr["tries"][ids] = draws.geometric_at(cand, 0.5) - 1
                    arr["pause_months"][ids] = pause_months
                    arr["pauses_left"][ids] = pause_times
                    arr["pauses"][ids] = 0
                    arr["paused_on"][ids] = -1
                    arr_fits[ids] = fits
                    slot = np.full(n, -1, np.int64)
                    slot[cand] = ids
                    inv["arr"][cover] = slot[inv["cust"][cover]]
                    active_arr[cand] = ids
                    active_list = np.concatenate([active_list, ids])
                    n_arr += k

        # ---- living costs ----
        noise = streams.day(RNG_SPEND, d).generator.lognormal(-0.125, 0.5, n)
        essential = 0.4 * living_daily
        substitute = bnpl_substitute / BNPL_SUBSTITUTE_DAYS
        bnpl_substitute -= substitute
        desired = np.maximum(living_daily * noise + extra - substitute, essential)
        spend = np.maximum(
            np.minimum(desired, np.maximum(bal + pop.overdraft, 0)), np.minimum(desired, essential)
        )
        bal -= np.round(spend).astype(np.int64)
        if d % BALANCE_EVERY_DAYS == BALANCE_EVERY_DAYS - 1:
            # open banking (PSD2 account information): end-of-day balance, once a week
            seen = observed[pop.created_day[observed] <= d]
            bal_log.add(cust=seen, day=d, balance=bal[seen])

        open_idx = open_idx[inv["paid"][open_idx] < inv["amount"][open_idx]]
        if progress is not None and (d + 1 == T or cal.dom[ci + 1] == 1):
            progress(d + 1, T)

    return events_so_far(truth_log.arrays(), np.asarray(debit_day_used, dtype=np.int64))

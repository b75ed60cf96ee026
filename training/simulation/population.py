"""The simulated customers: hidden per-customer arrays (:class:`PopulationState`).

Everything here is drawn once from ``seed`` and does not depend on any collection
policy, so two runs with different policies see the same people, the same incomes,
the same pay days and the same invoice amounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.legal import legal_table_on, legal_tables
from training.simulation.calendar import Calendar
from training.simulation.config import BEHAVIOURS, SimulationConfig

HOUSEHOLDS = (
    "single",
    "single_parent",
    "couple",
    "couple_with_children",
    "pensioner_single",
    "pensioner_couple",
)
HOUSEHOLD_SHARES = (0.30, 0.08, 0.20, 0.22, 0.12, 0.08)
SOURCES = ("salary", "benefit", "pension")
PATTERNS = ("monthly_day", "last_working_day", "four_weekly", "weekly", "irregular")
PRODUCTS = ("premium", "energy", "telecom")
METHODS = ("direct_debit", "transfer")

# purposes of the random generators: the population is drawn from (seed, RNG_POPULATION);
# the engine's draws from one stream per purpose and day (training.simulation.streams)
RNG_POPULATION, RNG_INCOME, RNG_SHOCK, RNG_SPEND, RNG_BNPL, RNG_PAY, RNG_DEBIT, RNG_ARRANGEMENT = (
    range(8)
)
RNG_PAUSE = 8  # a customer's request to pause a plan
RNG_INCOME_SHOCK = 9  # who a population-wide income shock hits (SimulationConfig.income_shock_*)

# current practice: the day of the month the creditor collects (a mix, many on the 25th/26th)
DEBIT_DAYS = np.array([25, 26, 1, 28, 27, 24, 20])
DEBIT_DAY_SHARES = np.array([0.30, 0.15, 0.18, 0.10, 0.05, 0.05, 0.05])  # rest: uniform 2..23


@dataclass
class PopulationState:
    """Hidden truth per customer (index i = customer ``customer_ids[i]``) plus the income calendar."""

    config: SimulationConfig
    calendar: Calendar
    customer_ids: np.ndarray  # object array of str
    household: np.ndarray  # index into HOUSEHOLDS
    birth_year: np.ndarray
    age: np.ndarray
    source: np.ndarray  # index into SOURCES
    pattern: np.ndarray  # index into PATTERNS
    pay_day_of_month: np.ndarray
    net_income: np.ndarray  # main monthly income, cents (salary/benefit/pension; household)
    allowance: np.ndarray  # toeslagen per month, cents
    benefit_level: np.ndarray  # monthly income when unemployed, cents
    fixed_costs: np.ndarray  # per month incl. this creditor's regular invoice, cents
    living_costs: np.ndarray  # per month, cents
    buffer: np.ndarray  # savings level the customer keeps (initial savings), cents
    initial_balance: np.ndarray
    overdraft: np.ndarray  # allowed overdraft, cents
    behaviour: np.ndarray  # index into BEHAVIOURS
    has_open_banking: np.ndarray
    method: np.ndarray  # index into METHODS
    product: np.ndarray  # index into PRODUCTS
    invoice_amount: np.ndarray  # (n_months_cal, n) regular invoice amounts per calendar month
    bill_day: np.ndarray  # day of month transfer invoices are issued
    debit_day: np.ndarray  # current-practice creditor debit day 1..28
    rent_day: np.ndarray  # 1..3
    created_day: np.ndarray  # day index the customer became known
    declared_income: np.ndarray  # cents, -1 = not declared
    bnpl_rate: np.ndarray  # pay-later orders per month
    margin: (
        np.ndarray
    )  # kept back (beyond what is needed until the next pay) before paying voluntarily, cents
    # income calendar (independent of policy): main pay events and allowance events, sorted by day
    pay_day: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    pay_cust: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    pay_noise: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    allow_day: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    allow_cust: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    rent_ev_day: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    rent_ev_cust: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    @property
    def base_invoice_amount(self) -> np.ndarray:
        return self.invoice_amount.max(axis=0)

    @property
    def free_room(self) -> np.ndarray:
        """Base monthly free room: income - fixed costs - living costs (cents)."""
        return self.net_income + self.allowance - self.fixed_costs - self.living_costs


def _bijstand(start) -> dict[str, int]:
    earliest = legal_tables()[0].effective_from
    return legal_table_on(max(start, earliest)).bijstandsnorm_incl_holiday_cents


def build_population(config: SimulationConfig) -> PopulationState:
    start, end = config.period()
    cal = Calendar(start, end)
    T = cal.n_days
    rng = np.random.default_rng([config.seed, RNG_POPULATION])
    n = config.n_customers
    width = max(6, len(str(n)))
    ids = np.array([f"C{i:0{width}d}" for i in range(1, n + 1)], dtype=object)

    hh = rng.choice(len(HOUSEHOLDS), n, p=HOUSEHOLD_SHARES)
    pensioner = hh >= 4
    couple = (hh == 2) | (hh == 3) | (hh == 5)
    children = (hh == 1) | (hh == 3)
    age = np.where(
        pensioner,
        rng.integers(67, 86, n),
        np.where(
            hh == 0,
            np.clip(rng.gamma(3.0, 8.0, n) + 18, 18, 66),
            np.where(children, rng.integers(23, 56, n), rng.integers(21, 67, n)),
        ),
    ).astype(np.int64)
    birth_year = start.year - age - (rng.random(n) < 0.5)

    # income source and amount
    p_benefit = np.array([0.28, 0.40, 0.14, 0.12, 0.0, 0.0])[hh]
    source = np.where(pensioner, 2, np.where(rng.random(n) < p_benefit, 1, 0))
    norms = _bijstand(start)
    norm = np.array([norms[h] for h in HOUSEHOLDS], dtype=np.float64)[hh]
    salary = np.clip(rng.lognormal(np.log(2450.0), 0.28, n), 1800, 4500) * 100
    young = age < 23
    salary = np.where(young, np.clip(salary * 0.75, 180000, None), salary)
    partner = np.where(
        couple & ~pensioner & (rng.random(n) < 0.6),
        np.clip(rng.lognormal(np.log(1500), 0.35, n), 800, 2800) * 100,
        0,
    )
    benefit = norm * rng.uniform(0.97, 1.03, n)
    pension = norm * np.clip(rng.lognormal(np.log(1.3), 0.2, n), 1.0, 2.5)
    net = (
        np.where(source == 0, salary + partner, np.where(source == 1, benefit, pension))
        .round()
        .astype(np.int64)
    )
    benefit_level = np.maximum(norm, 0.7 * net).round().astype(np.int64)

    # toeslagen for low incomes (rent/care allowance, child budget)
    threshold = np.where(couple, 3200_00, 2300_00)
    allowance = np.clip((threshold - net) * 0.3, 0, 400_00) + np.where(
        children & (net < 4500_00), 150_00, 0
    )
    allowance = (allowance * rng.uniform(0.85, 1.15, n)).round().astype(np.int64)
    allowance[allowance < 20_00] = 0
    income = net + allowance

    # the creditor's regular invoice
    product = rng.choice(3, n, p=[0.45, 0.30, 0.25])
    premium = rng.uniform(120, 175, n) * np.where(couple, 1.8, 1.0)
    base_amount = (
        np.where(
            product == 0,
            np.minimum(premium, 250),
            np.where(product == 1, rng.uniform(60, 250, n), rng.uniform(40, 90, n)),
        )
        * 100
    )
    n_cal_months = cal.month_hi - cal.month_lo + 1
    noise = np.where(product == 2, rng.uniform(0.9, 1.1, (n_cal_months, n)), 1.0)
    invoice_amount = np.clip(np.round(base_amount * noise), 40_00, 250_00).astype(np.int64)
    base_amount = invoice_amount.max(axis=0)

    # costs: fixed (rent, energy, insurance ...) and living; free room = income - both
    share_fixed = np.clip(rng.normal(0.42, 0.07, n), 0.25, 0.60) + 0.10 * np.clip(
        (2500_00 - income) / 1500_00, 0, 1
    )
    fixed_other = share_fixed * income
    fixed = np.round(fixed_other + base_amount).astype(np.int64)
    free_share = np.clip(
        rng.normal(0.03 + 0.04 * np.clip(np.log(income / 2000_00), 0, 1), 0.08, n), -0.08, 0.30
    )
    min_living = np.where(couple, 550_00, 330_00) + np.where(children, 200_00, 0)
    living = np.maximum(income - fixed - free_share * income, min_living).round().astype(np.int64)

    # savings level and overdraft
    p_none = np.where(source == 1, 0.60, np.where(source == 2, 0.20, 0.42)) + 0.15 * (age < 27)
    none = rng.random(n) < p_none
    buffer = (
        np.where(
            none,
            rng.uniform(0, 150_00, n),
            np.minimum(rng.lognormal(np.log(0.6 * income), 0.9), 20 * income),
        )
        .round()
        .astype(np.int64)
    )
    overdraft = np.where(
        rng.random(n) < config.overdraft_share, rng.choice([250_00, 500_00, 1000_00], n), 0
    )

    behaviour = rng.choice(len(BEHAVIOURS), n, p=config.behaviour_shares)
    has_ob = rng.random(n) < config.open_banking_share
    method = np.where(rng.random(n) < config.direct_debit_share, 0, 1)
    bill_day = np.where(rng.random(n) < 0.5, 1, rng.integers(2, 29, n))
    other_day = rng.integers(2, 24, n)
    pick = rng.choice(len(DEBIT_DAYS) + 1, n, p=np.r_[DEBIT_DAY_SHARES, 1 - DEBIT_DAY_SHARES.sum()])
    debit_day = np.where(
        pick < len(DEBIT_DAYS), DEBIT_DAYS[np.minimum(pick, len(DEBIT_DAYS) - 1)], other_day
    )
    rent_day = rng.integers(1, 4, n)
    joiner = rng.random(n) < config.late_joiner_share
    created_day = np.where(joiner, rng.integers(1, max(2, int(T * 0.75)), n), 0).astype(np.int64)
    declared = np.where(
        rng.random(n) < config.declared_income_share,
        np.round(net * rng.uniform(0.9, 1.1, n) / 100) * 100,
        -1,
    ).astype(np.int64)
    p_user = np.select([age < 25, age < 35, age < 50, age < 67], [0.55, 0.45, 0.30, 0.15], 0.05)
    bnpl_rate = (
        np.where(rng.random(n) < p_user, rng.gamma(1.5, 0.6 / 1.5, n), 0.0) * config.bnpl_rate_scale
    )
    margin_share = np.array([0.0, 0.0, 0.15, 0.05])[behaviour]
    margin = (margin_share * income).round().astype(np.int64)

    # pay timing (DOMAIN.md §7)
    pattern = np.where(source == 0, rng.choice(5, n, p=[0.55, 0.15, 0.18, 0.05, 0.07]), 0)
    nominal = np.select(
        [source == 0, source == 1],
        [
            rng.choice([23, 24, 25, 26, 27, 28], n, p=[0.12, 0.15, 0.35, 0.10, 0.05, 0.23]),
            rng.choice([20, 21, 22, 23, 24, 1], n, p=[0.15, 0.15, 0.15, 0.15, 0.20, 0.20]),
        ],
        23,
    )
    months = cal.months()
    days_list, cust_list = [], []
    monthly = np.flatnonzero(pattern == 0)
    lwd = np.flatnonzero(pattern == 1)
    for m in months:
        d = cal.prev_business(cal.day_in_month(m, nominal[monthly]))
        days_list.append(d)
        cust_list.append(monthly)
        d = cal.prev_business(np.repeat(cal.last_day_of_month(m), len(lwd)))
        days_list.append(d)
        cust_list.append(lwd)
    weekday0 = cal.weekday[-cal.lo]  # weekday of day 0
    for code, period in ((2, 28), (3, 7)):
        who = np.flatnonzero(pattern == code)
        # anchored on a Thursday (4-weekly) or Friday (weekly) within the first period
        target_wd = 3 if code == 2 else 4
        first = rng.integers(0, period // 7, len(who)) * 7 + (target_wd - weekday0) % 7
        for k in range(-1, T // period + 2):
            days_list.append(cal.prev_business(first + k * period))
            cust_list.append(who)
    irregular = np.flatnonzero(pattern == 4)
    if len(irregular):
        # flex work: paid twice a month on a random business day of each half month
        for m in months:
            for lo_dom, hi_dom in ((1, 15), (16, 29)):
                dom = rng.integers(lo_dom, hi_dom, len(irregular))
                days_list.append(cal.next_business(cal.day_in_month(m, dom)))
                cust_list.append(irregular)
    pay_day = np.concatenate(days_list)
    pay_cust = np.concatenate(cust_list)
    keep = (pay_day >= 0) & (pay_day < T)
    pay_day, pay_cust = pay_day[keep], pay_cust[keep]
    # a pay event falling twice on one day (rare rounding) is kept once
    key = np.unique(pay_day * n + pay_cust)
    pay_day, pay_cust = key // n, key % n
    pay_noise = np.where(pattern[pay_cust] == 4, rng.lognormal(-0.045, 0.3, len(pay_day)), 1.0)

    first_pay = np.full(n, -1)
    order = np.argsort(pay_day, kind="stable")
    rev = order[::-1]
    first_pay[pay_cust[rev]] = pay_day[rev]
    first_dom = np.where(first_pay >= 0, cal.dom[np.maximum(first_pay, 0) - cal.lo], 25)
    pay_dom = np.where(pattern == 0, nominal, first_dom)

    # allowance on the 20th, moved to the next business day; rent on the 1st-3rd
    has_allow = np.flatnonzero(allowance > 0)
    a_days, a_cust, r_days, r_cust = [], [], [], []
    everyone = np.arange(n)
    for m in months:
        a_days.append(
            np.repeat(cal.next_business(cal.day_in_month(m, np.asarray(20))), len(has_allow))
        )
        a_cust.append(has_allow)
        r_days.append(cal.next_business(cal.day_in_month(m, rent_day)))
        r_cust.append(everyone)

    def _sorted(days: list, custs: list) -> tuple[np.ndarray, np.ndarray]:
        d, c = np.concatenate(days), np.concatenate(custs)
        keep = (d >= 0) & (d < T)
        d, c = d[keep], c[keep]
        o = np.lexsort((c, d))
        return d[o].astype(np.int64), c[o].astype(np.int64)

    allow_day, allow_cust = _sorted(a_days, a_cust)
    rent_ev_day, rent_ev_cust = _sorted(r_days, r_cust)

    # the balance on day 0: savings plus what is left of the last pay
    paid_recently = ((pattern == 0) & (nominal >= 20)) | (pattern == 1)
    initial_balance = (
        (buffer + income * np.where(paid_recently, 0.85, 0.5)).round().astype(np.int64)
    )

    return PopulationState(
        config=config,
        calendar=cal,
        customer_ids=ids,
        household=hh,
        birth_year=birth_year.astype(np.int64),
        age=age,
        source=source,
        pattern=pattern,
        pay_day_of_month=pay_dom.astype(np.int64),
        net_income=net,
        allowance=allowance,
        benefit_level=benefit_level,
        fixed_costs=fixed,
        living_costs=living,
        buffer=buffer,
        initial_balance=initial_balance,
        overdraft=overdraft.astype(np.int64),
        behaviour=behaviour,
        has_open_banking=has_ob,
        method=method,
        product=product,
        invoice_amount=invoice_amount,
        bill_day=bill_day.astype(np.int64),
        debit_day=debit_day.astype(np.int64),
        rent_day=rent_day,
        created_day=created_day,
        declared_income=declared,
        bnpl_rate=bnpl_rate,
        margin=margin,
        pay_day=pay_day.astype(np.int64),
        pay_cust=pay_cust.astype(np.int64),
        pay_noise=pay_noise,
        allow_day=allow_day,
        allow_cust=allow_cust,
        rent_ev_day=rent_ev_day,
        rent_ev_cust=rent_ev_cust,
    )

"""Knobs of the embedded simulator (:class:`SimulationConfig`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

BEHAVIOURS = ("willing", "forgetful", "cannot_cope", "unwilling")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


#: Where the default simulated world ends (exclusive): the month its figures were measured.
DEFAULT_END_DATE = date(2026, 11, 1)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Rates are per customer per month unless said otherwise."""

    n_customers: int = 20_000
    months: int = 24
    # exclusive. A fixed default, so that the default world, and every figure measured on
    # it (README, RESULTS.md), is the same whenever it is simulated; a world anchored to
    # the current month moved every figure each month (model ROC AUC 0.9255 in a world
    # ending 1 Nov 2026, 0.9312 in one ending 1 Dec). None -> the first day of the current month.
    end_date: date | None = DEFAULT_END_DATE
    seed: int = 42
    # population
    behaviour_shares: tuple[float, float, float, float] = (
        0.63,
        0.17,
        0.15,
        0.05,
    )  # BEHAVIOURS order
    open_banking_share: float = 0.70
    direct_debit_share: float = 0.70
    declared_income_share: float = 0.40
    late_joiner_share: float = 0.25  # join uniformly during the first 3/4 of the period
    overdraft_share: float = 0.35
    bnpl_rate_scale: float = (
        1.0  # multiplies the pay-later order rates (young customers order most)
    )
    # Pay-later behaviour. Without these, ~11% of naively approved orders reached an agency
    # and ~43% got a reminder, vs AFM 2024: 53M transactions, 6.9M default notices (~13%),
    # 1.8M with reminder fees (~3.4%), ~600k at a collection agency (~1.1%); 9 in 10 problem
    # transactions under EUR 250 (DOMAIN.md §4). Cause: the customer could pay but did not
    # (in 94% of agency orders the balance rose above the amount + EUR 200 within the 90
    # days), because an order was spending on top of the living costs and its invoice was
    # paid like a regular bill (behind older invoices, a full month's living costs kept
    # back, never from the overdraft). Values are assumptions calibrated to AFM's shape.
    # Share of an approved order's amount that replaces living spending in the weeks after
    # the order (goods the customer would have bought from the living budget anyway).
    bnpl_substitution_share: float = 0.8
    # A pay-later invoice is small, reminded in the provider's app and paid there by iDEAL
    # (DOMAIN.md §4, §6): the customer pays it before other bills (engine.BNPL_P_PAY), keeps
    # back the rent still to come but only this share of the living costs until the next
    # pay, and may use this share of the allowed overdraft (as a direct debit does).
    bnpl_living_reserve_share: float = 0.25
    bnpl_overdraft_share: float = 1.0
    # shocks
    job_loss_rate: float = 0.006  # salaried, per month
    job_recovery_rate: float = 0.08  # unemployed, per month
    income_cut_rate: float = 0.006  # reduced hours / benefit sanction, per month
    cost_shock_rate: float = 0.04  # unexpected cost of EUR 300-1,500, per month
    small_shock_rate: float = (
        0.10  # smaller unexpected cost of EUR 75-300 (repair, fine), per month
    )
    # A population-wide income shock (a recession, a benefit cut): from the first day of
    # the month of ``income_shock_from`` on, a share of customers (drawn once, from a
    # stream of its own) lose a share of their main income (pay or benefit) for the rest
    # of the period. Off by default (None), so the default world is unchanged; it exists
    # to show that drift monitoring sees a world that moved (`tijdig monitor drift`).
    income_shock_from: date | None = None
    income_shock_share: float = 0.0  # of customers hit
    income_shock_cut: float = 0.0  # of their main income lost
    # collection process
    arrangement_offer_rate: float = 0.5  # at the agency step
    arrangement_offer_rate_letter: float = 0.1  # at the 14-day letter
    # a referral to debt help instead of a plan: no dunning step during the intake (DOMAIN.md)
    referral_pause_days: int = 120
    # A customer whose income drops (job loss, income cut) while a plan with a pause runs
    # asks for that pause (CCD2 art. 35 forbearance) instead of breaking the plan, with
    # this probability. An assumption: no published figure says how many customers ask;
    # the plan evidence (training.studies.plan_eval) shows its results over a range of it.
    plan_pause_ask_rate: float = 0.5
    reversal_rate: float = 0.03  # per successful debit of an "unwilling" customer (MD06)
    bailiff_cost_cents: int = 12_000
    validate: bool = True  # validate every table against its pandera schema

    def __post_init__(self) -> None:
        if self.n_customers <= 0 or self.months <= 0:
            raise ValueError("n_customers and months must be positive")
        if abs(sum(self.behaviour_shares) - 1.0) > 1e-9 or len(self.behaviour_shares) != 4:
            raise ValueError("behaviour_shares must be 4 shares summing to 1")
        if not 0.0 <= self.plan_pause_ask_rate <= 1.0:
            raise ValueError("plan_pause_ask_rate must lie in [0, 1]")
        for name in ("income_shock_share", "income_shock_cut"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {value}")

    def income_shock_start(self) -> date | None:
        """The first day of the income shock (the first of its month), or None when it is
        off (no date, or nobody or nothing lost)."""
        when = self.income_shock_from
        if when is None or self.income_shock_share == 0.0 or self.income_shock_cut == 0.0:
            return None
        return date(when.year, when.month, 1)

    def period(self) -> tuple[date, date]:
        """(start, end): start inclusive, end exclusive, both first days of a month."""
        end = self.end_date
        if end is None:
            today = date.today()
            end = date(today.year, today.month, 1)
        start = _add_months(date(end.year, end.month, 1), -self.months)
        if end.day != 1:  # keep whole months: the end is moved to the next month's first day
            end = _add_months(end, 1)
            start = _add_months(end, -self.months)
        return start, end

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["end_date"] = None if self.end_date is None else self.end_date.isoformat()
        shock = self.income_shock_from
        out["income_shock_from"] = None if shock is None else shock.isoformat()
        out["behaviour_shares"] = list(self.behaviour_shares)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for name in ("end_date", "income_shock_from"):
            if kwargs.get(name) is not None:
                kwargs[name] = date.fromisoformat(kwargs[name])
        if "behaviour_shares" in kwargs:
            kwargs["behaviour_shares"] = tuple(kwargs["behaviour_shares"])
        return cls(**kwargs)

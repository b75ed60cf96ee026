"""The versioned payment-plan policy (``models/config/plan_policy.json``).

Every number the plan advice decides with lives here, never in code: the grid of plans,
the budget caps, the weight of the customer's collection costs in the objective, the
time value of money repaid sooner (plan-2026.3), the rule for a plan unlikely to be
kept (plan-2026.4), the parameters of the broken-plan model (:mod:`models.plan_outcome`), the safety net every
plan carries, and the thresholds of the problematic-debt signals that refer to debt help.
Change the version on every edit; a bundle stores the copy it was trained with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from models.legal import LegalTable

#: ``time_value_rate`` naming the consumer statutory interest of the legal table in force
STATUTORY_INTEREST: Final = "statutory_interest_consumer"


@dataclass(frozen=True)
class SafetyNetPolicy:
    """Forbearance every plan names (CCD2 art. 35): a pause the customer may ask for, and
    when the creditor checks in with the customer."""

    pause_max_months: int  # one pause of at most this many months ...
    pause_times: int  # ... this many times over the plan
    check_in_after_missed_instalments: int  # contact after this many missed instalments
    check_in_month: int  # a planned check-in in this month of the plan
    check_in_month_low_p_kept: int  # earlier when P(kept) is below the policy's target


@dataclass(frozen=True)
class PlanPolicy:
    version: str
    effective_from: str
    # P(kept) a plan should reach to go without extra care: below it the advice adds the
    # LOW_P_KEPT reason and an earlier check-in. Never a cut-off, never a referral.
    target_p_kept: float
    max_months: int  # longest plan offered
    min_monthly_amount_cents: int
    amount_step_cents: int
    standard_share: float  # Nibud standard capacity = share × free room (long plans)
    maximum_share: float  # Nibud maximum capacity = share × free room (short plans only)
    short_plan_max_months: int  # plans up to this term may use the maximum capacity
    horizon_months: int  # the expectation's horizon: at least max_months
    cost_weight: float  # euros of objective lost per euro of collection costs to the customer
    # the annual rate that discounts principal repaid later (models.plan_outcome):
    # "statutory_interest_consumer" (the legal table's rate in force) or a percentage
    time_value_rate: str | float
    broken_paid_share: float  # share of the scheduled instalments paid before a plan breaks
    escalation_recovery_share: float  # share of the rest escalation recovers in the horizon
    escalation_interest_months: int  # months of statutory interest on the rest
    escalation_bailiff_share: float  # probability a broken plan reaches summons and judgment
    # the shortest plan within this share of the objective's spread (best − worst plan the
    # budget carries) of the best is suggested
    tie_tolerance: float
    # plan-2026.4: when the objective's choice falls below target_p_kept, the answer keeps
    # to the standard capacity for every term and moves to the shortest plan reaching the
    # lower of the target and this share of the best P(kept) those plans reach
    low_p_kept_share: float
    several_open_debts_min: int  # open collection cases + other plans that signal problem debt
    repeated_broken_plans_min: int  # broken plans that signal problem debt
    legal_table_stale_after_months: int  # notice when as_of is this far past the newest table
    safety_net: SafetyNetPolicy

    def __post_init__(self) -> None:
        if self.horizon_months < self.max_months:
            raise ValueError(
                f"horizon_months ({self.horizon_months}) must let the longest plan "
                f"({self.max_months} months) finish"
            )
        for name in (
            "broken_paid_share",
            "escalation_recovery_share",
            "escalation_bailiff_share",
            "target_p_kept",
            "low_p_kept_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {getattr(self, name)}")
        rate = self.time_value_rate
        if isinstance(rate, str) and rate != STATUTORY_INTEREST:
            raise ValueError(
                f"time_value_rate must be {STATUTORY_INTEREST!r} or a percentage; got {rate!r}"
            )
        if not isinstance(rate, str) and not 0.0 <= float(rate) < 100.0:
            raise ValueError(f"time_value_rate must be a percentage in [0, 100); got {rate}")

    def time_value_annual_pct(self, table: LegalTable) -> float:
        """The annual time-value rate in percent on the day of ``table``."""
        if isinstance(self.time_value_rate, str):
            return float(table.statutory_interest_consumer_pct)
        return float(self.time_value_rate)

    @classmethod
    def default(cls) -> PlanPolicy:
        text = resources.files("models").joinpath("config/plan_policy.json").read_text("utf-8")
        return cls._parse(json.loads(text))

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PlanPolicy:
        """The policy a document describes; a document of an older schema (a bundle trained
        under an earlier version, lacking the fields this objective needs) gives the current
        default: the old fields cannot express the new objective, and the answer then names
        the version that actually decided."""
        required = {f.name for f in fields(cls)}
        if not required <= set(doc):
            return cls.default()
        return cls._parse(doc)

    @classmethod
    def _parse(cls, doc: dict[str, Any]) -> PlanPolicy:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        net = values["safety_net"]
        if isinstance(net, dict):
            net_known = {f.name for f in fields(SafetyNetPolicy)}
            values["safety_net"] = SafetyNetPolicy(
                **{k: v for k, v in net.items() if k in net_known}
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

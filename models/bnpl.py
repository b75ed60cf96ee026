"""Pay-later (BNPL) at checkout: offer or decline, and a limit, with honest reasons.

Prevention first (seed 000, DOMAIN.md §4): "if a customer has a difficult payment
history, ask whether they should be offered pay-later at all". Under CCD2 every order
needs a creditworthiness assessment, special-category data are banned and an automated
decline needs an explanation and a path to human review. The rules, most decisive first:

1. age not verified, or under 18 → decline (no model involved)
2. order above the policy maximum or not in euros → decline
3. an open collection case (a claim at the agency or bailiff, unpaid) → decline
4. open arrears beyond the grace days → decline
5. P(payment difficulty) at or above the cut-off → decline (with the model's own reasons);
   with a pay-later adjustment in the bundle (:mod:`models.bnpl_adjustment`) the cut-off
   applies to the probability adjusted with the decline memory (B11 when an earlier
   decline lifted it over)
6. the limit: by probability; a conservative *starter* limit for a thin file (new or
   short history) instead of a blanket yes or no; lowered to a share of the monthly free
   room where income is known (the affordability view); minus open pay-later exposure.
   An order above what is left → decline, naming the limit: the budget cap (B07) when
   the lowered limit alone is below the order, open pay-later orders (B06) when they
   (or, without a budget cap, the limit itself) leave too little.

The inputs are the features of the one feature definition plus the open-case flag, so
a decision is reproducible from its log entry (features + policy + model version).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import Any

import numpy as np

from features.build import FEATURE_INDEX

# re-exported: its home is features.collection_cases, callers of models.bnpl keep working
from features.collection_cases import open_collection_cases as open_collection_cases
from features.events import to_day
from models.budget import prudent_free_room
from models.reasons import Reason

#: The yardstick's arrears rule (issue 5's, issue 21's "rules alone"): open arrears more
#: than this many days past due decline. Fixed here, not read from the policy file, whose
#: ``arrears_grace_days`` is the policy's own choice (null: arrears left to the model).
RULES_ONLY_ARREARS_GRACE_DAYS = 7


class BnplReasonCode(StrEnum):
    AGE_NOT_VERIFIED = "B01_AGE_NOT_VERIFIED"
    UNDER_AGE = "B02_UNDER_AGE"
    OPEN_ARREARS = "B03_OPEN_ARREARS"
    COLLECTION_CASE = "B04_COLLECTION_CASE"
    HIGH_RISK = "B05_HIGH_RISK"
    EXPOSURE_LIMIT = "B06_EXPOSURE_LIMIT"
    AFFORDABILITY = "B07_AFFORDABILITY"
    THIN_FILE = "B08_THIN_FILE"
    ORDER_TOO_LARGE = "B09_ORDER_TOO_LARGE"
    CURRENCY = "B10_CURRENCY"
    RECENT_DECLINE = "B11_RECENT_DECLINE"
    LATE_PAY_LATER = "B12_LATE_PAY_LATER"
    # what would raise the limit (the response's ``limit_raise``; never a decline)
    RAISE_ON_TIME = "B13_RAISE_ON_TIME"
    RAISE_BUDGET = "B14_RAISE_BUDGET"
    RAISE_RISK = "B15_RAISE_LOWER_RISK"
    AT_MAXIMUM = "B16_AT_MAXIMUM"


BNPL_TEXTS: dict[BnplReasonCode, tuple[str, str]] = {
    BnplReasonCode.AGE_NOT_VERIFIED: (
        "Pay later needs a verified age (for example with iDIN).",
        "Achteraf betalen vraagt om een geverifieerde leeftijd (bijvoorbeeld met iDIN).",
    ),
    BnplReasonCode.UNDER_AGE: (
        "Pay later is only available from 18 years.",
        "Achteraf betalen kan pas vanaf 18 jaar.",
    ),
    BnplReasonCode.OPEN_ARREARS: (
        "There are unpaid invoices past their due date; paying those first avoids new debt.",
        "Er staan facturen open na de vervaldatum; die eerst betalen voorkomt nieuwe schuld.",
    ),
    BnplReasonCode.COLLECTION_CASE: (
        "A claim is with a collection agency or bailiff; new credit would add to it.",
        "Er loopt een vordering bij een incassobureau of deurwaarder; nieuw krediet maakt dat zwaarder.",
    ),
    BnplReasonCode.HIGH_RISK: (
        "The payment history suggests that paying later could become difficult.",
        "De betaalgeschiedenis wijst erop dat later betalen lastig kan worden.",
    ),
    BnplReasonCode.EXPOSURE_LIMIT: (
        "This order together with open pay-later purchases is above the limit.",
        "Deze bestelling is samen met openstaande achteraf-betalen-aankopen hoger dan de limiet.",
    ),
    BnplReasonCode.AFFORDABILITY: (
        "The limit is lowered to what the monthly budget leaves room for.",
        "De limiet is verlaagd tot wat het maandbudget toelaat.",
    ),
    BnplReasonCode.THIN_FILE: (
        "With a short payment history a lower starter limit applies.",
        "Bij een korte betaalgeschiedenis geldt een lagere startlimiet.",
    ),
    BnplReasonCode.ORDER_TOO_LARGE: (
        "The order is above the maximum for pay later.",
        "De bestelling is hoger dan het maximum voor achteraf betalen.",
    ),
    BnplReasonCode.CURRENCY: (
        "Pay later is only offered in euros.",
        "Achteraf betalen is alleen mogelijk in euro.",
    ),
    BnplReasonCode.RECENT_DECLINE: (
        "Pay later was declined recently because of the payment situation; "
        "it is assessed again after a waiting period.",
        "Achteraf betalen is kort geleden afgewezen vanwege de betaalsituatie; "
        "na een wachttijd wordt opnieuw beoordeeld.",
    ),
    BnplReasonCode.LATE_PAY_LATER: (
        "A pay-later purchase was paid late this year, which lowers the limit.",
        "Een achteraf-betalen-aankoop is dit jaar te laat betaald; dat verlaagt de limiet.",
    ),
    BnplReasonCode.RAISE_ON_TIME: (
        "Each pay-later purchase repaid on time raises the limit by one step, up to a maximum.",
        "Elke achteraf-betalen-aankoop die op tijd is betaald verhoogt de limiet met een stap, "
        "tot een maximum.",
    ),
    BnplReasonCode.RAISE_BUDGET: (
        "A higher limit needs more room in the monthly budget.",
        "Een hogere limiet vraagt meer ruimte in het maandbudget.",
    ),
    BnplReasonCode.RAISE_RISK: (
        "Paying invoices on time lowers the risk and so raises the limit.",
        "Facturen op tijd betalen verlaagt het risico en verhoogt zo de limiet.",
    ),
    BnplReasonCode.AT_MAXIMUM: (
        "The limit is at the maximum for pay later.",
        "De limiet staat op het maximum voor achteraf betalen.",
    ),
}


@dataclass(frozen=True)
class BnplReason:
    code: BnplReasonCode
    declines: bool  # False: it shaped the limit but did not decline

    @property
    def text_en(self) -> str:
        return BNPL_TEXTS[self.code][0]

    @property
    def text_nl(self) -> str:
        return BNPL_TEXTS[self.code][1]


@dataclass(frozen=True)
class BnplPolicy:
    """Versioned pay-later policy (``models/config/bnpl_policy.json``); amounts in euros."""

    version: str
    currency: str
    min_age_years: int
    max_order_eur: float
    risk_cutoff: float
    limits_by_probability: tuple[tuple[float, float], ...]  # (probability below, limit), ascending
    thin_min_tenure_days: int
    thin_min_invoices_365d: int
    starter_limit_eur: float
    arrears_grace_days: int | None  # None: arrears is no hard rule (left to the model)
    free_room_share: float
    # decline memory (models.decline_memory): a decline on one of these codes keeps
    # declining (B11) for sticky_days; empty codes or 0 days: no memory
    sticky_codes: tuple[str, ...] = ()
    sticky_days: int = 0
    term_days: int = 30  # a pay-later order is due within this; approvals younger are open
    # after a decline on risk, arrears or a claim in the last 365 days the risk cut-off is
    # this factor of the policy's (1: no stricter bar)
    after_decline_cutoff_factor: float = 1.0
    # limits that grow: starter + step per order repaid on time (up to the cap), minus a
    # step per late pay-later order of the last year; 0 steps: no growth
    growth_step_up_eur: float = 0.0
    growth_step_down_eur: float = 0.0
    growth_cap_eur: float = 0.0
    # the rule that picks risk_cutoff from the trade-off curve (models.bnpl_operating_point)
    operating_point: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.risk_cutoff < 1:
            raise ValueError(f"risk_cutoff must be in (0, 1); got {self.risk_cutoff}")
        bounds = [b for b, _ in self.limits_by_probability]
        if bounds != sorted(bounds):
            raise ValueError(f"limits_by_probability must ascend; got {self.limits_by_probability}")
        if not 0 < self.after_decline_cutoff_factor <= 1:
            raise ValueError(
                "after_decline_365d_cutoff_factor must be in (0, 1]; "
                f"got {self.after_decline_cutoff_factor}"
            )
        if not 0 < self.free_room_share <= 1:
            raise ValueError(f"free_room_share must be in (0, 1]; got {self.free_room_share}")
        unknown = set(self.sticky_codes) - {c.value for c in BnplReasonCode}
        if unknown:
            raise ValueError(f"sticky_codes must be reason codes; got {sorted(unknown)}")
        if self.growth_step_up_eur > 0 and self.growth_cap_eur < self.starter_limit_eur:
            raise ValueError(
                f"limit_growth.cap_eur must be at least the starter limit; got {self.growth_cap_eur}"
            )

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BnplPolicy:
        """The policy from its JSON document; a document without ``decline_memory`` or
        ``limit_growth`` (bundles before bnpl-2026.12.1) has neither."""
        thin = doc["thin_file"]
        memory = doc.get("decline_memory", {})
        growth = doc.get("limit_growth", {})
        return cls(
            version=str(doc["version"]),
            currency=str(doc["currency"]),
            min_age_years=int(doc["min_age_years"]),
            max_order_eur=float(doc["max_order_eur"]),
            risk_cutoff=float(doc["risk_cutoff"]),
            limits_by_probability=tuple(
                (float(x["below"]), float(x["limit_eur"])) for x in doc["limits_by_probability"]
            ),
            thin_min_tenure_days=int(thin["min_tenure_days"]),
            thin_min_invoices_365d=int(thin["min_invoices_365d"]),
            starter_limit_eur=float(thin["starter_limit_eur"]),
            arrears_grace_days=None
            if doc["arrears_grace_days"] is None
            else int(doc["arrears_grace_days"]),
            free_room_share=float(doc["free_room_share"]),
            sticky_codes=tuple(str(c) for c in memory.get("sticky_codes", ())),
            sticky_days=int(memory.get("sticky_days", 0)),
            term_days=int(memory.get("term_days", 30)),
            after_decline_cutoff_factor=float(memory.get("after_decline_365d_cutoff_factor", 1.0)),
            growth_step_up_eur=float(growth.get("step_up_eur", 0.0)),
            growth_step_down_eur=float(growth.get("step_down_eur", 0.0)),
            growth_cap_eur=float(growth.get("cap_eur", 0.0)),
            operating_point=dict(doc.get("operating_point", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "version": d["version"],
            "currency": d["currency"],
            "min_age_years": d["min_age_years"],
            "max_order_eur": d["max_order_eur"],
            "risk_cutoff": d["risk_cutoff"],
            "limits_by_probability": [
                {"below": b, "limit_eur": lim} for b, lim in self.limits_by_probability
            ],
            "thin_file": {
                "min_tenure_days": self.thin_min_tenure_days,
                "min_invoices_365d": self.thin_min_invoices_365d,
                "starter_limit_eur": self.starter_limit_eur,
            },
            "arrears_grace_days": self.arrears_grace_days,
            "free_room_share": self.free_room_share,
            "decline_memory": {
                "sticky_codes": list(self.sticky_codes),
                "sticky_days": self.sticky_days,
                "term_days": self.term_days,
                "after_decline_365d_cutoff_factor": self.after_decline_cutoff_factor,
            },
            "limit_growth": {
                "step_up_eur": self.growth_step_up_eur,
                "step_down_eur": self.growth_step_down_eur,
                "cap_eur": self.growth_cap_eur,
            },
            "operating_point": dict(self.operating_point),
        }

    @classmethod
    def default(cls) -> BnplPolicy:
        text = resources.files("models").joinpath("config/bnpl_policy.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    def with_cutoff(self, cutoff: float) -> BnplPolicy:
        """The same policy at another risk cut-off (for trade-off curves)."""
        from dataclasses import replace

        return replace(self, risk_cutoff=cutoff)

    def rules_only(self) -> BnplPolicy:
        """The yardstick of issue 21: the rules alone (no risk cut-off, no decline memory,
        no limit growth), as issue 5 built them; limits still by probability. Arrears is a
        hard rule here with its own stated grace days (:data:`RULES_ONLY_ARREARS_GRACE_DAYS`),
        whatever the policy file says, so that changing the policy never moves the
        yardstick it is measured against."""
        from dataclasses import replace

        return replace(
            self,
            risk_cutoff=0.999,
            arrears_grace_days=RULES_ONLY_ARREARS_GRACE_DAYS,
            sticky_codes=(),
            sticky_days=0,
            growth_step_up_eur=0.0,
            growth_step_down_eur=0.0,
            after_decline_cutoff_factor=1.0,
        )

    def cutoff_for(self, memory: dict[str, float] | None) -> float:
        """The risk cut-off for a customer with this decline memory: the policy's, times
        ``after_decline_cutoff_factor`` after a decline on risk, arrears or a claim in the
        last 365 days (a stricter bar until the risk is lower)."""
        if memory is not None and memory.get("situation_declines_365d", 0.0) > 0:
            return self.risk_cutoff * self.after_decline_cutoff_factor
        return self.risk_cutoff

    def sticky_decline(self, memory: dict[str, float] | None) -> bool:
        """Did a decline on a sticky code happen in the last ``sticky_days`` days?"""
        if memory is None or not self.sticky_codes or self.sticky_days <= 0:
            return False
        since = [memory.get(_SINCE[c], math.nan) for c in self.sticky_codes if c in _SINCE]
        return any(d <= self.sticky_days for d in since if not math.isnan(d))

    def grown_limit(self, on_time: float, late: float) -> float:
        """Starter limit plus a step per pay-later order repaid on time (up to the cap),
        minus a step per late one; never below 0."""
        up = min(self.starter_limit_eur + self.growth_step_up_eur * on_time, self.growth_cap_eur)
        return max(0.0, max(up, self.starter_limit_eur) - self.growth_step_down_eur * late)

    def limit_for(self, probability: float) -> float:
        for below, limit in self.limits_by_probability:
            if probability < below:
                return limit
        return self.limits_by_probability[-1][1]


@dataclass(frozen=True)
class AgeCheck:
    """What checkout verified about the buyer's age."""

    verified: bool
    birth_date: date | None = None
    method: str | None = None  # e.g. "idin"

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


@dataclass(frozen=True)
class BnplDecision:
    offer: bool
    limit_eur: float  # what this customer may have open in pay-later, after this decision
    available_eur: float  # limit minus open pay-later exposure before this order; 0 when
    # declined on the customer's situation (never more than limit_eur)
    order_eur: float
    reasons: list[BnplReason]  # declining reasons first, most decisive first
    probability: float | None
    risk_reasons: list[Reason] = field(default_factory=list)
    thin_file: bool = False
    #: what would raise the limit (a RAISE_* or AT_MAXIMUM code) and the limit it would
    #: reach before the budget cap; None when declined on the customer's situation
    limit_raise: BnplReasonCode | None = None
    next_limit_eur: float | None = None
    repaid_on_time: float = 0.0  # pay-later orders repaid on time, last 365 days
    #: the probability the cut-off and limits applied to when the bundle has a pay-later
    #: adjustment (models.bnpl_adjustment); None: ``probability`` itself
    pay_later_probability: float | None = None

    @property
    def declined_by(self) -> list[BnplReasonCode]:
        return [r.code for r in self.reasons if r.declines]


def decide(
    policy: BnplPolicy,
    *,
    order_eur: float,
    currency: str,
    age: AgeCheck,
    on: date,
    features: np.ndarray | None,
    probability: float | None,
    open_case: bool,
    risk_reasons: list[Reason] | None = None,
    memory: dict[str, float] | None = None,
    free_room_eur: float | None = None,
    pay_later_probability: float | None = None,
) -> BnplDecision:
    """Apply the policy to one order. ``features`` is None for a customer without history;
    ``memory`` is the customer's :func:`models.decline_memory.decline_memory` row as of
    ``on`` (None: no earlier pay-later decisions known). ``free_room_eur``: the prudent
    monthly free room of :func:`models.budget.budget_arrays` for these features on ``on``
    when the caller computed it for many orders at once (NaN: income unknown); None
    computes it here. ``pay_later_probability``: ``probability`` adjusted with ``memory`` by
    the bundle's pay-later adjustment (:mod:`models.bnpl_adjustment`); the cut-off and the
    limits by probability then apply to it (None: to ``probability``)."""
    reasons: list[BnplReason] = []

    def decline(code: BnplReasonCode) -> None:
        reasons.append(BnplReason(code, declines=True))

    years = age.age_on(on)
    if not age.verified or years is None:
        decline(BnplReasonCode.AGE_NOT_VERIFIED)
    elif years < policy.min_age_years:
        decline(BnplReasonCode.UNDER_AGE)
    if currency != policy.currency:
        decline(BnplReasonCode.CURRENCY)
    if order_eur > policy.max_order_eur:
        decline(BnplReasonCode.ORDER_TOO_LARGE)
    if open_case:
        decline(BnplReasonCode.COLLECTION_CASE)

    f = FEATURE_INDEX
    exposure = 0.0
    thin = True
    if features is not None:
        grace = policy.arrears_grace_days
        if grace is not None and features[f["current_days_past_due"]] > grace:
            decline(BnplReasonCode.OPEN_ARREARS)
        open_eur = float(features[f["bnpl_open_eur"]])
        exposure = 0.0 if math.isnan(open_eur) else open_eur
        tenure = features[f["tenure_days"]]
        thin = not (
            np.isfinite(tenure)
            and tenure >= policy.thin_min_tenure_days
            and features[f["invoices_365d"]] >= policy.thin_min_invoices_365d
        )
    late = 0.0
    if features is not None and np.isfinite(features[f["bnpl_late_365d"]]):
        late = float(features[f["bnpl_late_365d"]])
    on_time = 0.0
    if memory is not None:
        # approved orders now due, less the late ones the events show: repaid on time
        on_time = max(0.0, memory.get("approved_matured_365d", 0.0) - late)
        # approvals of the last days may not be in the event store yet
        exposure = max(exposure, memory.get("approved_recent_eur", 0.0))
    stricter = policy.cutoff_for(memory)
    shown_risk: list[Reason] = []
    risk = probability if pay_later_probability is None else pay_later_probability
    # the adjustment lifted the order over the cut-off the model alone left it under, for
    # a customer declined before: the earlier decline decides (B11), not the model (B05)
    lifted = (
        risk is not None
        and probability is not None
        and probability < policy.risk_cutoff <= risk
        and _declined_before(memory)
    )
    if (
        policy.sticky_decline(memory)
        or lifted
        or (risk is not None and stricter <= risk < policy.risk_cutoff)
    ):
        decline(BnplReasonCode.RECENT_DECLINE)
        shown_risk = list(risk_reasons or [])
    if risk is not None and risk >= policy.risk_cutoff and not lifted:
        decline(BnplReasonCode.HIGH_RISK)
        shown_risk = list(risk_reasons or [])

    if thin:
        limit = policy.starter_limit_eur
        reasons.append(BnplReason(BnplReasonCode.THIN_FILE, declines=False))
    else:
        limit = policy.limit_for(risk if risk is not None else 1.0)
    raise_code: BnplReasonCode | None = None
    next_limit: float | None = None
    if policy.growth_step_up_eur > 0:
        # the ladder: starter + a step per order repaid on time (to the cap), a step down
        # per late one; a thin file's limit, and an established customer's when higher
        # than the limit by probability (which late orders do not lower: the model sees them)
        earned = policy.grown_limit(on_time, late)
        ladder_sets = thin or earned >= limit
        limit = earned if thin else max(limit, earned)
        if late > 0 and ladder_sets:
            reasons.append(BnplReason(BnplReasonCode.LATE_PAY_LATER, declines=False))
        if ladder_sets and policy.grown_limit(on_time, 0.0) < policy.growth_cap_eur:
            raise_code = BnplReasonCode.RAISE_ON_TIME
            next_limit = policy.grown_limit(on_time + 1, late)
    if raise_code is None:
        top = policy.limits_by_probability[0][1]
        raise_code = BnplReasonCode.RAISE_RISK if limit < top else BnplReasonCode.AT_MAXIMUM
        next_limit = _next_step(policy, limit) if limit < top else None
    capped = False
    if features is not None:
        room = free_room_eur
        if room is None:  # one row: the plain-float twin of budget_arrays
            room = prudent_free_room(features, to_day(on))
        if np.isfinite(room):
            affordable = max(0.0, policy.free_room_share * room)
            if affordable < limit:
                limit = affordable
                capped = True
                raise_code, next_limit = BnplReasonCode.RAISE_BUDGET, None
    limit = float(np.floor(limit))
    available = max(0.0, limit - exposure)
    # An order above what is left declines on the limit. The decisive reason is honest:
    # the budget cap (B07) when the capped limit alone is below the order; open pay-later
    # orders (B06) when there are any, or when the limit itself (no budget cap) is below.
    limit_codes: list[BnplReasonCode] = []
    if not any(r.declines for r in reasons) and order_eur > available:
        order_alone_too_large = order_eur > limit
        if capped and order_alone_too_large:
            limit_codes.append(BnplReasonCode.AFFORDABILITY)
        if exposure > 0 or not (capped and order_alone_too_large):
            limit_codes.append(BnplReasonCode.EXPOSURE_LIMIT)
    for code in limit_codes:
        decline(code)
    if capped and BnplReasonCode.AFFORDABILITY not in limit_codes:
        reasons.append(BnplReason(BnplReasonCode.AFFORDABILITY, declines=False))
    declines = [r for r in reasons if r.declines]
    shaping = [r for r in reasons if not r.declines]
    # declined on the customer's situation: no pay-later limit at all, so nothing is
    # available either; declined only on the limit (budget cap or open exposure): the
    # limit stands and the checkout can say how much is left (never more than the limit)
    only_limit = bool(declines) and all(r.code in _LIMIT_CODES for r in declines)
    keep_limit = not declines or only_limit
    return BnplDecision(
        offer=not declines,
        limit_eur=limit if keep_limit else 0.0,
        available_eur=available if keep_limit else 0.0,
        order_eur=order_eur,
        reasons=declines + shaping,
        probability=probability,
        risk_reasons=shown_risk,
        thin_file=thin,
        limit_raise=raise_code if keep_limit else None,
        next_limit_eur=next_limit if keep_limit else None,
        repaid_on_time=on_time,
        pay_later_probability=pay_later_probability,
    )


def _declined_before(memory: dict[str, float] | None) -> bool:
    """Did the creditor decline this customer in the last 90 days, or on their situation
    in the last 365?"""
    if memory is None:
        return False
    return memory.get("declines_90d", 0.0) > 0 or memory.get("situation_declines_365d", 0.0) > 0


def _next_step(policy: BnplPolicy, limit: float) -> float | None:
    """The next limit by probability above ``limit`` (a lower risk band)."""
    above = [lim for _, lim in policy.limits_by_probability if lim > limit]
    return min(above) if above else None


# the decline memory's days-since field of each sticky code
_SINCE = {
    BnplReasonCode.HIGH_RISK.value: "days_since_risk_decline",
    BnplReasonCode.OPEN_ARREARS.value: "days_since_arrears_decline",
    BnplReasonCode.COLLECTION_CASE.value: "days_since_case_decline",
}

# the reasons that decline on the size of the limit, not on the customer's situation
_LIMIT_CODES = frozenset({BnplReasonCode.EXPOSURE_LIMIT, BnplReasonCode.AFFORDABILITY})

"""Why a plan answer is what it is: stable codes with texts in English and Dutch.

Codes are part of the API contract (as :mod:`models.reasons`): add new ones, never rename
one. A referral to debt help has only structural reasons (:class:`ReferralReason`): no
free room, a debt too large for the standard capacity within the debt-scheme term, or
signs of problematic debt. A low P(kept) is never one: it leads to a lower amount, a
longer term, the pause option and an earlier check-in (:attr:`PlanReason.LOW_P_KEPT`).
"""

from __future__ import annotations

from enum import StrEnum


class ReferralReason(StrEnum):
    """Structural reasons to refer to debt help instead of offering a plan (CCD2 art. 36)."""

    NO_FREE_ROOM = "no_free_room"
    # the debt cannot be repaid within the debt-scheme term at the standard capacity (or
    # that capacity is below the lowest instalment the policy asks)
    CAPACITY_TOO_SMALL = "capacity_too_small"
    SEVERAL_OPEN_DEBTS = "several_open_debts"
    REPEATED_BROKEN_PLANS = "repeated_broken_plans"
    INCOME_BELOW_PROTECTED_MINIMUM = "income_below_protected_minimum"


class PlanReason(StrEnum):
    """Why the answer is what it is (stable codes; texts in :data:`REASON_TEXTS`)."""

    FITS_FREE_ROOM = "fits_free_room"
    CAPPED_BY_CAPACITY = "capped_by_capacity"
    LONGER_FOR_KEEPING = "longer_for_keeping"
    LOW_P_KEPT = "low_p_kept"
    PAST_PLANS_BROKEN = "past_plans_broken"
    INCOME_UNKNOWN = "income_unknown"
    INCOME_LOW_CONFIDENCE = "income_low_confidence"
    NO_FREE_ROOM = ReferralReason.NO_FREE_ROOM.value
    CAPACITY_TOO_SMALL = ReferralReason.CAPACITY_TOO_SMALL.value
    SEVERAL_OPEN_DEBTS = ReferralReason.SEVERAL_OPEN_DEBTS.value
    REPEATED_BROKEN_PLANS = ReferralReason.REPEATED_BROKEN_PLANS.value
    INCOME_BELOW_PROTECTED_MINIMUM = ReferralReason.INCOME_BELOW_PROTECTED_MINIMUM.value


#: Plain-language texts: (English, Dutch). Inviting, not threatening (DOMAIN.md).
REASON_TEXTS: dict[PlanReason, tuple[str, str]] = {
    PlanReason.FITS_FREE_ROOM: (
        "The monthly amount fits the free room left after the protected minimum.",
        "Het maandbedrag past in de vrije ruimte boven het beschermde minimum.",
    ),
    PlanReason.CAPPED_BY_CAPACITY: (
        "Larger amounts would exceed the standard (long plans) or maximum (short plans) capacity.",
        "Hogere bedragen gaan boven de standaard (lange regeling) of maximale (korte regeling) afloscapaciteit.",
    ),
    PlanReason.LONGER_FOR_KEEPING: (
        "A lower amount over more months is more likely to be kept, so it is expected to repay more.",
        "Een lager bedrag over meer maanden wordt vaker volgehouden en levert zo naar verwachting meer op.",
    ),
    PlanReason.LOW_P_KEPT: (
        "This plan may be hard to keep: the amount stays within the standard capacity, it is "
        "the plan most likely kept, the customer may pause it, and the creditor checks in early.",
        "Deze regeling kan zwaar zijn om vol te houden: het bedrag blijft binnen de standaard "
        "afloscapaciteit, het is de regeling die het vaakst wordt volgehouden, de klant mag een "
        "pauze vragen en de schuldeiser neemt vroeg contact op.",
    ),
    PlanReason.PAST_PLANS_BROKEN: (
        "Earlier payment plans were broken; the amount is kept modest.",
        "Eerdere betalingsregelingen zijn niet volgehouden; het bedrag is bescheiden gehouden.",
    ),
    PlanReason.INCOME_UNKNOWN: (
        "Income is unknown: the amount rests on payment history only. Ask for the budget.",
        "Het inkomen is onbekend: het bedrag rust alleen op het betaalgedrag. Vraag naar het budget.",
    ),
    PlanReason.INCOME_LOW_CONFIDENCE: (
        "Income detection is uncertain; check the budget with the customer.",
        "Het inkomen is onzeker vastgesteld; controleer het budget met de klant.",
    ),
    PlanReason.NO_FREE_ROOM: (
        "There is no room above the protected minimum: refer to debt help instead of a plan.",
        "Er is geen ruimte boven het beschermde minimum: verwijs naar schuldhulp in plaats van een regeling.",
    ),
    PlanReason.CAPACITY_TOO_SMALL: (
        "The room above the protected minimum is too small to repay this debt within the "
        "debt-scheme term at the standard capacity: refer to debt help instead of a plan.",
        "De ruimte boven het beschermde minimum is te klein om deze schuld binnen de looptijd "
        "van een schuldregeling af te lossen met de standaard afloscapaciteit: verwijs naar "
        "schuldhulp in plaats van een regeling.",
    ),
    PlanReason.SEVERAL_OPEN_DEBTS: (
        "Several collection cases or payment plans are open at once, a sign of problematic "
        "debt: refer to debt help, which can look at all debts together.",
        "Er lopen meerdere incassozaken of betalingsregelingen tegelijk, een teken van "
        "problematische schulden: verwijs naar schuldhulp, die alle schulden samen bekijkt.",
    ),
    PlanReason.REPEATED_BROKEN_PLANS: (
        "Several earlier payment plans could not be kept, a sign of problematic debt: refer "
        "to debt help.",
        "Meerdere eerdere betalingsregelingen konden niet worden volgehouden, een teken van "
        "problematische schulden: verwijs naar schuldhulp.",
    ),
    PlanReason.INCOME_BELOW_PROTECTED_MINIMUM: (
        "Income is below the protected minimum: refer to debt help, which can also check for "
        "missed allowances.",
        "Het inkomen ligt onder het beschermde minimum: verwijs naar schuldhulp, die ook kan "
        "nagaan of er toeslagen worden gemist.",
    ),
}

SAFETY_NET_TEXT: tuple[str, str] = (
    "The customer may pause the plan for up to {pause} month(s), {times} time(s), by asking. "
    "The creditor contacts the customer after {missed} missed instalment(s) and checks in "
    "in month {month} of the plan.",
    "De klant mag de regeling op verzoek {times} keer tot {pause} maand(en) pauzeren. De "
    "schuldeiser neemt contact op na {missed} gemiste termijn(en) en belt in maand {month} "
    "van de regeling even na.",
)

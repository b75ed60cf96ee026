"""WIK collection costs (DOMAIN.md §1): exact cents, rounded half up."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from models.legal import legal_table_on, wik_costs_cents

ON = date(2026, 1, 1)


@pytest.mark.parametrize(
    ("principal_eur", "costs_eur"),
    [
        (100, 40),  # the EUR 40 minimum
        (500, 75),
        (1_000, 150),
        (2_500, 375),
        (5_000, 625),
        (10_000, 875),
        (200_000, 2_775),
        (1_000_000, 6_775),  # the cap is reached here
        (2_000_000, 6_775),
    ],
)
def test_the_worked_values_of_domain_section_1(principal_eur, costs_eur):
    assert wik_costs_cents(principal_eur * 100, ON) == costs_eur * 100


@pytest.mark.parametrize(
    ("principal_cents", "costs_cents"),
    [
        (26_670, 4_001),  # 15 % = EUR 40.005 -> EUR 40.01 (float round() gave 40.00)
        (26_710, 4_007),  # 40.065 -> 40.07
        (26_750, 4_013),  # 40.125 -> 40.13
        (30_010, 4_502),  # 45.015 -> 45.02
        (250_010, 37_501),  # 375 + 10 % of 0.10 = 375.01
        (500_030, 62_502),  # 625 + 5 % of 0.30 = 625.015 -> 625.02
    ],
)
def test_half_a_cent_rounds_up(principal_cents, costs_cents):
    assert wik_costs_cents(principal_cents, ON) == costs_cents


def test_every_cent_matches_exact_decimal_arithmetic_half_up():
    scale = legal_table_on(ON).wik
    rates = [Decimal("0.15"), Decimal("0.10"), Decimal("0.05"), Decimal("0.01"), Decimal("0.005")]
    widths = [250_000, 250_000, 500_000, 19_000_000, None]

    def exact(p: int) -> int:
        left, total = Decimal(p), Decimal(0)
        for width, rate in zip(widths, rates, strict=True):
            part = left if width is None else min(left, Decimal(width))
            total += part * rate
            left -= part
        cents = int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        return min(max(cents, 4_000), 677_500)

    principals = [*range(26_000, 40_000), *range(249_000, 252_000), *range(499_000, 502_000)]
    assert [scale.costs_cents(p) for p in principals] == [exact(p) for p in principals]


def test_the_recurring_small_claim_cap_still_applies():
    assert wik_costs_cents(26_666, ON, recurring=True) == 4_000
    assert wik_costs_cents(20_000, date(2024, 9, 30), recurring=True) == 4_000

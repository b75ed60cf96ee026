"""The pay-later risk cut-off, chosen from the trade-off curve by the policy's stated rule.

The rule lives in the versioned policy (``operating_point`` in
``models/config/bnpl_policy.json``), so the cut-off in force is never a number someone
typed but the outcome of a rule anyone can re-run on the curve:

``lowest_collection_within_points_of_rules_only``
    of the curve's points whose approval rate is at most ``max_points_below_rules_only``
    percentage points below the rules alone (no risk cut-off), the one with the lowest
    share of approved orders that reached a collection agency (ties: the higher approval).
    When no point qualifies (the policy's other rules already decline more than that),
    the point with the highest approval, marked ``meets_rule: false``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RULES = ("lowest_collection_within_points_of_rules_only",)


def choose_operating_point(
    curve: Sequence[dict[str, float]], rules_only: dict[str, float], rule: dict[str, Any]
) -> dict[str, float]:
    """The point of ``curve`` (each with ``cutoff``, ``approval_rate`` and
    ``collection_rate_approved``) that ``rule`` picks against ``rules_only`` (the rules
    alone on the same orders), with ``meets_rule``. Raises ``ValueError`` for an unknown
    rule or an empty curve."""
    name = rule.get("rule")
    if name not in RULES:
        raise ValueError(f"operating_point.rule must be one of {RULES}; got {name!r}")
    points = float(rule["max_points_below_rules_only"])
    if points < 0:
        raise ValueError(f"max_points_below_rules_only must be >= 0; got {points}")
    floor = rules_only["approval_rate"] - points / 100
    if not curve:
        raise ValueError("the trade-off curve is empty")
    eligible = [c for c in curve if c["approval_rate"] >= floor - 1e-12]
    if not eligible:
        loosest = max(curve, key=lambda c: (c["approval_rate"], -c["collection_rate_approved"]))
        return {**loosest, "meets_rule": False}
    best = min(eligible, key=lambda c: (c["collection_rate_approved"], -c["approval_rate"]))
    return {**best, "meets_rule": True}

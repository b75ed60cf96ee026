"""What a monthly status code means: vocabularies declared in the mapping, and named presets.

A bureau or collection system reports, per account and month, a status code. The
settlement rule (:mod:`training.importers.settlement`) needs three facts per code:

``months_behind``
    how many statements are unpaid at the end of the month (0 = current: the previous
    statement was settled on its due date);
``paid_in_full``
    nothing is behind and the previous statement was settled before its due date
    (``paid_early_days`` early);
``no_balance``
    nothing was owed that month: every earlier statement is settled (as ``paid_in_full``)
    and the month issues no statement.

A mapping declares ``"status": {"preset": NAME, "codes": {CODE: MEANING, ...}}``; codes
extend or override the preset. A MEANING is ``"current"``, ``"paid_in_full"``,
``"paid_off"`` (the same as paid in full: the balance was paid off in the month),
``"no_balance"``, ``{"months_behind": k}`` or ``{"days_past_due_from": d}`` (the lower bound
of a days-past-due bucket: a statement due ``due_days`` after month end and still unpaid
at a later month end is 1-29 days past due at 1 month behind, 30-59 at 2, and so on, so
``d`` → ``d // 30 + 1`` months behind, 0 → current). Codes are compared as text
(``1``, ``1.0`` and ``"1"`` are the same code).

Presets (:data:`PRESETS`):

``months_behind``
    integers: ``k ≥ 1`` is k months behind (capped at ``max_months_late``), ``0`` and other
    integers current, the codes in ``paid_in_full`` (default ``[-2, -1]``) paid in full.
    The UCI Taiwan ``PAY_*`` columns.
``dpd_buckets``
    ``0`` = 1-29 days past due, ``1`` = 30-59, ``2`` = 60-89, ``3`` = 90-119,
    ``4`` = 120-149, ``5`` = 150+ or written off, ``C`` = paid off that month,
    ``X`` = no balance (no loan) that month. The usual bureau export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

CURRENT, PAID_IN_FULL, PAID_OFF, NO_BALANCE = "current", "paid_in_full", "paid_off", "no_balance"
DAYS_PER_BUCKET = 30


@dataclass(frozen=True)
class StatusMeaning:
    """One code's meaning (see the module docstring)."""

    months_behind: int = 0
    paid_in_full: bool = False
    no_balance: bool = False


def meaning_of(spec: Any) -> StatusMeaning:
    """A declared meaning → :class:`StatusMeaning`; a ValueError quoting a bad one."""
    if spec in (CURRENT,):
        return StatusMeaning()
    if spec in (PAID_IN_FULL, PAID_OFF):
        return StatusMeaning(paid_in_full=True)
    if spec == NO_BALANCE:
        return StatusMeaning(paid_in_full=True, no_balance=True)
    if isinstance(spec, dict) and len(spec) == 1:
        ((key, value),) = spec.items()
        if type(value) is int and value >= 0:
            if key == "months_behind":
                return StatusMeaning(months_behind=value)
            if key == "days_past_due_from":
                return StatusMeaning(
                    months_behind=0 if value == 0 else value // DAYS_PER_BUCKET + 1
                )
    raise ValueError(
        f"a status meaning must be one of {CURRENT!r}, {PAID_IN_FULL!r}, {PAID_OFF!r}, "
        f'{NO_BALANCE!r}, {{"months_behind": k}} or {{"days_past_due_from": d}} with k, d '
        f"whole numbers ≥ 0; got {spec!r}"
    )


#: Named vocabularies: code → meaning (``months_behind`` also reads any integer).
PRESETS: Final[dict[str, dict[str, Any]]] = {
    "months_behind": {"-2": PAID_IN_FULL, "-1": PAID_IN_FULL, "0": CURRENT},
    "dpd_buckets": {
        "0": {"days_past_due_from": 1},
        "1": {"days_past_due_from": 30},
        "2": {"days_past_due_from": 60},
        "3": {"days_past_due_from": 90},
        "4": {"days_past_due_from": 120},
        "5": {"days_past_due_from": 150},
        "C": PAID_OFF,
        "X": NO_BALANCE,
    },
}


def code_text(value: Any) -> str | None:
    """A status value as its code: whole numbers without a decimal point, text stripped;
    None for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class StatusVocabulary:
    """Codes and their meaning; with ``integers_behind``, any other whole number is months
    behind (the ``months_behind`` preset), capped at ``max_months_late``."""

    codes: dict[str, StatusMeaning]
    integers_behind: bool = False
    max_months_late: int = 9
    preset: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StatusVocabulary:
        """``{"preset": NAME, "codes": {...}, "paid_in_full": [...], "max_months_late": N}``."""
        preset = raw.get("preset")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"status preset must be one of {sorted(PRESETS)}; got {preset!r}")
        if preset is None and not raw.get("codes"):
            raise ValueError(
                f'status needs a "preset" ({", ".join(sorted(PRESETS))}) or "codes" declaring '
                "what each status code means"
            )
        declared: dict[str, Any] = dict(PRESETS.get(preset or "", {}))
        if "paid_in_full" in raw:  # the months_behind preset's paid-in-full codes
            declared = {k: v for k, v in declared.items() if v != PAID_IN_FULL}
            declared.update({str(code_text(c)): PAID_IN_FULL for c in raw["paid_in_full"]})
        declared.update({str(code_text(c)): v for c, v in raw.get("codes", {}).items()})
        max_late = int(raw.get("max_months_late", 9))
        if max_late < 1:
            raise ValueError(f"max_months_late must be at least 1; got {max_late}")
        return cls(
            {str(c): meaning_of(v) for c, v in declared.items()},
            integers_behind=preset == "months_behind",
            max_months_late=max_late,
            preset=preset,
        )

    def decode(self, values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(months_behind, paid_in_full, no_balance, unknown)`` per value; ``unknown``
        marks missing values and codes the vocabulary does not declare."""
        texts = [code_text(v) for v in values.tolist()]
        uniq = sorted({t for t in texts if t is not None})
        table: dict[str, StatusMeaning] = {}
        for code in uniq:
            meaning = self.codes.get(code)
            if meaning is None and self.integers_behind:
                try:
                    number = int(code)
                except ValueError:
                    number = None
                if number is not None:
                    meaning = StatusMeaning(months_behind=max(number, 0))
            if meaning is not None:
                table[code] = meaning
        n = len(texts)
        behind = np.zeros(n, dtype=np.int64)
        full = np.zeros(n, dtype=bool)
        none_owed = np.zeros(n, dtype=bool)
        unknown = np.zeros(n, dtype=bool)
        for i, text in enumerate(texts):
            m = table.get(text) if text is not None else None
            if m is None:
                unknown[i] = True
                continue
            behind[i], full[i], none_owed[i] = m.months_behind, m.paid_in_full, m.no_balance
        return np.minimum(behind, self.max_months_late), full, none_owed, unknown

    def described(self) -> str:
        """The declared codes, for a rejection message."""
        codes = ", ".join(sorted(self.codes))
        extra = " and any whole number (months behind)" if self.integers_behind else ""
        return f"{codes}{extra}"

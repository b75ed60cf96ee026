"""The pay-later adjustment: P(an approved order reaches an agency) from the early-warning
probability and the creditor's own decline memory (issue 21, the leak).

Why: a customer tijdig declined is kept out of pay-later debt and soon *looks* less risky
to the early-warning model; the creditor knows better. In a closed loop those customers
come back, are approved, and reach an agency far more often than other approvals. The
memory (:mod:`models.decline_memory`) says what the model cannot see: that this customer
was declined, on what and how recently.

The model is a small logistic regression on

* ``logit(p)``, the early-warning probability's log-odds (free: a recalibration), and
* terms of the decline memory as of the order day (:data:`TERMS`): counts of declines
  (all, on the customer's situation) and how recent the last situation decline was —
  each coefficient **bounded at >= 0** (a decline never lowers the risk) — and the
  customer's recent approvals and open pay-later exposure (free).

Fitted by L-BFGS-B with those bounds and a small L2 penalty (sklearn's ``C=1``) on every
coefficient but the intercept: one fit, no feature selection, the bounds stated. It is
trained on a closed-loop population (:mod:`training.bnpl_adjustment`: only there does
the memory vary with the outcomes it should predict), stored as a bundle component
(``bnpl_adjustment/``), and applied on the pay-later path only: the risk cut-off and the
limits by probability then apply to the adjusted probability. A bundle without it decides
as before. Online (the service's ``customer_memory`` row) and in the loop or replay
(the columnar ``decline_memory``) the same :meth:`BnplAdjustment.adjust` is called.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.decline_memory import DeclineMemory

FORMAT = "tijdig-bnpl-adjustment-1"
_FILE = "bnpl_adjustment.json"
_EPS = 1e-6


def _log1p(name: str) -> Any:
    return lambda m: np.log1p(np.maximum(np.nan_to_num(m[name]), 0.0))


def _recency(m: Mapping[str, np.ndarray]) -> np.ndarray:
    """1 for a situation decline yesterday, falling to 0 at 90 days (NaN: none)."""
    days = np.asarray(m["days_since_situation_decline"], dtype=np.float64)
    return np.where(np.isfinite(days), np.clip(1.0 - days / 90.0, 0.0, 1.0), 0.0)


#: the memory terms, in order: (name, function of the memory's columns, bounded >= 0)
TERMS: tuple[tuple[str, Any, bool], ...] = (
    ("log1p_declines_30d", _log1p("declines_30d"), True),
    ("log1p_declines_90d", _log1p("declines_90d"), True),
    ("log1p_situation_declines_90d", _log1p("situation_declines_90d"), True),
    ("log1p_situation_declines_365d", _log1p("situation_declines_365d"), True),
    ("situation_decline_recency", _recency, True),
    ("log1p_approved_90d", _log1p("approved_90d"), False),
    ("log1p_approved_recent_eur", _log1p("approved_recent_eur"), False),
)
TERM_NAMES = tuple(t[0] for t in TERMS)
BOUNDED = tuple(t[2] for t in TERMS)


def memory_columns(memory: DeclineMemory | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The memory as columns: a columnar :class:`DeclineMemory` (loop, replay) or one
    customer's row (the service's :func:`~models.decline_memory.customer_memory`)."""
    if isinstance(memory, DeclineMemory):
        return {name: np.asarray(getattr(memory, name)) for name in memory.__dataclass_fields__}
    return {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in memory.items()}


def memory_columns_of(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Memory rows (:meth:`DeclineMemory.row`, one per order) as columns."""
    names = DeclineMemory.__dataclass_fields__
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in names}


def design(probability: np.ndarray, memory: DeclineMemory | Mapping[str, Any]) -> np.ndarray:
    """The model's inputs, one row per order: logit(p), then :data:`TERMS`."""
    p = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1 - _EPS)
    cols = memory_columns(memory)
    # one memory row may serve many probabilities (broadcast)
    terms = [np.broadcast_to(f(cols), p.shape) for _, f, _ in TERMS]
    return np.column_stack([np.log(p / (1 - p)), *terms])


@dataclass(frozen=True)
class BnplAdjustment:
    """The fitted adjustment (module doc); a bundle component."""

    intercept: float
    logit_coef: float
    coefs: tuple[float, ...]  # one per TERMS entry
    metadata: dict[str, Any] = field(default_factory=dict)

    def agency_probability(
        self, probability: np.ndarray, memory: DeclineMemory | Mapping[str, Any]
    ) -> np.ndarray:
        """The fitted P(the approved order reaches an agency) of each order."""
        X = design(probability, memory)
        z = self.intercept + X @ np.array([self.logit_coef, *self.coefs])
        return 1.0 / (1.0 + np.exp(-z))

    def adjust(
        self, probability: np.ndarray, memory: DeclineMemory | Mapping[str, Any]
    ) -> np.ndarray:
        """The pay-later probability of each order on the early-warning model's scale:
        the probability that, for a customer with an empty memory, gives the same
        :meth:`agency_probability` as ``probability`` with this memory, i.e.
        ``logit(p') = logit(p) + (memory terms . coefs) / logit_coef``. So the policy's
        cut-off and limit bands keep their meaning, a customer without earlier pay-later
        decisions keeps the model's own probability, and a cut-off on ``p'`` is a cut-off
        on the fitted P(agency) for everyone."""
        p = np.asarray(probability, dtype=np.float64)
        X = design(p, memory)
        shift = X[:, 1:] @ np.array(self.coefs) / self.logit_coef
        # no shift (an empty memory): exactly the model's probability, unclipped
        return np.where(shift == 0, p, 1.0 / (1.0 + np.exp(-(X[:, 0] + shift))))

    def adjust_one(self, probability: float, memory: Mapping[str, float]) -> float:
        """:meth:`adjust` for one order (the service's call)."""
        return float(self.adjust(np.array([probability]), memory)[0])

    # ------------------------------------------------------------------ component
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": FORMAT,
            "intercept": self.intercept,
            "logit_coef": self.logit_coef,
            "terms": dict(zip(TERM_NAMES, self.coefs, strict=True)),
            "metadata": self.metadata,
        }
        (directory / _FILE).write_text(
            json.dumps(doc, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> BnplAdjustment:
        doc = json.loads((directory / _FILE).read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown pay-later adjustment format {doc.get('format')!r}")
        terms = doc["terms"]
        if set(terms) != set(TERM_NAMES):
            raise ValueError(f"pay-later adjustment terms {sorted(terms)} != {TERM_NAMES}")
        return cls(
            intercept=float(doc["intercept"]),
            logit_coef=float(doc["logit_coef"]),
            coefs=tuple(float(terms[n]) for n in TERM_NAMES),
            metadata=dict(doc.get("metadata", {})),
        )

    def self_check(self) -> None:
        """Finite coefficients, a positive slope on logit(p) (the adjusted probability
        keeps the model's ranking among customers with the same memory) and no negative
        coefficient on a decline term."""
        values = [self.intercept, self.logit_coef, *self.coefs]
        if len(self.coefs) != len(TERMS) or not all(math.isfinite(v) for v in values):
            raise ValueError(f"pay-later adjustment coefficients unusable: {values}")
        if self.logit_coef <= 0:
            raise ValueError(
                f"pay-later adjustment: logit slope must be > 0; got {self.logit_coef}"
            )
        negative = [
            n for n, c, b in zip(TERM_NAMES, self.coefs, BOUNDED, strict=True) if b and c < 0
        ]
        if negative:
            raise ValueError(f"pay-later adjustment: decline terms below 0: {negative}")


def fit_adjustment(
    probability: np.ndarray,
    memory: DeclineMemory | Mapping[str, Any],
    reached_agency: np.ndarray,
    l2: float = 1.0,
    metadata: dict[str, Any] | None = None,
) -> BnplAdjustment:
    """Fit :class:`BnplAdjustment` on approved orders with a known outcome: penalised log
    loss (``0.5 * l2 * |w|^2`` on all but the intercept, as sklearn's ``C=1/l2``),
    L-BFGS-B with the decline terms bounded at >= 0 and the logit slope at >= 0.01."""
    from scipy.optimize import minimize

    X = design(probability, memory)
    y = np.asarray(reached_agency, dtype=np.float64)
    if len(y) == 0 or y.sum() == 0 or y.sum() == len(y):
        raise ValueError("the pay-later adjustment needs approved orders of both outcomes")
    A = np.column_stack([np.ones(len(y)), X])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = A @ w
        # log(1 + e^z) - y z, stably
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(w[1:] ** 2)
        grad = A.T @ (1.0 / (1.0 + np.exp(-z)) - y)
        grad[1:] += l2 * w[1:]
        return float(value), grad

    bounds = [(None, None), (0.01, None)] + [(0.0, None) if b else (None, None) for b in BOUNDED]
    w0 = np.zeros(A.shape[1])
    w0[1] = 1.0  # start at the model's own probability
    res = minimize(loss, w0, jac=True, method="L-BFGS-B", bounds=bounds)
    w = res.x
    return BnplAdjustment(
        intercept=float(w[0]),
        logit_coef=float(w[1]),
        coefs=tuple(float(v) for v in w[2:]),
        metadata={
            **(metadata or {}),
            "orders": len(y),
            "reached_agency": int(y.sum()),
            "l2": l2,
            "converged": bool(res.success),
            "bounded_at_zero": [n for n, b in zip(TERM_NAMES, BOUNDED, strict=True) if b],
        },
    )

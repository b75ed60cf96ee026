"""Trainer of the P(kept) bundle component (:class:`models.plan_kept.PlanKeptModel`).

Training rows are past arrangements: features ``build_features(events, as_of=start)``
for that customer (point in time: only what was known before the plan started) plus the
plan terms; label kept (1) / broken (0). Arrangements still running are left out, and so
are those whose outcome could not be known yet by the end of the data (start + term + 1
month after the last event): otherwise late segments would hold only the quickly broken
plans.

Split out of time by the risk model's calibration / validation dates; when a segment
would be too thin (or hold one class) it falls back to start-date quantiles (60/20/20).
With too few arrangements overall it returns the conservative ``prior`` component, never
an error.

**What data it needs.** To learn how much a *lower* monthly amount helps, the history must
hold plans whose amount varies independently of what the customer can pay. A history with
one fixed rule (e.g. ``debt / 5``: the amount just follows the debt) teaches little about
the amount: the model then under-rates low amounts and the plan search refers too many
customers. In the simulation the evidence run trains on a creditor that varies plan sizes
(:class:`training.simulation.policy.VariedArrangementAmounts`, ``training.studies.plan_eval``);
with real data, use a period or segment where amounts were set by hand or varied, and
check the held-out ECE per amount band before trusting suggestions outside the amounts
seen. A bundle trained on the simulated default world (`make run`) learns from the
plan-variation world simulated beside it (``TrainingContext.plan_events``,
:mod:`training.plan_world`).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from features.build import FEATURE_NAMES, build_features
from features.events import NEVER, OUTCOME_CODES, EventArrays, to_day
from models.plan_kept import ALL_FEATURE_NAMES, MONOTONE, PlanKeptModel, plan_matrix
from models.plans import PlanPolicy
from training.components import FittedComponent, TrainingContext
from training.dataset import customer_subset

MIN_ROWS = 60  # fewer labelled arrangements than this -> prior component
MIN_SEGMENT = 25
FLOOR_MIN_VALIDATION = 200  # absolute floors apply from this many validation rows
AUC_FLOOR = 0.60
ECE_CEILING = 0.08
AUC_TOLERANCE = 0.02
BRIER_TOLERANCE = 0.01

_KEPT, _BROKEN = OUTCOME_CODES["kept"], OUTCOME_CODES["broken"]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins (weighted mean |mean p − kept rate|)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(y))


def plan_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "kept_rate": float(np.mean(y)) if len(y) else float("nan"),
        "mean_p_kept": float(np.mean(p)) if len(p) else float("nan"),
        "rows": float(len(y)),
    }


def arrangement_rows(
    events: EventArrays, last_day: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(plan rows, labels kept=1, start days) for every arrangement with a knowable outcome.

    ``last_day``: the last event day of the whole population, when ``events`` is one
    partition of it (an outcome is knowable by the history's end, not the partition's).
    """
    ar = events.arrangements
    if len(ar) == 0:
        return np.zeros((0, len(ALL_FEATURE_NAMES))), np.zeros(0, int), np.zeros(0, np.int64)
    if last_day is None:
        last_day = _last_event_day(events)
    monthly = ar["monthly_cents"].astype(np.int64)
    debt = ar["debt_cents"].astype(np.int64)
    term = -(-debt // np.maximum(monthly, 1))
    ended = np.isin(ar["outcome"], [_KEPT, _BROKEN])
    knowable = ar["start_day"] + 31 * (term + 1) <= last_day
    idx = np.flatnonzero(ended & knowable & (ar["cust"] >= 0))
    if len(idx) == 0:
        return np.zeros((0, len(ALL_FEATURE_NAMES))), np.zeros(0, int), np.zeros(0, np.int64)
    start = ar["start_day"][idx]
    # features of the customers with arrangements only (a few percent of a population):
    # the same values as a pass over everyone, for a fraction of the per-event temporaries
    with_plans = np.unique(ar["cust"][idx])
    cust = np.searchsorted(with_plans, ar["cust"][idx])
    planners = customer_subset(events, with_plans)
    # one build_features call per "k-th arrangement of a customer": as_of per customer
    order = np.lexsort((start, cust))
    rank = np.zeros(len(idx), np.int64)
    c_sorted = cust[order]
    new = np.r_[True, c_sorted[1:] != c_sorted[:-1]]
    group_start = np.maximum.accumulate(np.where(new, np.arange(len(idx)), 0))
    rank[order] = np.arange(len(idx)) - group_start
    base = np.full((len(idx), len(FEATURE_NAMES)), np.nan)
    for k in range(int(rank.max()) + 1):
        rows = np.flatnonzero(rank == k)
        as_of = np.full(planners.n, int(start.min()), dtype=np.int64)
        as_of[cust[rows]] = start[rows]
        base[rows] = build_features(planners, as_of)[cust[rows]]
    X = plan_matrix(base, start, monthly[idx] / 100, debt[idx] / 100)
    y = (ar["outcome"][idx] == _KEPT).astype(int)
    return X, y, start


def _last_event_day(events: EventArrays) -> int:
    days = [
        events.invoices["issue_day"],
        events.payments["day"],
        events.income["day"],
        events.debits["day"],
        events.steps["day"],
        events.balances["day"],
    ]
    values = [int(d[d < NEVER].max()) for d in days if len(d) and (d < NEVER).any()]
    return max(values) if values else 0


def _split(start: np.ndarray, y: np.ndarray, dates: dict[str, list[str]]) -> tuple[np.ndarray, ...]:
    def ok(*masks: np.ndarray) -> bool:
        least = max(MIN_SEGMENT, int(0.1 * len(y)))
        return all(m.sum() >= least and len(np.unique(y[m])) == 2 for m in masks)

    try:
        cal0, val0 = to_day(dates["calibration"][0]), to_day(dates["validation"][0])
        tr, ca, va = start < cal0, (start >= cal0) & (start < val0), start >= val0
        if ok(tr, ca, va):
            return tr, ca, va, np.array("risk_split_dates")
    except (KeyError, IndexError, ValueError):
        pass
    q60, q80 = np.quantile(start, [0.6, 0.8])
    tr, ca, va = start < q60, (start >= q60) & (start < q80), start >= q80
    return tr, ca, va, np.array("start_date_quantiles")


class PlanKeptTrainer:
    """Fits :class:`PlanKeptModel` inside ``train_candidate`` (training.components)."""

    name = "plan_kept"

    def fit(self, context: TrainingContext) -> FittedComponent:
        from training.train import fit_platt

        policy = PlanPolicy.default()
        plan_events: EventArrays | None = getattr(context, "plan_events", None)
        own = plan_events is None  # also contexts built before plan_events existed
        if plan_events is not None:
            X, y, start = arrangement_rows(plan_events)
        elif getattr(context, "precomputed", None) is not None:
            X, y, start = context.precomputed.arrangement_rows  # type: ignore[union-attr]
        else:
            X, y, start = arrangement_rows(context.events)
        threads = int(context.params.get("num_threads", 0) or 0)
        meta: dict[str, Any] = {
            "labelled_arrangements": len(y),
            "policy_version": policy.version,
            # where the plans came from: the store's history, or the plan-variation world
            "events": "store" if own else "plan world",
        }
        if len(y) < MIN_ROWS or len(np.unique(y)) < 2:
            return self._prior(y, policy, meta, f"fewer than {MIN_ROWS} or one outcome only")
        tr, ca, va, how = _split(start, y, context.split.dates)
        if not all(m.sum() >= MIN_SEGMENT and len(np.unique(y[m])) == 2 for m in (tr, ca, va)):
            return self._prior(
                y,
                policy,
                meta,
                f"a train, calibration or validation segment has under {MIN_SEGMENT} "
                "arrangements or one outcome",
            )
        params = {
            "objective": "binary",
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_data_in_leaf": int(max(5, min(50, tr.sum() // 40))),
            "feature_fraction": 0.9,
            "lambda_l2": 1.0,
            "monotone_constraints": MONOTONE,
            "monotone_constraints_method": "basic",
            "verbose": -1,
            "num_threads": threads,
            "seed": 7,
            "deterministic": True,
        }
        names = list(ALL_FEATURE_NAMES)
        booster = lgb.train(
            params,
            lgb.Dataset(X[tr], y[tr], feature_name=names),
            num_boost_round=400,
            valid_sets=[lgb.Dataset(X[ca], y[ca], feature_name=names)],
            callbacks=[lgb.early_stopping(30, verbose=False)],
        )
        calibrator = fit_platt(booster.predict(X[ca]), y[ca])
        if not calibrator["slope"] > 0:  # an uninformative booster: fall back, stay monotone
            return self._prior(
                y, policy, meta, "the booster ranked the plans no better than chance"
            )
        meta.update(
            {
                "split": str(how),
                "rows": {
                    "train": int(tr.sum()),
                    "calibration": int(ca.sum()),
                    "validation": int(va.sum()),
                },
                "best_iteration": booster.best_iteration,
            }
        )
        model = PlanKeptModel(
            booster=booster,
            calibrator=calibrator,
            mode="lightgbm",
            prior_kept_rate=float(y[tr].mean()),
            policy=policy.to_dict(),
            metadata=meta,
        )
        model.metadata["version"] = f"plan_kept:{policy.version}:{len(y)}"
        p_val = model.predict(X[va])
        metrics = plan_metrics(y[va], p_val)
        model.metadata["metrics"] = metrics
        Xv, yv = X[va], y[va]

        def compare(champion: Any | None) -> list[tuple[bool, str]]:
            return _compare(metrics, champion, Xv, yv)

        return FittedComponent(self.name, model, metrics, compare)

    def _prior(
        self,
        y: np.ndarray,
        policy: PlanPolicy,
        meta: dict[str, Any],
        reason: str,
    ) -> FittedComponent:
        rate = float(np.clip(y.mean(), 0.05, 0.95)) if len(y) else 0.5
        model = PlanKeptModel(
            booster=None,
            calibrator={"slope": 1.0, "intercept": 0.0},
            mode="prior",
            prior_kept_rate=rate,
            policy=policy.to_dict(),
            metadata={**meta, "version": f"plan_kept:{policy.version}:prior"},
        )
        metrics = {"rows": float(len(y)), "kept_rate": rate, "prior_mode": 1.0}

        def compare(champion: Any | None) -> list[tuple[bool, str]]:
            # as debit_failure: a learned champion is never replaced by the constant prior
            # (review, 1 Dec 2026: the prior passed against a learned champion whose
            # Brier score it lost by 0.0135)
            if champion is not None and getattr(champion, "mode", None) == "lightgbm":
                return [
                    (
                        False,
                        "the candidate fell back to the constant prior "
                        f"({len(y)} arrangements; {reason}) but the champion's is learned",
                    )
                ]
            return [(True, f"constant prior kept ({len(y)} arrangements; {reason})")]

        return FittedComponent(self.name, model, metrics, compare)


def _compare(
    metrics: dict[str, float], champion: Any | None, Xv: np.ndarray, yv: np.ndarray
) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    n = len(yv)
    if n >= FLOOR_MIN_VALIDATION:
        auc, ece = metrics["roc_auc"], metrics["ece"]
        out.append((auc >= AUC_FLOOR, f"ROC AUC {auc:.3f} (floor {AUC_FLOOR})"))
        out.append((ece <= ECE_CEILING, f"ECE {ece:.3f} (ceiling {ECE_CEILING})"))
    else:
        out.append(
            (
                True,
                f"{n} validation arrangements, floors not applied (< {FLOOR_MIN_VALIDATION})",
            )
        )
    if champion is None:
        out.append((True, "no champion component to compare with"))
        return out
    try:
        p_champ = champion.predict(Xv)
    except Exception as exc:  # as debit_failure: what cannot be checked is not promoted
        out.append((False, f"champion component not comparable ({type(exc).__name__})"))
        return out
    champ = plan_metrics(yv, p_champ)
    if np.isfinite(champ["roc_auc"]) and np.isfinite(metrics["roc_auc"]):
        out.append(
            (
                metrics["roc_auc"] >= champ["roc_auc"] - AUC_TOLERANCE,
                f"ROC AUC {metrics['roc_auc']:.3f} vs champion {champ['roc_auc']:.3f} (tolerance {AUC_TOLERANCE})",
            )
        )
    out.append(
        (
            metrics["brier"] <= champ["brier"] + BRIER_TOLERANCE,
            f"Brier {metrics['brier']:.4f} vs champion {champ['brier']:.4f} (tolerance {BRIER_TOLERANCE})",
        )
    )
    return out

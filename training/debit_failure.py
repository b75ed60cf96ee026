"""Train the debit-failure component (``models.debit_failure.DebitFailureModel``).

Training rows are **first** debit attempts (retries 5 business days after a failure are
left out: the suggestion is about the first attempt). A debit in month ``M`` is
described as of the 1st of ``M`` — income timing and debit history from events dated
before that day — and labelled 1 when it failed (AM04/MS03 and other returns), 0 when it
was collected; reversals (MD06, the customer's refund) are left out.

Out of time by the risk model's split (``context.split.dates``): months before the first
calibration date train, months up to the first validation date calibrate (Platt scaling
on the booster's log-odds, also the early-stopping set), later months validate.
With too few rows or one class in any segment the trainer returns the conservative
**prior** model (keeps every current day) instead of failing the whole training run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import lightgbm as lgb
import numpy as np

from features.events import RESULT_CODES, EventArrays, month_of, to_day
from features.income_timing import (
    FEATURE_NAMES,
    MONOTONE,
    debit_history,
    debit_rows,
    detect_income_timing,
    first_attempts,
)
from models.calendar import target2
from models.debit_failure import DebitFailureModel
from training.components import FittedComponent, TrainingContext
from training.dataset import PARTITION_CUSTOMERS, customer_partitions
from training.evaluate import binary_metrics

NAME: Final = "debit_failure"
MIN_ROWS: Final = 200  # per segment; fewer -> the prior model
MIN_POSITIVES: Final = 10
#: promotion floors and tolerances against the champion's component
MIN_ROC_AUC: Final = 0.60
MAX_ECE: Final = 0.05
ROC_AUC_TOLERANCE: Final = 0.02
BRIER_TOLERANCE: Final = 0.005

PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "monotone_constraints_method": "intermediate",
    "verbose": -1,
    "seed": 7,
    "deterministic": True,
    "num_threads": 2,
}
MAX_ROUNDS: Final = 400


@dataclass
class DebitRows:
    """Point-in-time training rows: features, label, the as-of day and the customer."""

    X: np.ndarray
    y: np.ndarray
    as_of: np.ndarray
    cust: np.ndarray

    def subset(self, mask: np.ndarray) -> DebitRows:
        return DebitRows(self.X[mask], self.y[mask], self.as_of[mask], self.cust[mask])

    def __len__(self) -> int:
        return len(self.y)


def build_debit_rows(
    events: EventArrays,
    *,
    until: int | None = None,
    partition_customers: int = PARTITION_CUSTOMERS,
) -> DebitRows:
    """One row per first debit attempt (before ``until``), described as of its month's 1st.

    Rows month by month, attempts in store order within a month. Income timing and debit
    history are computed one partition of customers at a time (their temporaries are per
    event), which gives each customer the same values as a pass over everyone.
    """
    cal = target2()
    deb = events.debits
    keep = first_attempts(events) & (deb["cust"] >= 0) & (deb["result"] != RESULT_CODES["reversed"])
    if until is not None:
        keep &= deb["day"] < until
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return DebitRows(
            np.zeros((0, len(FEATURE_NAMES))),
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )
    months = month_of(deb["day"][idx])
    order = np.argsort(months, kind="stable")
    idx, months = idx[order], months[order]
    first_day = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    cust = deb["cust"][idx]
    X = np.empty((len(idx), len(FEATURE_NAMES)))
    for lo, hi, part in customer_partitions(events, partition_customers):
        in_part = np.flatnonzero((cust >= lo) & (cust < hi))
        for m in np.unique(months[in_part]):
            rows = in_part[months[in_part] == m]
            as_of = int(first_day[rows[0]])
            timing = detect_income_timing(part, as_of, cal)
            history = debit_history(part, as_of)
            days, amounts = deb["day"][idx[rows]], deb["amount_cents"][idx[rows]]
            X[rows] = debit_rows(timing, history, cust[rows] - lo, days, amounts, cal)
    y = (deb["result"][idx] == RESULT_CODES["failed"]).astype(np.float64)
    return DebitRows(X, y, first_day, cust.astype(np.int64))


def _enough(part: DebitRows) -> bool:
    pos = int(part.y.sum())
    return len(part) >= MIN_ROWS and pos >= MIN_POSITIVES and len(part) - pos >= MIN_POSITIVES


def fit_debit_failure(
    train: DebitRows, calib: DebitRows, params: dict[str, Any] | None = None
) -> DebitFailureModel:
    """LightGBM (monotone) + Platt scaling; the prior model when data are too thin."""
    prior = float(np.concatenate([train.y, calib.y]).mean()) if len(train) + len(calib) else 0.1
    if not (_enough(train) and _enough(calib)):
        return DebitFailureModel(
            kind="prior",
            prior=prior,
            metadata={
                "reason": "too few debit attempts to learn from",
                "rows": len(train) + len(calib),
            },
        )
    p = {**PARAMS, **(params or {})}
    p["monotone_constraints"] = [MONOTONE.get(n, 0) for n in FEATURE_NAMES]
    dtrain = lgb.Dataset(train.X, train.y, feature_name=list(FEATURE_NAMES), free_raw_data=False)
    dstop = lgb.Dataset(calib.X, calib.y, reference=dtrain)
    booster = lgb.train(
        p,
        dtrain,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[dstop],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    from training.train import fit_platt  # local: training.train imports the component registry

    raw = booster.predict(calib.X, num_threads=p.get("num_threads", 1))
    return DebitFailureModel(
        kind="lightgbm",
        prior=prior,
        calibrator=fit_platt(raw, calib.y),
        booster=booster,
        metadata={
            "best_iteration": booster.best_iteration,
            "rows": {"train": len(train), "calibration": len(calib)},
        },
    )


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if len(y) == 0 or len(np.unique(y)) < 2:
        return {"rows": float(len(y)), "base_rate": float(y.mean()) if len(y) else 0.0}
    m = binary_metrics(y, p)
    return {k: m[k] for k in ("roc_auc", "pr_auc", "brier", "ece", "base_rate", "rows")}


class DebitFailureTrainer:
    """The :class:`training.components.ComponentTrainer` for ``debit_failure``."""

    name = NAME

    def fit(self, context: TrainingContext) -> FittedComponent:
        dates = context.split.dates
        cal_start = to_day(date.fromisoformat(dates["calibration"][0]))
        val_start = to_day(date.fromisoformat(dates["validation"][0]))
        pre = getattr(context, "precomputed", None)
        rows = pre.debit_rows if pre is not None else build_debit_rows(context.events)
        train = rows.subset(rows.as_of < cal_start)
        calib = rows.subset((rows.as_of >= cal_start) & (rows.as_of < val_start))
        valid = rows.subset(rows.as_of >= val_start)
        threads = {"num_threads": context.params.get("num_threads", PARAMS["num_threads"])}
        model = fit_debit_failure(train, calib, threads)
        p_val = model.predict_proba(valid.X) if len(valid) else np.zeros(0)
        metrics = _metrics(valid.y, p_val)
        metrics["informative"] = float(model.informative)
        model.metadata["validation"] = metrics
        model.metadata["split_dates"] = {
            "calibration_from": dates["calibration"][0],
            "validation_from": dates["validation"][0],
        }

        def compare(champion: Any | None) -> list[tuple[bool, str]]:
            return compare_components(model, champion, valid)

        return FittedComponent(NAME, model, metrics, compare)


def compare_components(
    candidate: DebitFailureModel, champion: Any | None, valid: DebitRows
) -> list[tuple[bool, str]]:
    """Promotion checks: absolute floors, then not worse than the champion's component."""
    if not candidate.informative:
        if champion is not None and getattr(champion, "informative", False):
            return [
                (
                    False,
                    "candidate is the prior model (too little data) but the champion's learned one",
                )
            ]
        return [(True, "prior model (too little data): keeps every current debit day")]
    if len(valid) == 0 or len(np.unique(valid.y)) < 2:
        return [(False, "no validation debits with both outcomes: cannot check the model")]
    cand = _metrics(valid.y, candidate.predict_proba(valid.X))
    out = [
        (cand["roc_auc"] >= MIN_ROC_AUC, f"ROC AUC {cand['roc_auc']:.4f} vs floor {MIN_ROC_AUC}"),
        (cand["ece"] <= MAX_ECE, f"ECE {cand['ece']:.4f} vs limit {MAX_ECE}"),
    ]
    if champion is None:
        return out
    if not getattr(champion, "informative", False):
        out.append((True, "champion's component is the prior model; the learned one replaces it"))
        return out
    try:
        champ = _metrics(valid.y, champion.predict_proba(valid.X))
    except ValueError as exc:
        out.append((False, f"champion's component cannot score these rows ({exc})"))
        return out
    ok_auc = cand["roc_auc"] >= champ["roc_auc"] - ROC_AUC_TOLERANCE
    ok_brier = cand["brier"] <= champ["brier"] + BRIER_TOLERANCE
    out.append(
        (
            ok_auc,
            f"ROC AUC {cand['roc_auc']:.4f} {'not worse than' if ok_auc else 'worse than'} "
            f"champion {champ['roc_auc']:.4f} (tolerance {ROC_AUC_TOLERANCE})",
        )
    )
    out.append(
        (
            ok_brier,
            f"Brier {cand['brier']:.4f} {'not worse than' if ok_brier else 'worse than'} "
            f"champion {champ['brier']:.4f} (tolerance {BRIER_TOLERANCE})",
        )
    )
    return out

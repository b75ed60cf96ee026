"""Design probe for issue 21's leak: in a closed-loop world, does the decline memory say
something about an approved order's outcome that the model's probability does not?

Run from the repository root: ``PYTHONPATH=. python docs/experiments/bnpl-leak-probe.py
10000`` (customers; figures in bnpl-issue21.md). A one-off script: it prints.
"""

# ruff: noqa: T201

import json
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold

from training.simulation import SimulationConfig, build_population
from training.studies.bnpl_eval.policies import TijdigBnplPolicy
from training.studies.bnpl_eval.run import simulate_orders, train_bundle

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
t0 = time.perf_counter()
bundle = train_bundle(N, 24, 101)
print("trained", round(time.perf_counter() - t0), flush=True)
policy = replace(
    bundle.bnpl_policy.with_cutoff(0.3),
    arrears_grace_days=None,
    sticky_codes=(),
    sticky_days=0,
    after_decline_cutoff_factor=1.0,
)
config = SimulationConfig(n_customers=N, months=24, seed=7)
start = pd.Timestamp(config.period()[0]) + pd.DateOffset(months=6)
tij = TijdigBnplPolicy(bundle.predict_proba, policy, start=start.date(), keep_inputs=True)
result, orders = simulate_orders(config, tij, "tijdig", build_population(config))
print("loop", round(time.perf_counter() - t0), flush=True)
dec = orders[orders["tijdig"].astype(bool)].reset_index(drop=True)
mem = pd.DataFrame([m for part in tij.inputs for m in part["memory"]])
assert len(mem) == len(dec)
d = pd.concat([dec, mem], axis=1)
a = d[d["approved"]].reset_index(drop=True)
a = a[a["matured"]].reset_index(drop=True)
y = a["collection"].to_numpy(int)
lp = np.log(
    np.clip(a["probability"], 1e-6, 1 - 1e-6) / (1 - np.clip(a["probability"], 1e-6, 1 - 1e-6))
)
declined_before = (a["declines_90d"] > 0) | (a["situation_declines_365d"] > 0)
print(
    json.dumps(
        {
            "approved_matured": len(a),
            "at_agency": int(y.sum()),
            "declined_before_share": float(declined_before.mean()),
            "rate_declined_before": float(y[declined_before].mean()),
            "mean_p_declined_before": float(a["probability"][declined_before].mean()),
            "rate_other": float(y[~declined_before].mean()),
            "mean_p_other": float(a["probability"][~declined_before].mean()),
        }
    )
)
cols = [
    "declines_30d",
    "declines_90d",
    "situation_declines_365d",
    "risk_declines_90d",
    "approved_recent_eur",
    "approved_90d",
]
M = np.column_stack([lp] + [np.log1p(a[c].to_numpy(float)) for c in cols])
since = a["days_since_situation_decline"].to_numpy(float)
M = np.column_stack([M, np.isfinite(since), np.where(np.isfinite(since), since / 90, 0)])
groups = a["customer_id"].to_numpy()
for name, X in (("logit(p) only", M[:, :1]), ("logit(p) + memory", M)):
    pred = np.zeros(len(y))
    for tr, te in GroupKFold(5).split(X, y, groups):
        pred[te] = (
            LogisticRegression(C=1.0, max_iter=1000).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
        )
    print(
        name,
        "log loss",
        round(log_loss(y, pred), 5),
        "AUC",
        round(roc_auc_score(y, pred), 4),
        "mean pred declined-before",
        round(pred[declined_before].mean(), 4),
    )
print("total", round(time.perf_counter() - t0))

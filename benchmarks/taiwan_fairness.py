"""Fairness on real data: the Taiwan credit-card clients, by age band, and by SEX as a
diagnostic (issue 23, item 3).

The model is the product's: *events only* (no SEX, MARRIAGE or EDUCATION anywhere; see
:mod:`benchmarks.taiwan`), scored out of fold in the same stratified 5-fold protocol, so
every one of the 30,000 clients has a probability from a model that never saw them.
Those probabilities go through the same :func:`training.monitoring.fairness.fairness_table`
the promotion gate uses (fairlearn's ``MetricFrame``), at the default policy's cut-offs:

* by **age band** (from the file's AGE, which the importer turns into a birth year),
  checked against the gate's bounds (``models/config/fairness_policy.json``);
* by **SEX** (1 = male, 2 = female in the UCI file), which the model never sees: flag
  rates, calibration, TPR and FPR per sex. A diagnostic, not a gate: SEX is kept out of
  the event contract, and this says whether leaving it out kept the model fair to both.

Run: ``python -m benchmarks.taiwan_fairness`` (≈ 1 min on 2 cores), or
``python -m benchmarks.run --only taiwan_fairness``; writes
``benchmarks/results/taiwan_fairness.json`` (with the Markdown tables).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.taiwan import CONFIG, DATA, cross_validate, event_features
from features.events import to_day
from models.bnpl import BnplPolicy
from models.policy import RiskPolicy
from training.importers import MappingConfig
from training.monitoring.fairness import (
    FairnessTable,
    age_bands,
    fairness_table,
    fairness_violations,
)
from training.monitoring.policy import fairness_policy

#: The UCI file's coding of SEX.
SEX_NAMES = {1: "male", 2: "female"}


def groups_of(source: pd.DataFrame, config: MappingConfig) -> pd.DataFrame:
    """Age band at the label date (as the importer derives the birth year) and SEX, per row
    of ``source``."""
    birth_year = config.age_reference_year - source["AGE"].to_numpy(np.float64)
    as_of = np.full(len(source), to_day(pd.Timestamp(config.label_as_of).date()))
    sex = source["SEX"].map(SEX_NAMES).fillna("other").to_numpy(object)
    return pd.DataFrame({"age_band": age_bands(birth_year.round(), as_of), "sex": sex})


def run(quick: bool = False) -> dict[str, Any]:
    """The result document (``results/taiwan_fairness.json``)."""
    started = time.perf_counter()
    source = pd.read_csv(DATA)
    config = MappingConfig.from_file(CONFIG)
    X, y, names, _, _ = event_features(source, config, allow_sensitive=False, validate=not quick)
    p = np.full(len(y), np.nan)
    cv = cross_validate(X, y, names, out_of_fold=p)
    groups = groups_of(source, config)
    flag_at = RiskPolicy.default().early_warning_threshold
    decline_at = BnplPolicy.default().risk_cutoff
    by_age = fairness_table(y, p, groups[["age_band"]], flag_at, decline_at)
    by_sex = fairness_table(y, p, groups[["sex"]], flag_at, decline_at)
    policy = fairness_policy()
    return {
        "name": "taiwan_fairness",
        "dataset": {"path": str(DATA.name), "rows": len(y), "default_rate": float(y.mean())},
        "model": "events only (no SEX/MARRIAGE/EDUCATION), out-of-fold probabilities of "
        "StratifiedKFold(5, shuffle=True, random_state=0), as benchmarks.taiwan",
        "roc_auc": cv["roc_auc"],
        "flag_threshold": flag_at,
        "decline_threshold": decline_at,
        "by_age": by_age.to_dict(),
        "by_sex": by_sex.to_dict(),
        "gate_policy": policy.version,
        "gate_violations_by_age": [v.reason() for v in fairness_violations(by_age, policy)],
        "sex_gaps": sex_gaps(by_sex),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def sex_gaps(table: FairnessTable) -> dict[str, float]:
    """Female minus male: flag rate, TPR, FPR, ECE, and flags per observed case as a ratio."""
    groups = table.groups["sex"]
    f, m = groups["female"], groups["male"]
    return {
        "flag_rate": f["flag_rate"] - m["flag_rate"],
        "tpr": f["tpr"] - m["tpr"],
        "fpr": f["fpr"] - m["fpr"],
        "ece": f["ece"] - m["ece"],
        "flags_per_case_ratio": (f["flag_rate"] / f["base_rate"])
        / (m["flag_rate"] / m["base_rate"]),
    }


def results_section(r: dict[str, Any]) -> list[str]:
    """The RESULTS.md section."""
    from benchmarks.common import measured_on

    gaps = r["sex_gaps"]
    violations = r["gate_violations_by_age"]
    return [
        "## Real data: fairness of the Taiwan model by age band and by SEX (issue 23)",
        "",
        f"Measured {r['date']}{measured_on(r)}. {r['model']} (ROC AUC {r['roc_auc']:.4f}); "
        f"{r['dataset']['rows']:,} clients, default rate {r['dataset']['default_rate']:.1%}. "
        "Cut-offs of the default policies; groups with fairlearn's `MetricFrame` "
        "(`training/monitoring/fairness.py`). Command: `python -m benchmarks.taiwan_fairness`.",
        "",
        "### By age band (the gate's attribute)",
        "",
        FairnessTable.from_dict(r["by_age"]).render().rstrip(),
        "",
        f"Gate bounds ({r['gate_policy']}): "
        + ("; ".join(violations) if violations else "none broken")
        + ".",
        "",
        "### By SEX: a diagnostic (SEX is never an input)",
        "",
        FairnessTable.from_dict(r["by_sex"]).render().rstrip(),
        "",
        f"Female minus male: flag rate {gaps['flag_rate']:+.1%}, TPR {gaps['tpr']:+.1%}, "
        f"FPR {gaps['fpr']:+.1%}, ECE {gaps['ece']:+.4f}; flags per observed default "
        f"female/male {gaps['flags_per_case_ratio']:.2f}.",
        "",
    ]


if __name__ == "__main__":
    import json

    from benchmarks.common import write_result

    result = run()
    path = write_result(result)
    print("\n".join(results_section({**result, "date": "now"})))
    print(json.dumps(result["sex_gaps"], indent=1), f"\nwrote {path}")

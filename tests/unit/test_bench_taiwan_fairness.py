"""The Taiwan fairness benchmark's groups and its SEX gaps (no data file needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.taiwan_fairness import groups_of, results_section, sex_gaps
from training.importers import MappingConfig
from training.monitoring.fairness import fairness_table


def _config():
    from benchmarks.taiwan import CONFIG

    return MappingConfig.from_file(CONFIG)


def test_groups_follow_the_importers_age_and_the_uci_sex_coding():
    source = pd.DataFrame({"AGE": [21, 24, 25, 39, 40, 64, 65, 79], "SEX": [1, 2] * 4})
    groups = groups_of(source, _config())
    assert groups["age_band"].tolist() == [
        "under 25",
        "under 25",
        "25-39",
        "25-39",
        "40-64",
        "40-64",
        "65 and over",
        "65 and over",
    ]
    assert groups["sex"].tolist() == ["male", "female"] * 4


def test_sex_gaps_are_female_minus_male_and_render():
    rng = np.random.default_rng(0)
    sex = np.array(["male", "female"] * 500, dtype=object)
    y = (rng.random(1000) < 0.3).astype(float)
    p = np.clip(0.3 + 0.4 * (y - 0.3) + np.where(sex == "female", 0.1, 0.0), 0, 1)
    table = fairness_table(y, p, pd.DataFrame({"sex": sex}), 0.4, 0.5)
    gaps = sex_gaps(table)
    f, m = table.groups["sex"]["female"], table.groups["sex"]["male"]
    assert gaps["flag_rate"] == pytest.approx(f["flag_rate"] - m["flag_rate"])
    assert gaps["flag_rate"] > 0  # the women's scores were lifted
    by_age = fairness_table(y, p, pd.DataFrame({"age_band": ["25-39"] * 1000}), 0.4, 0.5)
    section = "\n".join(
        results_section(
            {
                "date": "2026-12-07",
                "model": "events only",
                "roc_auc": 0.78,
                "dataset": {"rows": 1000, "default_rate": float(y.mean())},
                "by_age": by_age.to_dict(),
                "by_sex": table.to_dict(),
                "gate_policy": "fairness-x",
                "gate_violations_by_age": [],
                "sex_gaps": gaps,
            }
        )
    )
    assert "| female |" in section and "none broken" in section

"""Write the small "own data" example: a bureau-style monthly status history, an
application file and labels (``python docs/examples/own-data/make_example.py``).

* ``records.csv`` — one row per account and month (``account, month, status``), status
  only, in the ``dpd_buckets`` vocabulary (``C`` paid off, ``X`` no balance, ``0``-``5``
  days-past-due buckets); each account starts in its own month.
* ``attributes.csv`` — one row per account: application date, birth date, declared monthly
  income, household, employment (all imported into ``customer_attributes``), and
  ``gender`` (special-category: never read without ``--allow-sensitive``, never stored).
* ``labels.csv`` + ``labels.json`` — per account and first of the month while it is
  active: 1 when it is 30+ days past due at a month end within the next 3 months.

Seeded, so the files are the same on every run. The history is drawn from a hidden risk per
account that also moves income and employment a little: enough signal for a model to find.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ACCOUNTS = 160
FIRST, LAST = pd.Period("2023-01", "M"), pd.Period("2024-12", "M")
HORIZON_MONTHS = 3


def history(rng: np.random.Generator, risk: float, months: int) -> list[str]:
    """Month-end statuses: a bucket that worsens with probability ``risk`` and cures."""
    out, bucket = [], -1  # -1: nothing past due
    for _ in range(months):
        if bucket < 0:
            bucket = 0 if rng.random() < risk else -1
        elif rng.random() < 0.45:  # cured: paid everything
            bucket = -1
        else:
            bucket = min(bucket + 1, 5) if rng.random() < 0.6 + risk else bucket
        if bucket >= 0:
            out.append(str(bucket))
        else:
            out.append("X" if rng.random() < 0.08 else "C")
    return out


def main() -> None:
    rng = np.random.default_rng(2026)
    n_months = LAST.ordinal - FIRST.ordinal + 1
    records, attributes, labels = [], [], []
    for i in range(ACCOUNTS):
        account = f"A{i + 1:04d}"
        risk = float(rng.beta(1.2, 8.0))
        start = int(rng.integers(0, n_months - 8))
        statuses = history(rng, risk, n_months - start)
        first = FIRST + start
        for k, status in enumerate(statuses):
            records.append((account, str(first + k), status))
        applied = first.to_timestamp() - pd.Timedelta(days=int(rng.integers(1, 40)))
        age = int(np.clip(rng.normal(42 - 25 * risk, 11), 18, 85))
        attributes.append(
            {
                "account": account,
                "application_date": applied.date().isoformat(),
                "birth_date": (applied - pd.Timedelta(days=int(365.25 * age) + 40))
                .date()
                .isoformat(),
                "net_income_month": int(round(rng.lognormal(np.log(2600) - 1.5 * risk, 0.35), -1)),
                "household": rng.choice(
                    ["single", "couple", "couple_with_children", "single_parent"]
                ),
                "employment": rng.choice(
                    ["employed", "self_employed", "unemployed"],
                    p=[0.8 - risk, 0.15, 0.05 + risk],
                ),
                "gender": rng.choice(["F", "M"]),
            }
        )
        behind = [s not in ("C", "X", "0") for s in statuses]  # 30+ days past due
        for k in range(1, len(statuses) - HORIZON_MONTHS + 1):
            labels.append(
                (
                    account,
                    (first + k).to_timestamp().date().isoformat(),
                    int(any(behind[k : k + HORIZON_MONTHS])),
                )
            )
    pd.DataFrame(records, columns=["account", "month", "status"]).to_csv(
        HERE / "records.csv", index=False
    )
    pd.DataFrame(attributes).to_csv(HERE / "attributes.csv", index=False)
    pd.DataFrame(labels, columns=["customer_id", "as_of", "label"]).assign(
        customer_id=lambda d: "EX-" + d["customer_id"]
    ).to_csv(HERE / "labels.csv", index=False)
    (HERE / "labels.json").write_text(
        json.dumps(
            {
                "horizon_days": 92,
                "definition": "30+ days past due at a month end within the 3 months after as_of",
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()

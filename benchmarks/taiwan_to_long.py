"""The UCI Taiwan credit-card clients as a bureau would export them: month-by-month records.

Writes ``records.csv`` (``ID, month, status, statement, paid``: one row per account and
month, April-September 2005) and ``attributes.csv`` (``ID, application_date, AGE,
LIMIT_BAL, MARRIAGE, SEX, EDUCATION, default``) from the wide file, so the long-format
import (``training/importers/taiwan_long.json``) can be checked against the wide one
(``taiwan.json``): the same events, the same cross-validated figure.

Run: ``python -m benchmarks.taiwan_to_long OUT_DIR [WIDE_CSV]`` then::

    tijdig import OUT_DIR/records.csv --attributes OUT_DIR/attributes.csv \\
        --mapping training/importers/taiwan_long.json --out OUT_DIR/events
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from benchmarks.taiwan import DATA

#: (month, statement, paid, status) columns of the wide file, oldest month first
MONTHS = [
    ("2005-04", "BILL_AMT6", "PAY_AMT6", "PAY_6"),
    ("2005-05", "BILL_AMT5", "PAY_AMT5", "PAY_5"),
    ("2005-06", "BILL_AMT4", "PAY_AMT4", "PAY_4"),
    ("2005-07", "BILL_AMT3", "PAY_AMT3", "PAY_3"),
    ("2005-08", "BILL_AMT2", "PAY_AMT2", "PAY_2"),
    ("2005-09", "BILL_AMT1", "PAY_AMT1", "PAY_0"),
]


def to_long(wide: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records, attributes) of the wide Taiwan table, records sorted by account and month."""
    parts = [
        pd.DataFrame(
            {
                "ID": wide["ID"],
                "month": month,
                "status": wide[status],
                "statement": wide[statement],
                "paid": wide[paid],
            }
        )
        for month, statement, paid, status in MONTHS
    ]
    records = pd.concat(parts, ignore_index=True)
    records = records.sort_values(["ID", "month"], kind="stable")
    attributes = wide[["ID", "AGE", "LIMIT_BAL", "MARRIAGE", "SEX", "EDUCATION"]].copy()
    attributes.insert(1, "application_date", "2005-04-01")
    attributes["default"] = wide["default payment next month"]
    return records.reset_index(drop=True), attributes


def main(out: Path, source: Path = DATA) -> None:
    out.mkdir(parents=True, exist_ok=True)
    records, attributes = to_long(pd.read_csv(source))
    records.to_csv(out / "records.csv", index=False)
    attributes.to_csv(out / "attributes.csv", index=False)
    print(f"{len(records):,} records, {len(attributes):,} attribute rows → {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:3]))

"""Batch scoring: every customer in the event store → a Parquet file of scores.

``score_batch`` walks the store in customer partitions (each partition is an
independent unit of work, so this runs unchanged per partition on Dask). Per partition
it reads the customers' materialised serving rows (:mod:`models.serving`) and computes
the rest from their events with the one feature definition, predicts with all cores, and
gives SHAP reasons **only for flagged customers** (``pred_contrib`` costs far more than
predict; STYLE.md) — stored contributions where the row has them. Output columns: ``customer_id``, ``as_of``,
``probability``, ``band``, ``early_warning``, ``reason_1..k`` (reason codes, empty for
unflagged customers), ``model_version``, ``policy_version``.

Timings per step are returned so ``benchmarks/batch.py`` can say where the time goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.store import EventStore
from models.bundle import Bundle
from models.reasons import top_reason_codes
from models.serving import ServingRows


@dataclass
class BatchReport:
    customers: int = 0
    flagged: int = 0
    materialised: int = 0  # customers served from a valid stored row
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds


def score_batch(
    store: EventStore,
    bundle: Bundle,
    as_of: date,
    out: Path,
    *,
    partition_size: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
    serving_rows: bool = True,
) -> BatchReport:
    """Score every stored customer at ``as_of``; write ``out`` (Parquet). Returns timings.

    With ``serving_rows`` (default) valid materialised rows are read instead of the
    histories, and the rows computed for the others are stored (so the nightly batch also
    warms the real-time path); without, every customer is computed from the events.
    """
    if partition_size < 1:
        raise ValueError(f"partition_size must be >= 1; got {partition_size}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    report = BatchReport()
    serving = ServingRows(store, enabled=serving_rows)
    k = bundle.policy.top_reasons
    threshold = bundle.policy.early_warning_threshold
    edges, labels = _band_table(bundle)
    total = store.count("customers")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    try:
        for ids in store.iter_customer_partitions(partition_size):
            state = serving.partition_state(
                bundle, ids, as_of, timings=report.seconds, contiguous=True
            )
            p = state.probability
            t3 = time.perf_counter()
            flagged = np.flatnonzero(p >= threshold)
            reasons = np.full((len(ids), k), "", dtype=object)
            if flagged.size:
                contrib = state.contributions_of(bundle, flagged.tolist())
                reasons[flagged] = top_reason_codes(contrib[:, :-1], bundle.feature_names, k)
            t4 = time.perf_counter()
            band = labels[np.searchsorted(edges, p, side="right")]
            table = pa.table(
                {
                    "customer_id": pa.array(ids, pa.string()),
                    "as_of": pa.array(np.full(len(ids), np.datetime64(as_of, "D"))),
                    "probability": pa.array(p),
                    "band": pa.array(band.tolist(), pa.string()),
                    "early_warning": pa.array(p >= threshold),
                    **{
                        f"reason_{j + 1}": pa.array(reasons[:, j].tolist(), pa.string())
                        for j in range(k)
                    },
                    "model_version": pa.array([bundle.version] * len(ids), pa.string()),
                    "policy_version": pa.array([bundle.policy.version] * len(ids), pa.string()),
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            t5 = time.perf_counter()
            report.add("reasons (flagged only)", t4 - t3)
            report.add("parquet write", t5 - t4)
            report.customers += len(ids)
            report.materialised += int(state.materialised.sum())
            report.flagged += int(flagged.size)
            if progress:
                progress(report.customers, total)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # empty store: still write an empty, typed file
        pd.DataFrame(
            columns=["customer_id", "as_of", "probability", "band", "early_warning"]
        ).to_parquet(out)
    return report


def _band_table(bundle: Bundle) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``policy.band``: upper edges and labels, probed from the policy itself."""
    grid = np.linspace(0.0, 1.0, 10_001)
    names = np.array([bundle.policy.band(float(x)).value for x in grid], dtype=object)
    change = np.flatnonzero(names[1:] != names[:-1]) + 1
    edges = grid[change]
    labels = np.concatenate([[names[0]], names[change]])
    return edges, labels

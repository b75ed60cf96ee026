"""Training and ingest scaling: simulate, ingest and train at growing sizes.

Each size runs in a fresh subprocess (so peak memory is that size's own) and reports wall
times, events ingested per second and the out-of-time metrics of issue 2 (model, logistic
regression, second-reminder rule), so quality regressions on the simulator show per run.
The growth exponent is the slope of log(time) against log(customers): 1.0 is linear.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

_CHILD = """
import json, sys, time
from pathlib import Path
from benchmarks.online import prepare_world
from benchmarks.common import peak_rss_mb
started = time.perf_counter()
out = prepare_world(Path(sys.argv[1]), customers=int(sys.argv[2]))
out["peak_rss_mb"] = peak_rss_mb()
out["metrics"] = {k: v for k, v in out["metrics"].items() if isinstance(v, dict) and "roc_auc" in v}
print("RESULT" + json.dumps(out, default=float))
"""


def run(
    quick: bool = False,
    sizes: tuple[int, ...] = (10_000, 100_000),
    timeout_s: float = 3600,
    shared_world: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if quick:
        sizes = (2_000,)
    rows: list[dict[str, Any]] = []
    quality: dict[str, Any] = {}
    notes: list[str] = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="tijdig-bench-scale-") as tmp:
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(Path(tmp) / "w"), str(n)],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                notes.append(f"{n:,} customers: stopped after {timeout_s:.0f} s")
                continue
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
            if line is None:
                notes.append(f"{n:,} customers failed: {proc.stderr[-400:]}")
                continue
            r = json.loads(line[6:])
        rows.append(
            {
                "customers": n,
                "simulate_s": r["simulate_s"],
                "ingest_s": r["ingest_s"],
                "events": r["events"],
                "events_per_s": r["events"] / r["ingest_s"],
                "train_s": r["train_s"],
                "peak_rss_mb": r["peak_rss_mb"],
            }
        )
        quality[f"{n:,}"] = r["metrics"]
    if shared_world and shared_world.get("customers") not in {r["customers"] for r in rows}:
        w = shared_world
        rows.append(
            {
                "customers": w["customers"],
                "simulate_s": w["simulate_s"],
                "ingest_s": w["ingest_s"],
                "events": w["events"],
                "events_per_s": w["events"] / w["ingest_s"],
                "train_s": w["train_s"],
                "peak_rss_mb": w.get("peak_rss_mb"),
            }
        )
        quality[f"{w['customers']:,}"] = {
            k: v for k, v in w.get("metrics", {}).items() if isinstance(v, dict) and "roc_auc" in v
        }
        notes.append(
            f"{w['customers']:,} customers: the shared world of the online/batch benchmarks (same run)"
        )
    rows.sort(key=lambda r: r["customers"])
    growth = {}
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        for key in ("simulate_s", "ingest_s", "train_s"):
            growth[key.removesuffix("_s")] = math.log(b[key] / a[key]) / math.log(
                b["customers"] / a["customers"]
            )
    return {
        "name": "scaling",
        "setup": "24 simulated months per customer; each size in its own process; train = snapshots + LightGBM + "
        "calibration + baselines + components + MLflow logging (`run_training`).",
        "sizes": rows,
        "growth": growth,
        "quality": quality,
        "notes": notes,
    }

"""Shared benchmark plumbing: machine facts, repeat statistics, child processes and the
results files.

Every speed figure is reported beside a baseline measured in the same run (machines are
noisy, and this one is shared): :func:`repeat` gives the median and spread of repeated
timings; results land in ``benchmarks/results/<name>.json``, from which
:mod:`benchmarks.results_md` rebuilds ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
PACKAGES = (
    "numpy",
    "pandas",
    "lightgbm",
    "scikit-learn",
    "fastapi",
    "uvicorn",
    "httpx2",
    "pandera",
    "sqlalchemy",
)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load average, Python and package versions."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stats(values: list[float]) -> dict[str, float]:
    """Median, min, max and the interquartile range of repeated measurements."""
    vals = sorted(values)
    # "inclusive": the quartiles of these values themselves; the default ("exclusive")
    # extrapolates, so with 5 repeats its IQR was ~1.5 times the usual one
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) >= 2 else [vals[0]] * 3
    return {
        "median": vals[len(vals) // 2] if len(vals) % 2 else statistics.median(vals),
        "min": vals[0],
        "max": vals[-1],
        "iqr": q[2] - q[0],
        "n": len(vals),
    }


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return stats(times)


def peak_since_reset() -> float:
    """Peak resident memory (MB) since the previous call: ``VmHWM``, then reset it (a
    benchmark that runs after others in one process measures its own peak).

    Without a writable ``clear_refs`` (not Linux) the peak is the process's so far.
    """
    peak = peak_rss_mb()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB.

    ``VmHWM`` from /proc (fresh after exec, so a benchmark subprocess reports its own
    peak; ``ru_maxrss`` is carried over from the parent across fork + exec on Linux).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(code: str, *args: str, timeout_s: float | None = None) -> tuple[Any, str]:
    """Run ``code`` in a fresh interpreter at the project root; (its ``RESULT<json>`` line
    parsed, or None when it printed none; the tail of its stderr).

    A fresh process measures its own peak memory and gives all of it back when it ends.
    Raises :class:`subprocess.TimeoutExpired` after ``timeout_s``.
    """
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    return (None if line is None else json.loads(line[len("RESULT") :])), proc.stderr[-2000:]


def code_version() -> str | None:
    """The commit measured (``git rev-parse --short HEAD``), ``+dirty`` when tracked files
    differ from it; None outside a git checkout. Results carried over from another run
    then show which code they measured."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        # the run's own output files do not make the code dirty
        dirty = git(
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!benchmarks/results",
            ":!benchmarks/RESULTS.md",
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_result(result: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json`` with the machine and the date added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "date": now_iso(),
        "machine": machine(),
        "command": " ".join(sys.argv),
        "commit": code_version(),
        **result,
    }
    path = RESULTS_DIR / f"{result['name']}.json"
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path


def load_results() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(RESULTS_DIR.glob("[!_]*.json")):
        out[path.stem] = json.loads(path.read_text())
    return out


#: Training stages only a world with the simulator's hidden truth has (``run_training``'s
#: per-stage seconds; a chunk-built store fits no oracles).
ORACLE_STAGES = ("oracle", "oracle_observable")


def measured_on(result: dict[str, Any]) -> str:
    """``" on <cpu>, code at commit <commit>"`` for a result: the sections of one RESULTS.md
    may come from runs on different machines (a VM can move between hardware from one run
    to the next) and different code."""
    cpu = result.get("machine", {}).get("cpu")
    commit = result.get("commit")
    return (f" on {cpu}" if cpu else "") + (f", code at commit {commit}" if commit else "")

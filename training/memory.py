"""Peak memory of a training run: this process, and the process tree with Dask workers.

Two figures, both MB:

- ``process``: the peak resident memory (``VmHWM``) of this process since the recorder
  started (the high-water mark is reset at the start when Linux allows it, so a run
  after others in one process measures its own).
- ``tree``: the largest sum of resident memory over this process and all its
  descendants (a ``LocalCluster``'s workers and nanny processes), sampled every
  :data:`SAMPLE_S` seconds by a thread; a peak shorter than a sample can be missed, so
  it is never below ``process`` (taken as the floor).

Workers of a remote scheduler are not descendants: their own lifetime peaks are asked
for at the end (:func:`training.dask_training.worker_peaks_mb`) and reported apart.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from types import TracebackType

import psutil

SAMPLE_S = 0.2


def _hwm_mb() -> float | None:
    """``VmHWM`` of this process, MB (None off Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _tree_rss_mb(root: psutil.Process) -> float:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.process_mb``, ``peak.tree_mb``."""

    def __init__(self, sample_s: float = SAMPLE_S):
        self.sample_s = sample_s
        self.process_mb = 0.0
        self.tree_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._root = psutil.Process()

    def __enter__(self) -> PeakMemory:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.tree_mb = max(self.tree_mb, _tree_rss_mb(self._root))
            self._stop.wait(self.sample_s)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop measuring (the figures then stay as they are); ``with`` exit calls it."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        hwm = _hwm_mb()
        own = psutil.Process().memory_info().rss / 2**20
        self.process_mb = round(max(hwm if hwm is not None else own, own), 1)
        self.tree_mb = round(max(self.tree_mb, self.process_mb), 1)

    def as_metrics(self) -> dict[str, float]:
        """``{"peak_rss_mb": ..., "peak_tree_rss_mb": ...}``."""
        return {"peak_rss_mb": self.process_mb, "peak_tree_rss_mb": self.tree_mb}

"""Run the service under uvicorn: ``serve(settings, host, port, workers)``.

Each worker imports ``service.app:create_app`` and builds its own app (``factory=True``),
so the LightGBM booster is loaded in the worker's lifespan — never in this parent before
the fork (OpenMP state does not survive a fork: hangs). ``OMP_NUM_THREADS=1`` is set
before any worker starts: single-row predictions gain nothing from threads and the
workers share the cores. The settings travel to the workers as ``TIJDIG_*`` variables.
With more than one worker, Prometheus runs in multiprocess mode in a fresh folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from service.settings import ServiceSettings

APP_FACTORY = "service.app:create_app"


def serve(
    settings: ServiceSettings | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """Serve until interrupted. Blocks."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    settings = settings or ServiceSettings()
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.update(settings.to_env())
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = Path(settings.data_dir) / "prometheus"
        shutil.rmtree(folder, ignore_errors=True)  # stale samples of an earlier run
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())

    import uvicorn  # late: nothing heavy is imported in the parent

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # the app logs one JSON line per request itself
        log_level="info",
    )

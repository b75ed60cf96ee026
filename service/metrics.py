"""Prometheus metrics: requests by route and status, latency, scores by band, model version.

With several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (``service.server.serve``
does): every worker writes its samples to files there and ``/metrics`` aggregates them
with a :class:`MultiProcessCollector`. Without it each app gets its own registry (tests
build many apps in one process).
"""

from __future__ import annotations

import contextlib
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's metrics, registered in one registry (or the multiprocess files)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # in multiprocess mode metrics must not be registered in a collecting registry
        self.registry: CollectorRegistry | None = None if self.multiprocess else CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "tijdig_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "tijdig_http_request_duration_seconds",
            "HTTP request duration, seconds",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.scores = Counter(
            "tijdig_risk_scores", "risk scores answered, by band", ["band"], registry=reg
        )
        self.decisions_logged = Counter(
            "tijdig_decisions_logged", "decisions committed to the decision log", registry=reg
        )
        self.shadow_scored = Counter(
            "tijdig_shadow_scored",
            "risk decisions the shadow challenger scored and logged beside the champion's",
            registry=reg,
        )
        self.shadow_dropped = Counter(
            "tijdig_shadow_dropped",
            "shadowed requests dropped because the challenger's queue was full",
            registry=reg,
        )
        self.shadow_failures = Counter(
            "tijdig_shadow_failures",
            "shadow rows not logged, or the challenger switched off after an error",
            registry=reg,
        )
        self.model_info = Gauge(
            "tijdig_model_info",
            "the model bundle being served (value 1)",
            ["model_version", "policy_version"],
            multiprocess_mode="liveall",
            registry=reg,
        )
        self._current: tuple[str, str] | None = None

    def set_model(self, model_version: str | None, policy_version: str | None) -> None:
        """Point the info gauge at the served bundle (drop the previous one)."""
        if self._current is not None:
            if self.multiprocess:
                self.model_info.labels(*self._current).set(0)
            else:
                with contextlib.suppress(KeyError):
                    self.model_info.remove(*self._current)
        self._current = None
        if model_version is not None:
            self._current = (model_version, policy_version or "")
            self.model_info.labels(*self._current).set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        assert self.registry is not None
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

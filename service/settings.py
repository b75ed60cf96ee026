"""Settings of the HTTP service: one typed class, read from ``TIJDIG_*`` environment variables.

Defaults work on a laptop: everything lives under ``.tijdig/`` (SQLite event store, MLflow
backend, decision log) and one development API key holds every scope. In production the
development key is refused, so a forgotten ``TIJDIG_API_KEYS`` fails at start, not later.

``TIJDIG_API_KEYS`` is JSON. Every key belongs to a client (a tenant) and holds scopes:
``{"<key>": {"client": "shop-a", "scopes": ["checkout"]}, ...}``; the older form
``{"<key>": ["collection", "ingest"]}`` still works and means the client ``"default"``.
"""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Scope(StrEnum):
    """What an API key may do; one scope per consumer (ARCHITECTURE.md, service surface)."""

    CHECKOUT = "checkout"
    COLLECTION = "collection"
    INGEST = "ingest"
    ADMIN = "admin"
    REVIEW = "review"  # human reviewers of automated decisions (CCD2, GDPR art. 22)
    AUDITOR = "auditor"  # reads every client's decisions; each read is logged
    METRICS = "metrics"  # a Prometheus scraper, where /metrics is not public


DEV_API_KEY = "dev-key"
#: The body limit of POST /v1/events without an ingest pool (in production, the most).
DEFAULT_MAX_INGEST_BYTES = 16 * 1024 * 1024
DEFAULT_CLIENT = "default"


class ApiKey(BaseModel):
    """What one API key may do, and for which client (tenant) it acts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str = Field(default=DEFAULT_CLIENT, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    scopes: tuple[Scope, ...]


@lru_cache(maxsize=64)
def _default_client_grant(scopes: tuple[Scope, ...]) -> ApiKey:
    return ApiKey(scopes=scopes)


def grant_of(grant: ApiKey | list[Scope]) -> ApiKey:
    """A configured key's grant in its full form (a list of scopes: client "default")."""
    return grant if isinstance(grant, ApiKey) else _default_client_grant(tuple(grant))


def _dev_keys() -> dict[str, ApiKey | list[Scope]]:
    return {DEV_API_KEY: list(Scope)}


class ServiceSettings(BaseSettings):
    """Everything the service needs to start; one instance per process."""

    model_config = SettingsConfigDict(
        env_prefix="TIJDIG_", env_ignore_empty=True, extra="ignore", validate_default=True
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".tijdig")
    store_url: str = Field(
        default="", description="event store; default sqlite:///<data_dir>/events.db"
    )
    mlflow_tracking_uri: str = Field(
        default="", description="default sqlite:///<data_dir>/mlflow.db"
    )
    model_uri: str = Field(
        default="models:/tijdig-risk@champion",
        description="an MLflow model URI or a local bundle folder",
    )
    decision_log_url: str = Field(
        default="", description="default sqlite:///<data_dir>/decisions.db"
    )
    decision_log_retention_days: int = Field(default=183, ge=183, description="at least six months")
    decision_log_wait_for_commit: bool = Field(
        default=True,
        description="answer only after the decision is committed (group commit); "
        "False answers at once and the writer commits within milliseconds",
    )
    api_keys: dict[str, ApiKey | list[Scope]] = Field(
        default_factory=_dev_keys,
        description='API key -> {"client": ..., "scopes": [...]}, or a list of scopes '
        '(client "default"), JSON',
    )
    max_batch_customers: int = Field(default=1000, ge=1, le=100_000)
    max_ingest_rows: int = Field(default=50_000, ge=1)
    # A parsed batch takes ~10x its bytes where it is parsed: 16 MiB holds
    # max_ingest_rows of ordinary rows (~150 bytes each). Larger: with ingest_workers.
    max_ingest_bytes: int = Field(
        default=DEFAULT_MAX_INGEST_BYTES,
        ge=1024,
        description="POST /v1/events body, checked before it is parsed",
    )
    ingest_workers: int = Field(
        default=0,
        ge=0,
        le=32,
        description="processes per worker that parse, validate and store POST /v1/events "
        "batches (service.ingest_pool); 0 runs them in the worker's threadpool, where a "
        "large batch holds the interpreter that also serves scores",
    )
    ingest_worker_max_batches: int = Field(
        default=1,
        ge=1,
        description="batches an ingest process takes before it is replaced (the memory a "
        "large batch took goes back to the system)",
    )
    ingest_worker_nice: int = Field(
        default=10, ge=0, le=19, description="CPU niceness of the ingest processes"
    )
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="every other request body"
    )
    default_as_of: date | None = Field(default=None, description="None = today (Europe/Amsterdam)")
    serving_rows: bool = Field(
        default=True,
        description="read materialised serving rows (features, scores) where valid and store "
        "the ones computed on a miss; False always computes from the events",
    )

    bundle_parse_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="a bundle is parsed in a child process first (a malformed LightGBM "
        "file ends the process that parses it); longer than this and it is refused",
    )

    public_metrics: bool | None = Field(
        default=None,
        description="/metrics without an API key; None: open in development, in production "
        "only to a key with the metrics or admin scope",
    )
    public_docs: bool | None = Field(
        default=None,
        description="/docs, /redoc and /openapi.json; None: served in development, not in "
        "production",
    )

    shadow_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="share of risk-score requests also scored by the challenger, off the "
        "request path, its answer logged beside the champion's (service.shadow); 0 = off",
    )
    challenger_uri: str = Field(
        default="models:/tijdig-risk@challenger",
        description="the shadow challenger: an MLflow model URI or a local bundle folder",
    )
    shadow_queue_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="shadowed requests waiting for the challenger; beyond it one is dropped "
        "(counted in tijdig_shadow_dropped_total), never waited for",
    )

    reload_signal_file: Path | None = Field(
        default=None,
        description="set by `tijdig serve` for its workers: where a reload taken by one "
        "worker is announced to the others (service.reload)",
    )
    reload_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="how often a worker looks for such an announcement"
    )

    @model_validator(mode="after")
    def _fill_and_check(self) -> Self:
        base = self.data_dir.as_posix()
        if not self.store_url:
            self.store_url = f"sqlite:///{base}/events.db"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{base}/mlflow.db"
        if not self.decision_log_url:
            self.decision_log_url = f"sqlite:///{base}/decisions.db"
        if self.env == "production" and DEV_API_KEY in self.api_keys:
            raise ValueError(
                f"the development API key {DEV_API_KEY!r} is refused when env=production; "
                "set TIJDIG_API_KEYS to your own keys"
            )
        if not self.api_keys:
            raise ValueError("api_keys must name at least one key")
        if (
            self.env == "production"
            and self.ingest_workers == 0
            and self.max_ingest_bytes > DEFAULT_MAX_INGEST_BYTES
        ):
            raise ValueError(
                f"max_ingest_bytes={self.max_ingest_bytes:,} needs ingest_workers >= 1 when "
                f"env=production: a batch over {DEFAULT_MAX_INGEST_BYTES:,} bytes parsed in "
                "the worker that scores stalls its scoring; set TIJDIG_INGEST_WORKERS"
            )
        return self

    def metrics_are_public(self) -> bool:
        """Whether ``/metrics`` answers without an API key (``public_metrics``)."""
        return self.env == "development" if self.public_metrics is None else self.public_metrics

    def docs_are_public(self) -> bool:
        """Whether the API documentation is served (``public_docs``)."""
        return self.env == "development" if self.public_docs is None else self.public_docs

    def to_env(self) -> dict[str, str]:
        """These settings as ``TIJDIG_*`` variables, so worker processes rebuild them."""
        out: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            out[f"TIJDIG_{name.upper()}"] = text
        return out


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The process-wide settings from the environment (cached; routes use dependencies)."""
    return ServiceSettings()


def clear_settings_cache() -> None:
    get_settings.cache_clear()

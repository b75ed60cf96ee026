"""Settings for the training deployable (``tijdig train``, ``tijdig simulate``, ``tijdig run``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainingSettings(BaseSettings):
    """Where training reads events and writes models. Env vars with prefix ``TIJDIG_``."""

    model_config = SettingsConfigDict(env_prefix="TIJDIG_", env_ignore_empty=True, extra="ignore")

    data_dir: Path = Field(
        Path(".tijdig"), description="local state: event store, MLflow, simulation"
    )
    store_url: str = Field(
        "", description="event store URL; default sqlite:///<data_dir>/events.db"
    )
    mlflow_tracking_uri: str = Field(
        "", description="MLflow backend; default sqlite:///<data_dir>/mlflow.db"
    )
    offline_dir: Path | None = Field(
        None,
        description="the offline copy of the events (Parquet by customer bucket, "
        "features.offline): ingest appends what it stores to it when set; `tijdig offline "
        "sync` fills it from the store; `score-batch --offline` reads it",
    )
    experiment: str = "tijdig-early-warning"
    horizon_days: int = Field(90, gt=0)
    dpd_threshold: int = Field(30, gt=0)
    validation_dates: int = Field(3, ge=1)
    calibration_dates: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _derive_urls(self) -> TrainingSettings:
        if not self.store_url:
            self.store_url = f"sqlite:///{self.data_dir / 'events.db'}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{self.data_dir / 'mlflow.db'}"
        return self

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "mlartifacts"

    @property
    def simulation_dir(self) -> Path:
        return self.data_dir / "simulation"

"""Operations: liveness, readiness and the bundle reload."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import RequestModel


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "model_version": "7",
                    "policy_version": "risk-2026.11.1",
                    "checks": {"model": "ok", "store": "ok", "decision_log": "ok"},
                }
            ]
        },
    )

    status: str
    model_version: str | None
    policy_version: str | None
    checks: dict[str, str]


class ReloadRequest(RequestModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="bundle to load (MLflow URI or local folder); default: the configured one",
    )


class ReloadResult(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "previous_version": "6",
                    "model_version": "7",
                    "policy_version": "risk-2026.11.1",
                    "model_uri": "models:/tijdig-risk@champion",
                    "load_ms": 67.3,
                    "generation": 3,
                }
            ]
        },
    )

    previous_version: str | None
    model_version: str
    policy_version: str
    model_uri: str
    load_ms: float
    generation: int | None = Field(
        default=None,
        description="this reload's number among the server's workers, which swap to it "
        "within reload_poll_seconds; null when this process is the only worker",
    )

"""The OpenAPI document, with the response examples as the schemas write them.

FastAPI drops every ``null`` from the document it builds (fastapi/fastapi#5559), also
inside documented examples: a required nullable field (``suggested_plan`` when a debt-help
referral is advised) then goes missing, and a client generated from the document cannot
parse the example. The examples are put back as the response models declare them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

import service.schemas

#: Request models of routes that read the raw body (``POST /v1/events``: the ingest pool
#: parses it) and name the schema in ``openapi_extra``; FastAPI does not see them.
_BODIES_READ_RAW: tuple[type[BaseModel], ...] = (service.schemas.EventBatch,)


def _documented_examples() -> dict[str, list[Any]]:
    """Schema name -> the examples its model declares (``json_schema_extra``)."""
    out: dict[str, list[Any]] = {}
    for name in service.schemas.__all__:
        model = getattr(service.schemas, name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            extra = model.model_config.get("json_schema_extra")
            if isinstance(extra, dict) and "examples" in extra:
                out[model.__name__] = list(extra["examples"])  # type: ignore[arg-type]
    return out


def keep_null_in_examples(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with the examples as declared."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.get("components", {}).get("schemas", {})
            for model in _BODIES_READ_RAW:  # routes that read their body themselves
                schemas.setdefault(
                    model.__name__,
                    model.model_json_schema(ref_template="#/components/schemas/{model}"),
                )
            for name, examples in _documented_examples().items():
                if name in schemas:
                    schemas[name]["examples"] = examples
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

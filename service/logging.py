"""Structured JSON logs: one line per request, no personal data beyond a customer id.

Request lines carry ``method``, ``route`` (the path template, never the raw path, so
ids in paths do not leak), ``status``, ``duration_ms`` and ``model_version``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any

import orjson
import structlog

_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Configure structlog for JSON lines on stdout (idempotent)."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json_line),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=lambda *_args: _StdoutLogger(),
        cache_logger_on_first_use=False,
    )
    _configured = True


def _json_line(event: dict[str, Any], default: Callable[[Any], Any]) -> str:
    """The event as one JSON line by orjson (structlog's renderer calls this in place of
    ``json.dumps``, with its fallback for objects JSON does not know): a request's log
    line costs ~7 µs instead of ~10 µs, and one is written for every request."""
    return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()


class _StdoutLogger:
    """Writes each line to the *current* ``sys.stdout`` (test runners swap it), flushed."""

    def _write(self, message: str) -> None:
        out = sys.stdout
        out.write(message + "\n")
        out.flush()

    msg = log = debug = info = warning = warn = error = critical = exception = fatal = _write


def get_logger(name: str = "tijdig.service") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)


_SQL_PARTS = re.compile(
    r"\[(SQL|parameters|generated in)[^\]]*\]|\(Background on this error at:[^)]*\)"
)
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]+):[^@\s]+@")
_MAX_ERROR_CHARS = 500


def error_fields(exc: BaseException) -> dict[str, str]:
    """An exception as log fields: ``error_type`` and a sanitised ``error`` message — no
    SQL statement, no bound parameters (they may hold personal data), no password in a
    URL, one line. Use it instead of ``repr(exc)`` or ``str(exc)`` of database errors."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError: the driver's own error
    text = str(orig if isinstance(orig, BaseException) else exc)
    text = _URL_PASSWORD.sub(r"\1:***@", _SQL_PARTS.sub("", text))
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return {"error_type": type(exc).__name__, "error": first_line[:_MAX_ERROR_CHARS]}

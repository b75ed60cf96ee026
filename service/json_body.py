"""Request bodies parsed strictly: UTF-8 only, and every key at most once per object.

Python's ``json.loads`` on bytes guesses the encoding (UTF-16 and UTF-32 are taken
too) and keeps the last of two equal keys, so ``{"verified": false, "verified": true}``
would read as verified. Every router is built with :class:`StrictJSONRoute`, whose
requests parse their body with :func:`loads_strict` instead: one pass, the same parser.
The errors it raises are answered as 422 problems by :mod:`service.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

__all__ = ["DuplicateKeyError", "StrictJSONRequest", "StrictJSONRoute", "loads_strict"]

_UTF8_BOM = b"\xef\xbb\xbf"  # RFC 8259 lets a parser ignore it; it was always accepted


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (which one was meant is unknowable)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears more than once in one JSON object")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return obj


def loads_strict(body: bytes) -> Any:
    """Parse a request body that must be UTF-8 JSON with unique keys in every object.

    Raises ``UnicodeDecodeError`` (not UTF-8), :class:`DuplicateKeyError` or
    ``json.JSONDecodeError``.
    """
    text = body[len(_UTF8_BOM) :] if body.startswith(_UTF8_BOM) else body
    return json.loads(text.decode("utf-8"), object_pairs_hook=_unique_keys)


class StrictJSONRequest(Request):
    """A request whose ``json()`` is :func:`loads_strict`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """The route class of every router: FastAPI reads JSON bodies via the request's
    ``json()``, so handing it a :class:`StrictJSONRequest` is all it takes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler

"""The online benchmark's load generator (:func:`benchmarks.online.load.generate_load`)
against a tiny local HTTP server: what it sends is what the benchmark claims to measure."""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.online.load import generate_load


async def _serve_and_load(key_header: str | None) -> tuple[list[dict[str, str]], dict[str, Any]]:
    seen: list[dict[str, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                seen.append(headers)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await generate_load(
            f"http://127.0.0.1:{port}/v1/bnpl/decisions",
            [b'{"a": 1}', b'{"b": 2}'],
            {"Content-Type": "application/json"},
            0.3,
            key_header=key_header,
        )
    return seen, result


def test_every_pay_later_request_carries_a_key_of_its_own() -> None:
    seen, result = asyncio.run(_serve_and_load("Idempotency-Key"))
    keys = [h.get("idempotency-key") for h in seen]
    assert result["errors"] == 0 and len(keys) >= 32  # 16 connections, several rounds each
    assert None not in keys
    assert len(set(keys)) == len(keys)


def test_without_a_key_header_no_key_is_sent() -> None:
    seen, result = asyncio.run(_serve_and_load(None))
    assert result["errors"] == 0 and seen
    assert all("idempotency-key" not in h for h in seen)

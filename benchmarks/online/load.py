"""The load generator: a pure-Python asyncio client that keeps ``CONCURRENCY`` keep-alive
HTTP/1.1 connections busy for a while and says what it measured (latencies, throughput,
errors, and the CPU spent by the server's processes and by itself).

Closed loop: a connection sends its next request when the last is answered. It runs on
the same cores as the servers, so its own CPU per request (the same for every endpoint)
pulls throughput ratios towards 1; each call therefore also records the server's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from service.server import connections_per_worker

#: Requests in flight at once: one per keep-alive connection.
CONCURRENCY = 16
BNPL_PATH = "/v1/bnpl/decisions"


async def generate_load(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    duration_s: float,
    server_pid: int | None = None,
    key_header: str | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Keep ``CONCURRENCY`` keep-alive HTTP/1.1 connections busy for ``duration_s`` seconds.

    With ``key_header`` (``Idempotency-Key``) every request carries a key of its own, as a
    checkout's first call for an order does: each one is decided and its key bound.
    With ``stop``, the load also ends when that event is set (whichever comes first).

    A minimal client on asyncio streams (request bytes prebuilt, responses read by
    Content-Length): httpx's AsyncClient costs ~0.5 ms of CPU per request, which on 2
    shared cores made the load generator, not the server, the bottleneck. All
    connections are open before the clock starts; with ``server_pid`` (the server's
    supervisor) the result says how many of them each worker holds (``spread``).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    start_line = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}".encode()
    requests = [(start_line, f"Content-Length: {len(b)}\r\n\r\n".encode() + b) for b in bodies]
    run_id = uuid.uuid4().hex[:12]  # keys never repeat across rounds and runs
    latencies: list[float] = []
    errors = 0
    error_kinds: dict[str, int] = {}  # HTTP status (or "connection") -> count
    error_samples: dict[str, str] = {}  # HTTP status -> the first such body (problem+json)

    async def worker(seed: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        rng = random.Random(seed)
        sent = 0
        try:
            while True:
                started = time.perf_counter()
                if started >= stop_at or (stop is not None and stop.is_set()):
                    return
                try:
                    first, rest = rng.choice(requests)
                    if key_header:
                        sent += 1
                        first += f"{key_header}: {run_id}-{seed}-{sent}\r\n".encode()
                    writer.write(first + rest)
                    status_line = await reader.readline()
                    length = 0
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    body = await reader.readexactly(length)
                    status = status_line.split(b" ", 2)[1].decode()
                    if status != "200" and status not in error_samples:
                        error_samples[status] = body[:400].decode(errors="replace")
                except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
                    status = "connection"
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                latencies.append(time.perf_counter() - started)
                if status != "200":
                    errors += 1
                    error_kinds[status] = error_kinds.get(status, 0) + 1
        finally:
            writer.close()

    connections = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(CONCURRENCY))
    )
    spread = sorted(connections_per_worker(server_pid, port).values()) if server_pid else None
    server_cpu0 = process_tree_cpu_s(server_pid) if server_pid else None
    generator_cpu0 = time.process_time()
    began = time.perf_counter()
    stop_at = began + duration_s
    await asyncio.gather(*(worker(i, *rw) for i, rw in enumerate(connections)))
    elapsed = time.perf_counter() - began
    generator_cpu = time.process_time() - generator_cpu0
    server_cpu = (
        process_tree_cpu_s(server_pid) - server_cpu0
        if server_pid and server_cpu0 is not None
        else None
    )
    lat = np.array(latencies) * 1000
    return {
        "server_cpu_s": server_cpu,
        "generator_cpu_s": generator_cpu,
        "latencies_ms": lat,
        "requests": len(latencies),
        "errors": errors,
        "error_kinds": error_kinds,
        "error_samples": error_samples,
        "spread": spread,
        "seconds": round(elapsed, 2),
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) spent so far by ``pid`` and its child processes (a
    uvicorn supervisor and its workers), from ``/proc``; 0 where a process is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):  # the supervisor ended: count what is left
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def request_bodies(customer_ids: list[str], as_of: date) -> dict[str, list[bytes]]:
    """Request bodies, one per customer: a one-customer score request, and a pay-later
    order (EUR 20-400 as in the simulator, a verified adult; the Idempotency-Key goes in
    a header of each request)."""
    rng = random.Random(5)
    return {
        "score": [
            json.dumps({"customer_ids": [c], "as_of": as_of.isoformat()}).encode()
            for c in customer_ids
        ],
        "bnpl": [
            json.dumps(
                {
                    "customer_id": c,
                    "order": {"amount_cents": rng.randint(2_000, 40_000), "currency": "EUR"},
                    "age_verification": {
                        "verified": True,
                        "method": "idin",
                        "birth_date": "1990-04-01",
                    },
                    "as_of": as_of.isoformat(),
                }
            ).encode()
            for c in customer_ids
        ],
    }

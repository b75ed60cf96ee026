"""Run the service under uvicorn: ``serve(settings, host, port, workers)``.

Each worker imports ``service.app:create_app`` and builds its own app (``factory=True``),
so the LightGBM booster is loaded in the worker's lifespan — never in this parent before
the fork (OpenMP state does not survive a fork: hangs). ``OMP_NUM_THREADS=1`` is set
before any worker starts: single-row predictions gain nothing from threads and the
workers share the cores. The settings travel to the workers as ``TIJDIG_*`` variables.
With more than one worker, Prometheus runs in multiprocess mode in a fresh folder.

With more than one worker on Linux, each worker listens on a socket of its own in one
``SO_REUSEPORT`` group, and the kernel spreads new connections over the workers by a
hash of the connection's addresses (:func:`run_uvicorn`, architecture decision 17).
uvicorn's own multi-worker mode shares one listening socket: whichever worker wakes
first accepts everything queued, so a client's burst of keep-alive connections lands on
one worker (measured: 16 connections split 16/0, 15/1, 12/4, 11/5 in four tries) while
the other idles, and every request on the crowded worker waits behind the others.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import uvicorn  # light: the app, its model and MLflow are imported in the workers only
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from service.reload import ReloadAnnouncements
from service.settings import ServiceSettings

APP_FACTORY = "service.app:create_app"

_log = logging.getLogger("uvicorn.error")


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
    announcements = None
    if workers > 1:  # a reload taken by one worker reaches the others (service.reload)
        path = Path(settings.data_dir) / "run" / f"reload-{os.getpid()}.json"
        announcements = ReloadAnnouncements.create(path.resolve(), settings.model_uri)
        os.environ["TIJDIG_RELOAD_SIGNAL_FILE"] = str(announcements.path)
    try:
        # access_log off: the app logs one JSON line per request itself
        run_uvicorn(APP_FACTORY, factory=True, host=host, port=port, workers=workers)
    finally:
        if announcements is not None:
            announcements.remove()


def balanced_listeners(port: int, workers: int) -> bool:
    """Whether :func:`run_uvicorn` gives each worker its own ``SO_REUSEPORT`` listener.

    Only on Linux (elsewhere the option exists but does not spread connections: BSD and
    macOS hand them all to one socket), only for a fixed port (port 0 would give every
    worker a different one), and only with more than one worker.
    """
    return workers > 1 and port != 0 and sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def run_uvicorn(
    app: str,
    *,
    factory: bool,
    host: str,
    port: int,
    workers: int,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """``uvicorn.run``, but with one ``SO_REUSEPORT`` listener per worker where
    :func:`balanced_listeners` allows it. Blocks until interrupted.

    uvicorn's supervisor (restart of a dead worker, SIGHUP/TTIN/TTOU, shutdown) is used
    as it is; only the socket changes: the supervisor hands its workers no socket, and
    each worker binds its own before it starts its app and listens on it after, so no
    connection is routed to a worker whose model is not loaded yet. Before any worker
    starts, the port is checked with an ordinary bind, so a port already in use — by
    another ``tijdig serve`` too — stops the start with uvicorn's own error instead of
    joining that server's group and sharing its traffic.
    """
    options: dict[str, Any] = {
        "factory": factory,
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
        "access_log": access_log,
    }
    if not balanced_listeners(port, workers):
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    config.bind_socket().close()  # the port check; exits with uvicorn's message if taken
    # uvicorn's supervisor builds its workers as `multiprocess.Process`; inside this
    # block it builds ours, which differ only in the server they run.
    with mock.patch.object(multiprocess, "Process", _OwnListenerProcess):
        multiprocess.Multiprocess(config, sockets=[]).run()


def reuseport_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` in the port's ``SO_REUSEPORT`` group, not yet
    listening (the worker's server calls ``listen`` once its app has started)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says it is TCP (uvicorn issue 3149: Nagle's delay on every response)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _OwnListenerServer(uvicorn.Server):
    """A uvicorn server that, handed no socket by the supervisor, binds its own."""

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if not sockets:
            try:
                sockets = [reuseport_listener(self.config.host, self.config.port)]
            except OSError as exc:
                where = f"{self.config.host}:{self.config.port}"
                _log.error("worker %d cannot listen on %s: %s", os.getpid(), where, exc)
                sys.exit(STARTUP_FAILURE)  # the supervisor then stops instead of retrying
            _log.info("worker %d listening on its own socket (SO_REUSEPORT)", os.getpid())
        await super().serve(sockets=sockets)


class _OwnListenerProcess(multiprocess.Process):
    """uvicorn's worker process, running :class:`_OwnListenerServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _OwnListenerServer(config=self.config)
        return self._server


def tcp_socket_inodes(port: int, state: str) -> set[str]:
    """Linux: inodes of the TCP sockets (IPv4 and IPv6) whose local port is ``port`` and
    whose state is ``"LISTEN"`` or ``"ESTABLISHED"``, read from ``/proc/net/tcp*``."""
    code = {"ESTABLISHED": "01", "LISTEN": "0A"}[state]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == code and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def process_socket_inodes(pid: int) -> set[str]:
    """Linux: inodes of the sockets process ``pid`` holds open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def connections_per_worker(parent_pid: int, port: int) -> dict[int, int]:
    """Linux: for each worker of the server whose supervisor is ``parent_pid`` (a child
    process listening on ``port``), how many connections on ``port`` it holds open.
    Shows how evenly the kernel spread the clients' connections."""
    children = Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split()
    listening = tcp_socket_inodes(port, "LISTEN")
    established = tcp_socket_inodes(port, "ESTABLISHED")
    spread = {}
    for pid in map(int, children):
        try:
            held = process_socket_inodes(pid)
        except OSError:
            continue  # ended meanwhile
        if held & listening:
            spread[pid] = len(held & established)
    return spread

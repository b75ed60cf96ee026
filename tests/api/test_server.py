"""serve(): uvicorn with the app factory, OMP_NUM_THREADS=1, settings passed to workers;
with several workers, one SO_REUSEPORT listener per worker (connections spread over all)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="per-worker SO_REUSEPORT listeners are used on Linux only"
)


def test_serve_runs_the_factory_without_loading_a_model_in_the_parent(monkeypatch, tmp_path):
    from service import server
    from service.settings import ServiceSettings

    calls = {}
    monkeypatch.setattr(server, "run_uvicorn", lambda app, **kw: calls.update(app=app, **kw))
    # serve() exports to the environment: give it a private copy, restored afterwards
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIJDIG_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    monkeypatch.setattr(os, "environ", env)
    server.serve(
        ServiceSettings(data_dir=tmp_path, model_uri="/some/bundle"), "0.0.0.0", 8123, workers=2
    )
    assert calls["app"] == "service.app:create_app"
    assert calls["factory"] is True
    assert calls["workers"] == 2 and calls["port"] == 8123
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["TIJDIG_MODEL_URI"] == "/some/bundle"
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"].endswith("prometheus")
    # the workers rebuild the same settings from the environment
    assert ServiceSettings().model_uri == "/some/bundle"


@pytest.mark.parametrize(
    ("workers", "port"), [(1, 8123), (2, 0)], ids=["one worker", "port 0 (chosen by the OS)"]
)
def test_where_a_listener_per_worker_cannot_apply_uvicorn_runs_as_it_is(monkeypatch, workers, port):
    import uvicorn

    from service import server

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    server.run_uvicorn("x:app", factory=False, host="127.0.0.1", port=port, workers=workers)
    assert calls["app"] == "x:app" and calls["workers"] == workers


def _start(port: int) -> subprocess.Popen[bytes]:
    code = (
        "from service.server import run_uvicorn; run_uvicorn('tests.fixtures.pid_app:app', "
        f"factory=False, host='127.0.0.1', port={port}, workers=2, log_level='info')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask_pid(conn: socket.socket) -> int:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return int(data.split(b"\r\n\r\n", 1)[1])


@linux_only
def test_each_worker_listens_on_its_own_socket_and_connections_reach_both():
    from service.server import connections_per_worker, process_socket_inodes, tcp_socket_inodes

    port = _free_port()
    proc = _start(port)
    try:
        deadline = time.monotonic() + 60
        while len(tcp_socket_inodes(port, "LISTEN")) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.1)
            if tcp_socket_inodes(port, "LISTEN") and deadline - time.monotonic() > 10:
                deadline = time.monotonic() + 10  # the server is up: 10 s for the second
        listeners = tcp_socket_inodes(port, "LISTEN")
        # uvicorn's own mode would show one listening socket, shared by every worker
        assert len(listeners) == 2, f"{len(listeners)} listening socket(s) for 2 workers"
        # a burst of keep-alive connections, as a client pool opens them: with one shared
        # socket the first worker to wake takes them all (15 or 16 of 16 in most tries);
        # spread by hash, all 32 on one worker has odds of 2 in 2**32
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(32)]
        try:
            served_by = Counter(_ask_pid(c) for c in conns)
            assert connections_per_worker(proc.pid, port) == served_by
        finally:
            for c in conns:
                c.close()
        assert len(served_by) == 2, served_by
        for pid in served_by:  # each worker answers on the socket it listens on itself
            assert len(process_socket_inodes(pid) & listeners) == 1

        # a second server on the same port is refused (uvicorn's own port check), instead
        # of joining the group and taking a share of the first one's traffic
        second = _start(port)
        out, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert b"in use" in out, out.decode()
        assert tcp_socket_inodes(port, "LISTEN") == listeners
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def test_importing_the_app_loads_no_model_and_no_mlflow():
    code = "import sys, service.app, service.server; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # MLflow is imported only to load a registry bundle

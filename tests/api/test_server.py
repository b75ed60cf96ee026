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
    # the workers' shared announcement of reloads, removed when the server stops
    announced = Path(os.environ["TIJDIG_RELOAD_SIGNAL_FILE"])
    assert announced.parent == (tmp_path / "run").resolve() and not announced.exists()
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


def start_tijdig(
    settings, tmp_path: Path, port: int, workers: int, **env_extra: str
) -> subprocess.Popen[bytes]:
    """`tijdig serve` with ``settings`` on 127.0.0.1:``port`` in its own process group,
    state under ``tmp_path``; stop it with :func:`stop_tijdig`."""
    env = {
        **os.environ,
        **settings.to_env(),
        "TIJDIG_DATA_DIR": str(tmp_path),
        "TIJDIG_DECISION_LOG_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
        "PYTHONPATH": str(ROOT),
        **env_extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    code = (
        f"from service.server import serve; serve(host='127.0.0.1', port={port}, workers={workers})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop_tijdig(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server of :func:`start_tijdig` and its workers (SIGTERM, then SIGKILL)."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


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


def _request(conn: socket.socket, method: str, path: str, body: bytes = b"", key: str = "") -> dict:
    import json

    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    head += f"Content-Type: application/json\r\nX-API-Key: {key}\r\n\r\n" if key else "\r\n"
    conn.sendall(head.encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(conn)
    header, rest = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1])
        for line in header.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += _recv(conn)
    return json.loads(rest)


def _recv(conn: socket.socket) -> bytes:
    """The next bytes; a connection the server closed (e.g. idle past uvicorn's keep-alive
    while a slow machine reloads) is an error, never an endless loop of empty reads."""
    chunk = conn.recv(65536)
    if not chunk:
        raise ConnectionResetError("the server closed the connection")
    return chunk


@linux_only
def test_a_reload_reaches_both_workers_of_a_real_server(settings, bundle_v1, bundle_v2, tmp_path):
    """`tijdig serve --workers 2`: the reload lands on one worker; every connection, on
    either worker, then answers with the new version."""
    from service.server import connections_per_worker
    from tests.api.conftest import KEYS

    port = _free_port()
    proc = start_tijdig(settings, tmp_path, port, workers=2, TIJDIG_RELOAD_POLL_SECONDS="0.1")
    conns: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 90
        while len(tcp_listeners := _listeners(port)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the workers did not start in 90 s"
            time.sleep(0.2)
        conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
        assert {_request(c, "GET", "/readyz")["model_version"] for c in conns} == {"test-v1"}
        assert len(connections_per_worker(proc.pid, port)) == 2 and tcp_listeners

        body = f'{{"model_uri": "{bundle_v2}"}}'.encode()
        done = _request(conns[0], "POST", "/admin/reload", body, key=KEYS["admin"])
        assert done["model_version"] == "test-v2" and done["generation"] == 1, done

        def versions() -> set[str]:
            seen = set()
            for i, c in enumerate(conns):
                try:
                    seen.add(_request(c, "GET", "/readyz")["model_version"])
                except OSError:  # idle past the keep-alive: the kernel spreads a new one
                    c.close()
                    conns[i] = socket.create_connection(("127.0.0.1", port), timeout=30)
                    seen.add(_request(conns[i], "GET", "/readyz")["model_version"])
            return seen

        deadline = time.monotonic() + 30
        while (seen := versions()) != {"test-v2"}:
            assert time.monotonic() < deadline, f"after 30 s the workers serve {seen}"
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()
        stop_tijdig(proc)
    assert not list((tmp_path / "run").glob("reload-*.json"))  # the supervisor tidied up


def _listeners(port: int) -> set[str]:
    from service.server import tcp_socket_inodes

    return tcp_socket_inodes(port, "LISTEN")

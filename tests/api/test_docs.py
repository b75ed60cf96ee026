"""The API documentation pages work without the internet: every script and style they
load is served by tijdig itself, and Swagger UI renders the operations in a real browser
that can reach nothing but this server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from tests.fixtures.browser import chromium, needs_chromium


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(client, page):
    html = client.get(page).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert all(s.startswith("/") for s in sources), sources
    for path in sources:
        asset = client.get(path)
        assert asset.status_code == 200 and len(asset.content) > 0, path


def test_production_serves_no_docs(make_client):
    with make_client(env="production", api_keys={"k": ["admin"]}) as production:
        for page in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui-bundle.js"):
            assert production.get(page).status_code == 404, page


@pytest.fixture
def live_server(settings) -> Iterator[str]:
    """The app on a free 127.0.0.1 port, in a thread, for the browser."""
    from service.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.slow
@needs_chromium
def test_swagger_ui_renders_the_operations_with_no_network(live_server, tmp_path):
    dom = chromium(
        tmp_path,
        # every host but this server's is unresolvable: a CDN script would not load
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,900",
        "--virtual-time-budget=15000",
        "--dump-dom",
        f"{live_server}/docs",
    ).stdout
    operations = re.findall(r'class="opblock-summary-path"[^>]*data-path="([^"]+)"', dom)
    assert "/v1/risk/scores" in operations and "/v1/bnpl/decisions" in operations, dom[:2000]

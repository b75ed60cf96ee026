"""The request log: one JSON line per request, with the route's template (never the raw
path, which can hold ids), status, duration and model version; values JSON does not
know fall back to text instead of losing the line."""

from __future__ import annotations

import json
from datetime import date

from tests.api.conftest import headers


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_one_line_per_request_with_the_route_template_not_the_raw_path(client, capsys):
    capsys.readouterr()
    unknown = "6f1d3c1e-5b8e-4c55-9a43-2f4f4e0f7a11"
    client.get(f"/v1/decisions/{unknown}", headers=headers("review"))
    scored = client.post(
        "/v1/risk/scores",
        json={"customer_ids": ["C-risk-1"], "as_of": "2026-01-15"},
        headers=headers("collection"),
    )
    out = capsys.readouterr().out
    requests = [line for line in _lines(out) if line.get("event") == "request"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("GET", "/v1/decisions/{decision_id}", 404),
        ("POST", "/v1/risk/scores", 200),
    ]
    assert unknown not in out and "C-risk-1" not in json.dumps(requests)
    assert requests[1]["model_version"] == scored.json()["model_version"]
    assert all(
        r["duration_ms"] >= 0 and r["level"] == "info" and "timestamp" in r for r in requests
    )


def test_values_json_does_not_know_are_written_as_text(capsys):
    from service.logging import configure_logging, get_logger

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    configure_logging()
    capsys.readouterr()
    get_logger("test").info("odd", day=date(2026, 1, 15), thing=Opaque(), count={1: "a"})
    (line,) = _lines(capsys.readouterr().out)
    assert line["day"] == "2026-01-15" and line["thing"] == "<opaque>"
    assert line["count"] == {"1": "a"}

"""GET /v1/reports/impact: the latest report `tijdig report impact` wrote, else a 404."""

from __future__ import annotations

import json

from tests.api import factories
from tests.api.conftest import CUSTOMERS, headers

PROBLEM = "application/problem+json"
URL = "/v1/reports/impact"


def test_no_report_yet_is_a_404_saying_how_to_make_one(make_client, tmp_path):
    r = make_client(data_dir=tmp_path).get(URL, headers=headers("collection"))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:tijdig:problem:no-report"
    assert "tijdig report impact" in r.json()["detail"]


def test_the_written_report_is_served_as_written(make_client, tmp_path):
    from training.reports.impact import impact_report, write_report

    report = impact_report(factories.frames(factories.batch(CUSTOMERS)))
    json_path, _ = write_report(report, tmp_path / "reports")
    client = make_client(data_dir=tmp_path)
    r = client.get(URL, headers=headers("collection"))
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(json_path.read_text(encoding="utf-8"))
    assert client.get(URL, headers=headers("ingest")).status_code == 403


def test_a_file_that_is_no_report_is_a_503_not_a_500(make_client, tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "impact.json").write_text('{"report": "imp', encoding="utf-8")
    r = make_client(data_dir=tmp_path).get(URL, headers=headers("collection"))
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM

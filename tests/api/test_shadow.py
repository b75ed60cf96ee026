"""The shadow challenger (issue 23, item 6): it never changes an answer, a broken one
switches itself off, and its answers are logged beside the champion's."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from models.bundle import Bundle
from tests.api.conftest import CUSTOMERS, headers

REQUESTS = [
    {"customer_ids": ["C-risk-1"], "as_of": "2026-01-15"},
    {"customer_ids": ["C-low-1", "C-risk-2", "C-low-2"], "as_of": "2026-01-15", "explain": True},
    {"customer_ids": list(CUSTOMERS), "as_of": "2026-02-01", "explain": False},
    {"customer_ids": ["C-low-2"]},
]


def _answers(client) -> list[dict]:
    """Each request's answer without its decision ids (new on every call)."""
    out = []
    for body in REQUESTS:
        r = client.post("/v1/risk/scores", json=body, headers=headers("collection"))
        assert r.status_code == 200, r.text
        doc = r.json()
        for result in doc["results"]:
            result.pop("decision_id")
        out.append(doc)
    return out


def _client(make_client, tmp_path, **overrides):
    return make_client(decision_log_url=f"sqlite:///{tmp_path / 'decisions.db'}", **overrides)


def test_shadow_never_changes_an_answer_and_logs_both(make_client, tmp_path, bundle_v2):
    plain = _client(make_client, tmp_path / "a")
    shadowed = _client(make_client, tmp_path / "b", shadow_share=1.0, challenger_uri=str(bundle_v2))
    scorer = shadowed.app.state.shadow
    assert scorer is not None and scorer.challenger.version == "test-v2"

    assert _answers(shadowed) == _answers(plain)

    assert scorer.flush()
    rows = list(shadowed.app.state.decision_log.iter_shadow())
    assert len(rows) == sum(len(b["customer_ids"]) for b in REQUESTS)
    challenger = Bundle.load(bundle_v2)
    for row in rows:
        logged = shadowed.app.state.decision_log.get(row["decision_id"])
        assert logged.customer_id == row["customer_id"]
        assert row["champion_probability"] == logged.outputs["probability"]
        assert row["champion_flag"] == logged.outputs["early_warning"]
        assert (row["champion_version"], row["challenger_version"]) == ("test-v1", "test-v2")
        x = np.array([[np.nan if v is None else v for v in logged.features.values()]])
        assert row["challenger_probability"] == pytest.approx(challenger.predict_proba(x)[0])
        expected_flag = row["challenger_probability"] >= challenger.policy.early_warning_threshold
        assert row["challenger_flag"] == expected_flag
    metrics = shadowed.get("/metrics").text
    assert f"tijdig_shadow_scored_total {float(len(rows))}" in metrics


def test_share_zero_loads_no_challenger(make_client, tmp_path, bundle_v2):
    c = _client(make_client, tmp_path, shadow_share=0.0, challenger_uri=str(bundle_v2))
    assert c.app.state.shadow is None


@pytest.mark.parametrize("which", ["broken", "missing"])
def test_a_challenger_that_cannot_load_disables_shadowing(
    make_client, tmp_path, broken_bundle, which, capsys
):
    uri = str(broken_bundle) if which == "broken" else str(tmp_path / "no-such-bundle")
    plain = _client(make_client, tmp_path / "a")
    c = _client(make_client, tmp_path / "b", shadow_share=1.0, challenger_uri=uri)
    assert c.app.state.shadow is None
    assert "shadow_disabled" in capsys.readouterr().out
    assert c.get("/readyz").status_code == 200
    assert _answers(c) == _answers(plain)


def test_a_challenger_that_fails_to_predict_leaves_answers_intact(
    make_client, tmp_path, bundle_v2, capsys
):
    plain = _client(make_client, tmp_path / "a")
    c = _client(make_client, tmp_path / "b", shadow_share=1.0, challenger_uri=str(bundle_v2))
    scorer = c.app.state.shadow

    def explode(X):
        raise RuntimeError("challenger is broken")

    scorer.challenger.predict_proba = explode
    assert _answers(c) == _answers(plain)
    assert scorer.flush()
    assert not scorer.enabled
    assert "shadow_disabled" in capsys.readouterr().out
    assert list(c.app.state.decision_log.iter_shadow()) == []
    assert _answers(c) == _answers(plain)  # and after it switched itself off


class _Metrics:
    def __init__(self):
        self.shadow_scored, self.shadow_dropped, self.shadow_failures = _N(), _N(), _N()


class _N:
    def __init__(self):
        self.value = 0

    def inc(self, n=1):
        self.value += n


def _offer(n=1):
    from datetime import UTC, date, datetime

    from service.shadow import ShadowOffer

    return ShadowOffer(
        created_at=datetime.now(UTC),
        as_of=date(2026, 1, 15),
        champion_version="m1",
        customer_ids=[f"C{i}" for i in range(n)],
        decision_ids=[f"d{i}" for i in range(n)],
        X=np.zeros((n, 3)),
        champion_probability=[0.1] * n,
        champion_flag=[False] * n,
    )


class _SlowSink:
    """A decision log that holds the worker until released."""

    def __init__(self):
        self.release = threading.Event()
        self.rows: list[dict] = []

    def log_shadow(self, rows):
        self.release.wait(5)
        self.rows.extend(rows)
        return len(rows)


class _Challenger:
    version = "c1"

    class policy:
        early_warning_threshold = 0.5

    @staticmethod
    def predict_proba(X):
        return np.full(len(X), 0.7)


def test_a_full_queue_drops_and_counts_never_waits():
    from service.shadow import ShadowScorer

    sink, metrics = _SlowSink(), _Metrics()
    scorer = ShadowScorer(_Challenger(), 1.0, sink, metrics, max_queue=2, flush_every_s=0.0)
    try:
        accepted = [scorer.offer(_offer) for _ in range(20)]
        assert not all(accepted)  # the worker holds one batch, the queue two offers
        assert metrics.shadow_dropped.value == accepted.count(False)
    finally:
        sink.release.set()
        scorer.close()
    assert {r["challenger_flag"] for r in sink.rows} == {True}
    assert len(sink.rows) == accepted.count(True)


def test_share_draws_about_that_share_of_requests():
    from service.shadow import ShadowScorer

    sink, metrics = _SlowSink(), _Metrics()
    sink.release.set()
    scorer = ShadowScorer(
        _Challenger(), 0.25, sink, metrics, max_queue=10_000, flush_every_s=0.0, seed=7
    )
    try:
        taken = sum(scorer.offer(_offer) for _ in range(4000))
    finally:
        scorer.close()
    assert 850 <= taken <= 1150
    assert len(sink.rows) == taken

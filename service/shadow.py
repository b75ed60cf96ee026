"""The shadow challenger: a second model scores a share of risk requests, off the request path.

With ``shadow_share`` above 0 the service loads a second bundle (``challenger_uri``, by
default the registry alias ``challenger``) at start-up. After a risk-score request has
built its answer, :meth:`ShadowScorer.offer` draws whether this request is shadowed and,
if so, puts the already computed feature rows and the champion's probabilities on a
bounded queue: a few microseconds, never a wait. One worker thread per process takes
what is queued, predicts it with the challenger in one call and logs both answers in
the decision log's ``shadow_scores`` table (:mod:`service.decision_log.shadow`).

The response never depends on it: the champion's answer is built before the offer,
and nothing the worker does reaches a request. A full queue drops the offer and counts
it (``tijdig_shadow_dropped_total``); a challenger that cannot be loaded, or fails to
predict, switches shadowing off with one log line (:func:`load_shadow`,
``shadow_disabled``), never an error.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import structlog

from models.bundle import Bundle

log = structlog.get_logger("tijdig.service")

_STOP = object()


@dataclass(frozen=True)
class ShadowOffer:
    """One shadowed request: what the champion saw and answered, row by row."""

    created_at: datetime
    as_of: date
    champion_version: str
    customer_ids: Sequence[str]
    decision_ids: Sequence[str]
    X: np.ndarray  # the scored rows, in the champion's (= every servable bundle's) order
    champion_probability: Sequence[float]
    champion_flag: Sequence[bool]


class ShadowScorer:
    """Scores offered requests with ``challenger`` in a worker thread and logs both answers.

    Parameters
    ----------
    challenger : Bundle
        The second model (checked servable, so its feature order is the champion's).
    share : float
        Share of risk-score requests shadowed, in (0, 1].
    sink : object
        Has ``log_shadow(rows)`` (the open :class:`~service.decision_log.DecisionLog`).
    metrics : Metrics
        ``shadow_scored``, ``shadow_dropped`` and ``shadow_failures`` are counted there.
    max_queue : int, default 1000
        Most shadowed requests waiting; beyond it an offer is dropped, and counted.
    flush_every_s : float, default 0.5
        The worker writes at most this often: one short transaction for everything
        scored meanwhile, so the log's write lock is rarely held by it.
    """

    def __init__(
        self,
        challenger: Bundle,
        share: float,
        sink: Any,
        metrics: Any,
        *,
        max_queue: int = 1000,
        flush_every_s: float = 0.5,
        seed: int | None = None,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1]; got {share}")
        self.challenger = challenger
        self.share = share
        self.sink = sink
        self.metrics = metrics
        self.flush_every_s = flush_every_s
        self.enabled = True
        self.queued = 0  # offers put on the queue
        self.handled = 0  # offers the worker has scored and logged (or given up on)
        self._random = random.Random(seed)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="shadow-challenger", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ request path
    def offer(self, make_offer: Any) -> bool:
        """Maybe shadow one request: draws against ``share``, then queues ``make_offer()``
        (a :class:`ShadowOffer`, built only when drawn). Never raises, never waits;
        returns whether the request was queued."""
        try:
            if not self.enabled or self._random.random() >= self.share:
                return False
            self._queue.put_nowait(make_offer())
            self.queued += 1  # only the event loop's thread offers
            return True
        except queue.Full:
            self.metrics.shadow_dropped.inc()
            return False
        except Exception as exc:  # a shadow must never fail the request it follows
            self._disable("offer_failed", exc)
            return False

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            started = time.monotonic()
            offers, stop = self._drain([first])
            if self.enabled:
                self._score_and_log(offers)
            self.handled += len(offers)
            if stop:
                return
            rest = self.flush_every_s - (time.monotonic() - started)
            if rest > 0:
                time.sleep(rest)  # let offers gather: one write per interval

    def _drain(self, offers: list[Any]) -> tuple[list[ShadowOffer], bool]:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return offers, False
            if item is _STOP:
                return offers, True
            offers.append(item)

    def _score_and_log(self, offers: list[ShadowOffer]) -> None:
        try:
            X = np.vstack([o.X for o in offers])
            probability = self.challenger.predict_proba(X)
        except Exception as exc:
            self._disable("challenger_failed", exc)
            return
        threshold = self.challenger.policy.early_warning_threshold
        rows: list[dict[str, Any]] = []
        at = 0
        for o in offers:
            for i, customer_id in enumerate(o.customer_ids):
                p = float(probability[at])
                at += 1
                rows.append(
                    {
                        "decision_id": o.decision_ids[i],
                        "created_at": o.created_at,
                        "customer_id": customer_id,
                        "as_of": o.as_of,
                        "champion_version": o.champion_version,
                        "challenger_version": self.challenger.version,
                        "champion_probability": float(o.champion_probability[i]),
                        "challenger_probability": p,
                        "champion_flag": bool(o.champion_flag[i]),
                        "challenger_flag": p >= threshold,
                    }
                )
        try:
            self.sink.log_shadow(rows)
        except Exception as exc:  # the log is busy or down: these rows are lost, not retried
            self.metrics.shadow_failures.inc(len(rows))
            log.warning("shadow_rows_not_logged", rows=len(rows), error=type(exc).__name__)
            return
        self.metrics.shadow_scored.inc(len(rows))

    def _disable(self, event: str, exc: BaseException) -> None:
        if self.enabled:
            self.enabled = False
            log.error(
                "shadow_disabled",
                reason=event,
                challenger_version=self.challenger.version,
                error=f"{type(exc).__name__}: {exc}",
            )
        self.metrics.shadow_failures.inc()

    def close(self, timeout_s: float = 5.0) -> None:
        """Score and log what is queued, then stop the worker."""
        if self._thread.is_alive():
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    self._queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every offer queued so far has been handled (tests and benchmarks);
        False when that took longer than ``timeout_s``."""
        wanted = self.queued
        deadline = time.monotonic() + timeout_s
        while self.handled < wanted:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


def load_shadow(settings: Any, decision_log: Any, metrics: Any) -> ShadowScorer | None:
    """The shadow scorer the settings ask for, or None: shadowing off (``shadow_share``
    0), no decision log, or a challenger that cannot be loaded (one log line, no error)."""
    if settings.shadow_share <= 0:
        return None
    if decision_log is None:
        log.warning("shadow_disabled", reason="no decision log to write to")
        return None
    from service.bundle_loader import load_checked_bundle

    try:
        challenger = load_checked_bundle(
            settings.challenger_uri,
            settings.mlflow_tracking_uri,
            parse_timeout_s=settings.bundle_parse_timeout_seconds,
        )
    except Exception as exc:  # a missing alias, a broken bundle: serve without a shadow
        log.warning(
            "shadow_disabled",
            reason="challenger not loaded",
            challenger_uri=settings.challenger_uri,
            error=f"{type(exc).__name__}: {exc}",
        )
        return None
    log.info(
        "shadow_enabled",
        challenger_uri=settings.challenger_uri,
        challenger_version=challenger.version,
        share=settings.shadow_share,
    )
    return ShadowScorer(
        challenger,
        settings.shadow_share,
        decision_log,
        metrics,
        max_queue=settings.shadow_queue_size,
    )

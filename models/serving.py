"""Materialised serving rows: a request reads one row instead of a customer's history.

Checkout and collection systems ask about the same customers day after day, and the
answer for (customer, day, model) only changes when an event of that customer arrives.
So the expensive part of a decision — reading the history, building the 84 features,
TreeSHAP contributions for customers whose risk is elevated — is computed once and kept
as a *serving row* in the event store (``features.store.SERVING_ROWS``):

``features``  the one feature definition (:func:`features.build.build_features`) plus
              the open-collection-case flag, float64, as of the start of the day
``scores``    per model fingerprint: the calibrated probability and, where the policy
              shows reasons (probability at or above the lowest band that explains or the
              pay-later cut-off), the SHAP contributions

Who fills them:

* ``tijdig features refresh`` (the nightly / after-ingest job) and ``tijdig
  score-batch`` compute rows for every customer in partitions (:meth:`ServingRows.refresh`);
* a request that finds no valid row computes the answer from the events as before and
  hands the row to a write-behind thread, so the next request for that customer is fast.

Correctness does not depend on anyone remembering to invalidate: each ingest bumps the
version of every customer it stored an event for, in the same transaction, and a row is
served only while its version is current (see ``features.store``). A row written from a
read that raced an ingest carries the old version and is never served. The cached answer
equals the computed one by construction (same functions, same float64 row); the parity
tests in ``tests/test_serving_rows.py`` hold it to that.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import numpy as np
import structlog

from features.build import FEATURE_NAMES, FEATURE_SET_VERSION, build_features
from features.collection_cases import open_collection_cases
from features.events import EventArrays, to_day
from features.store import EventStore, ServingRow, StoreUnavailable
from models.bundle import Bundle
from models.reasons import Reason, top_reasons

log = structlog.get_logger(__name__)

#: Identifies the feature definition a row was built with; a new definition never reads
#: rows of an old one.
FEATURE_SET_KEY = (
    FEATURE_SET_VERSION
    + ":"
    + hashlib.sha256(json.dumps(list(FEATURE_NAMES)).encode()).hexdigest()[:12]
)


T = TypeVar("T")


class UnknownCustomers(LookupError):
    """Customer ids the event store does not hold. A request path reads all its ids or
    decides for none of them, so the caller answers with every unknown id at once."""

    def __init__(self, unknown: list[str], asked: int):
        super().__init__(f"{len(unknown)} of {asked} customer ids are not in the event store")
        self.unknown = unknown
        self.asked = asked  # how many ids the request held


def model_key(bundle: Bundle) -> str:
    """What scores in a row are valid for: the bundle version and a fingerprint of
    everything that shapes a probability or its reasons (booster, calibrator, the
    thresholds). Two unregistered bundles never share scores."""
    cached = getattr(bundle, "_serving_key", None)
    if cached is not None:
        return str(cached)
    h = hashlib.sha256(bundle.booster.model_to_string().encode())
    h.update(json.dumps(bundle.calibrator, sort_keys=True).encode())
    h.update(repr(reasons_threshold(bundle)).encode())
    key = f"{bundle.version}#{h.hexdigest()[:16]}"
    bundle._serving_key = key  # type: ignore[attr-defined]
    return key


def reasons_threshold(bundle: Bundle) -> float:
    """Rows at or above this probability may need reasons (elevated risk band, or a
    pay-later decline on risk), so their contributions are kept with the row."""
    return float(min(bundle.policy.bands[0][1], bundle.bnpl_policy.risk_cutoff))


@dataclass
class ServingState:
    """What every real-time decision needs for a batch of customers, in request order."""

    customer_ids: list[str]
    X: np.ndarray  # (n, features), bundle.feature_names order
    open_case: np.ndarray  # bool (n,): a claim at the agency or bailiff still unpaid
    probability: np.ndarray  # calibrated, (n,)
    contributions: np.ndarray  # (n, features + 1) SHAP log-odds; NaN rows = not computed
    materialised: np.ndarray  # bool (n,): came from a stored serving row
    versions: dict[str, int] = field(default_factory=dict)  # of computed rows
    # stored rows whose scores were another model's (or unreadable): predicted afresh
    rescored: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.intp))

    def source(self, row: int) -> str:
        """Where ``row`` came from, as the decision log records it: ``"materialised"`` (a
        stored serving row) or ``"computed"`` (from the customer's events)."""
        return "materialised" if self.materialised[row] else "computed"

    def contributions_of(self, bundle: Bundle, rows: Sequence[int]) -> np.ndarray:
        """SHAP contributions of ``rows`` (n, features + 1), computing the unknown ones."""
        rows = list(rows)
        missing = [r for r in rows if np.isnan(self.contributions[r, -1])]
        if missing:
            self.contributions[missing] = bundle.contributions(self.X[missing])
        return self.contributions[rows]

    def reasons(
        self, bundle: Bundle, rows: Sequence[int], k: int | None = None
    ) -> list[list[Reason]]:
        """Top reasons of ``rows``; contributions not yet known are computed now."""
        rows = list(rows)
        if not rows:
            return []
        self.contributions_of(bundle, rows)
        k = bundle.policy.top_reasons if k is None else k
        return [
            top_reasons(
                self.contributions[r, :-1].tolist(), self.X[r].tolist(), bundle.feature_names, k
            )
            for r in rows
        ]


def compute_state(
    bundle: Bundle, events: EventArrays, as_of: date, *, contributions: bool = False
) -> ServingState:
    """The state from the events (the slow path, and the definition the rows must equal).

    ``contributions=True`` also computes SHAP for every row at or above
    :func:`reasons_threshold` (what a stored row keeps).
    """
    _check_feature_names(bundle)
    X = build_features(events, as_of)
    probability = bundle.predict_proba(X)
    contrib = np.full((events.n, X.shape[1] + 1), np.nan)
    if contributions:
        need = np.flatnonzero(probability >= reasons_threshold(bundle))
        if need.size:
            contrib[need] = bundle.contributions(X[need])
    return ServingState(
        customer_ids=[str(c) for c in events.customer_ids.tolist()],
        X=X,
        open_case=open_collection_cases(events, as_of),
        probability=probability,
        contributions=contrib,
        materialised=np.zeros(events.n, dtype=bool),
    )


def encode_rows(
    bundle: Bundle, state: ServingState, as_of: date, versions: dict[str, int]
) -> list[ServingRow]:
    """Serving rows for every customer of ``state`` whose version is known; a row keeps
    contributions only where :func:`reasons_threshold` says reasons may be shown."""
    key = model_key(bundle)
    day = to_day(as_of)
    threshold = reasons_threshold(bundle)
    out: list[ServingRow] = []
    for i, cid in enumerate(state.customer_ids):
        if cid not in versions:
            continue
        p = float(state.probability[i])
        scores = [p]
        if p >= threshold:
            if np.isnan(state.contributions[i, -1]):
                continue  # not explained yet: a row without its reasons would be incomplete
            scores += state.contributions[i].tolist()
        feats = np.append(state.X[i], float(state.open_case[i]))
        out.append(
            ServingRow(
                customer_id=cid,
                as_of_day=day,
                feature_set=FEATURE_SET_KEY,
                version=int(versions[cid]),
                features=feats.astype("<f8").tobytes(),
                model_version=key,
                scores=np.asarray(scores, dtype="<f8").tobytes(),
            )
        )
    return out


class ServingRows:
    """Read-through access to materialised serving rows for one event store.

    ``enabled=False`` always computes from the events (the baseline the benchmark
    compares against, and an escape hatch). Rows computed on a miss are written by one
    background thread in batches: a request never waits for that write, and losing one
    (a crash, a full queue) only means the next request computes it again.
    """

    def __init__(self, store: EventStore, *, enabled: bool = True, max_pending: int = 10_000):
        self.store = store
        self.enabled = enabled
        self._queue: queue.Queue[list[ServingRow] | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        self.rescored = 0  # valid rows given this model's scores (partition_state)

    # ------------------------------------------------------------------ request path
    def state(self, bundle: Bundle, customer_ids: Sequence[str], as_of: date) -> ServingState:
        """The state of ``customer_ids`` (request order): stored rows where valid, the
        rest computed from their events and queued to be stored.

        Raises :class:`UnknownCustomers` (every id the store does not hold) and
        :class:`~features.store.StoreUnavailable` (any failed read, the driver's error as
        its cause): the two errors of the request path, whatever the back end."""
        ids = [str(c) for c in customer_ids]
        found: dict[str, ServingRow] = {}
        if self.enabled:
            found = _read(
                "serving rows", self.store.read_serving_rows, ids, to_day(as_of), FEATURE_SET_KEY
            )
        misses = [c for c in ids if c not in found]
        computed: ServingState | None = None
        if misses:
            columns, versions = _read("events", self.store.read_columns_versioned, misses)
            events = _known_events(columns, misses, asked=len(ids))
            computed = compute_state(bundle, events, as_of, contributions=self.enabled)
            computed.versions = versions
            if self.enabled:
                self._write_behind(encode_rows(bundle, computed, as_of, versions))
        if not found:
            assert computed is not None
            return computed
        return self._merge(bundle, ids, found, misses, computed)

    def events(self, customer_ids: Sequence[str]) -> EventArrays:
        """The events of ``customer_ids`` (request order), for decisions computed from the
        history itself rather than from a serving row (debit dates, affordability). Raises
        as :meth:`state` does."""
        ids = [str(c) for c in customer_ids]
        return _known_events(_read("events", self.store.read_columns, ids), ids)

    @property
    def reads_locally(self) -> bool:
        """True when the store is a local SQLite file: an indexed read costs less than a
        thread hop, so a request reads inline; a network database is read off the event
        loop."""
        return getattr(self.store, "dialect", "sqlite") == "sqlite"

    def _merge(
        self,
        bundle: Bundle,
        ids: list[str],
        found: dict[str, ServingRow],
        misses: list[str],
        computed: ServingState | None,
    ) -> ServingState:
        n, f = len(ids), len(bundle.feature_names)
        if n == 1 and computed is None:  # the checkout path: one stored row, no arrays to fill
            return self._one(bundle, ids[0], found[ids[0]])
        X = np.empty((n, f))
        open_case = np.zeros(n, dtype=bool)
        probability = np.empty(n)
        contrib = np.full((n, f + 1), np.nan)
        materialised = np.array([c in found for c in ids], dtype=bool)
        hit = np.flatnonzero(materialised)
        rows = [found[ids[i]] for i in hit.tolist()]
        feats = np.frombuffer(b"".join(r.features for r in rows), dtype="<f8").reshape(-1, f + 1)
        X[hit] = feats[:, :f]
        open_case[hit] = feats[:, f] != 0
        rescore = _decode_scores_bulk(rows, hit, model_key(bundle), f, probability, contrib)
        if rescore.size:
            probability[rescore] = bundle.predict_proba(X[rescore])
        if computed is not None:
            miss = np.flatnonzero(~materialised)
            order = {c: j for j, c in enumerate(computed.customer_ids)}
            take = np.array([order[ids[i]] for i in miss.tolist()], dtype=np.intp)
            X[miss] = computed.X[take]
            open_case[miss] = computed.open_case[take]
            probability[miss] = computed.probability[take]
            contrib[miss] = computed.contributions[take]
        return ServingState(ids, X, open_case, probability, contrib, materialised, rescored=rescore)

    def _one(self, bundle: Bundle, customer_id: str, row: ServingRow) -> ServingState:
        f = len(bundle.feature_names)
        feats = np.frombuffer(row.features, dtype="<f8")
        contrib = np.full((1, f + 1), np.nan)
        probability = np.empty(1)
        rescored = np.empty(0, dtype=np.intp)
        if not _decode_scores(row, model_key(bundle), probability, contrib[0]):
            probability = bundle.predict_proba(feats[None, :f])
            rescored = np.zeros(1, dtype=np.intp)
        return ServingState(
            [customer_id],
            feats[None, :f].copy(),
            np.array([feats[f] != 0]),
            probability,
            contrib,
            np.ones(1, dtype=bool),
            rescored=rescored,
        )

    # ------------------------------------------------------------------ bulk
    def partition_state(
        self,
        bundle: Bundle,
        customer_ids: Sequence[str],
        as_of: date,
        timings: dict[str, float] | None = None,
        *,
        contiguous: bool = False,
    ) -> ServingState:
        """Bulk :meth:`state` for batch jobs: valid rows are read, the rest computed from
        one columnar read of their events and stored before returning.

        ``contiguous``: the ids are a sorted partition of
        :meth:`~features.store.EventStore.iter_customer_partitions` (every stored id between
        the first and the last), so the rows are read with one range scan."""
        clock = _Clock(timings)
        ids = [str(c) for c in customer_ids]
        found: dict[str, ServingRow] = {}
        if self.enabled and contiguous and ids:
            found = self.store.read_serving_rows_between(
                ids[0], ids[-1], to_day(as_of), FEATURE_SET_KEY
            )
        elif self.enabled:
            found = self.store.read_serving_rows(ids, to_day(as_of), FEATURE_SET_KEY)
        clock.lap("serving rows read")
        misses = [c for c in ids if c not in found]
        computed: ServingState | None = None
        if misses:
            frames, versions = self.store.read_frames_versioned(misses)
            clock.lap("store read (misses)")
            events = EventArrays.from_frames(frames, misses)
            computed = compute_state(bundle, events, as_of, contributions=True)
            clock.lap("features, predict, SHAP (misses)")
            if self.enabled:
                self.store.write_serving_rows(encode_rows(bundle, computed, as_of, versions))
                clock.lap("serving rows write")
        state = self._merge(bundle, ids, found, misses, computed)
        clock.lap("decode rows")
        if self.enabled and state.rescored.size:
            self._store_this_models_scores(bundle, state, found, as_of)
            clock.lap("rows rescored for this model")
        return state

    def _store_this_models_scores(
        self,
        bundle: Bundle,
        state: ServingState,
        found: dict[str, ServingRow],
        as_of: date,
    ) -> None:
        """Rows whose features are valid but whose scores are another model's (the
        champion changed) or unreadable (``state.rescored``): explain
        them where reasons may be shown and store this model's scores, so the next read is
        a decode again instead of a predict and SHAP. Partition reads (the refresh, batch
        scoring) store them; the one-customer request path rescores such a row on every
        request without storing it, until the next refresh or the customer's next event."""
        stale = state.rescored.tolist()
        threshold = reasons_threshold(bundle)
        explain = [i for i in stale if state.probability[i] >= threshold]
        if explain:
            state.contributions_of(bundle, explain)
        versions = {state.customer_ids[i]: found[state.customer_ids[i]].version for i in stale}
        self.store.write_serving_rows(encode_rows(bundle, state, as_of, versions))
        self.rescored += len(stale)

    def refresh(
        self,
        bundle: Bundle,
        as_of: date,
        *,
        partition_size: int = 50_000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Make every customer's row as of ``as_of`` valid; returns how many were
        (re)computed. Incremental: customers whose row is still valid cost one read."""
        computed = 0
        for part in self.store.iter_customer_partitions(partition_size):
            state = self.partition_state(bundle, part, as_of, contiguous=True)
            computed += int((~state.materialised).sum())
            if progress:
                progress(len(part))
        return computed

    # ------------------------------------------------------------------ write-behind
    def _write_behind(self, rows: list[ServingRow]) -> None:
        if not rows:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            self.dropped += len(rows)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tijdig-serving-rows", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < 256:  # group what has queued up into one transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is None for item in items)
            batch = [row for item in items if item is not None for row in item]
            try:
                if batch:
                    self.store.write_serving_rows(batch)
            except Exception as exc:  # a cache write: log it, never fail a request
                self.dropped += len(batch)
                log.warning("serving_rows_write_failed", rows=len(batch), error=repr(exc))
            finally:
                for _ in items:
                    self._queue.task_done()
            if stop:
                return

    def flush(self) -> None:
        """Wait until every queued row is written (tests, shutdown)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10.0)
        self._thread = None


def _decode_scores(
    row: ServingRow, key: str, probability: np.ndarray, contributions: np.ndarray
) -> bool:
    """Fill ``probability[0]`` (and ``contributions`` where stored) from a row's scores;
    False when the row holds no scores of the model ``key`` (or scores of another width,
    as :func:`_decode_scores_bulk` decides: the row is then scored again, not misread).
    The one-row path of a served request; the bulk one costs more for a single row."""
    if row.model_version != key or row.scores is None:
        return False
    size = len(row.scores)
    if size == 8:
        probability[0] = np.frombuffer(row.scores, dtype="<f8")[0]
        return True
    if size != 8 * (contributions.size + 1):
        return False
    scores = np.frombuffer(row.scores, dtype="<f8")
    probability[0] = scores[0]
    contributions[:] = scores[1:]
    return True


def _decode_scores_bulk(
    rows: list[ServingRow],
    at: np.ndarray,
    key: str,
    n_features: int,
    probability: np.ndarray,
    contributions: np.ndarray,
) -> np.ndarray:
    """:func:`_decode_scores` for many rows at once: row ``j`` fills position ``at[j]``.

    Scores are either the probability alone or the probability and ``n_features + 1``
    contributions, so each kind is joined and decoded in one ``frombuffer`` (row by row
    it took 3.7 s of a 1,000,000-customer warm batch). Returns the positions whose rows
    hold no scores of the model ``key`` (features valid, to be predicted again)."""
    width = 8 * (n_features + 2)
    size = np.fromiter(
        (len(r.scores) if r.scores is not None and r.model_version == key else 0 for r in rows),
        dtype=np.int64,
        count=len(rows),
    )
    alone, explained = np.flatnonzero(size == 8), np.flatnonzero(size == width)
    if alone.size:
        probability[at[alone]] = np.frombuffer(
            b"".join([rows[j].scores for j in alone.tolist()]),  # type: ignore[misc]
            dtype="<f8",
        )
    if explained.size:
        both = np.frombuffer(
            b"".join([rows[j].scores for j in explained.tolist()]),  # type: ignore[misc]
            dtype="<f8",
        ).reshape(-1, n_features + 2)
        probability[at[explained]] = both[:, 0]
        contributions[at[explained]] = both[:, 1:]
    return at[(size != 8) & (size != width)]


def _read(what: str, read: Callable[..., T], *args: Any) -> T:
    """``read(*args)``; any failure is a :class:`StoreUnavailable` naming ``what``, with
    the driver's error as its cause (the caller tells a refused value from an outage)."""
    try:
        return read(*args)
    except Exception as exc:
        raise StoreUnavailable(f"{what} could not be read ({type(exc).__name__})") from exc


def _known_events(
    columns: dict[str, dict[str, Any]], ids: list[str], asked: int | None = None
) -> EventArrays:
    """The events of ``ids``, or :class:`UnknownCustomers` naming every unknown one.
    ``asked``: how many ids the request held, when ``ids`` are only those without a
    serving row."""
    known = set(columns["customers"]["customer_id"].tolist())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UnknownCustomers(unknown, asked or len(ids))
    return EventArrays.from_columns(columns, ids)


class _Clock:
    """Adds the seconds between laps to ``timings[step]`` (no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


def _check_feature_names(bundle: Bundle) -> None:
    if tuple(bundle.feature_names) != FEATURE_NAMES:
        raise ValueError(
            f"bundle {bundle.version} expects features {len(bundle.feature_names)} that are not "
            f"this build's feature set {FEATURE_SET_KEY}; retrain"
        )


__all__ = [
    "FEATURE_SET_KEY",
    "ServingRows",
    "ServingState",
    "UnknownCustomers",
    "compute_state",
    "encode_rows",
    "model_key",
    "reasons_threshold",
]

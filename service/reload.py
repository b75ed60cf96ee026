"""A bundle reload reaches every worker of a server, not only the one that took the call.

``POST /admin/reload`` arrives at one worker process; the others each hold their own
bundle. So the worker that takes the call loads and checks the bundle, swaps it in,
and only then *announces* it: it writes the next generation number and the bundle's
URI to a small file shared by the workers of one ``tijdig serve`` (made by the
supervisor, :func:`service.server.serve`). Every worker looks at the file's stamp every
``reload_poll_seconds`` (one ``stat``) and, when it finds a generation newer than its
own, loads that bundle in a thread and swaps it in the same way. A worker that cannot
load it keeps serving the bundle it has, retries at every look, and says so in
``/readyz`` (503), since it now answers differently from its siblings. A worker started
later (a crashed one replaced by the supervisor) loads the announced bundle, not the
configured one.

Without the file (one process, tests, an app embedded elsewhere) a reload is local, as
there is no other worker to tell.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("tijdig.service")


@dataclass(frozen=True)
class Behind:
    """This worker could not load the ``generation``-th announced bundle, and why."""

    generation: int
    reason: str  # the error, for the log
    public_reason: str = ""  # for /readyz: no paths, hosts or driver messages


@dataclass(frozen=True)
class Announcement:
    """The bundle every worker should serve: the ``generation``-th reload's URI."""

    generation: int
    model_uri: str


class ReloadAnnouncements:
    """The announcement file of one server's workers (JSON; replaced atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._seen_stamp: tuple[int, int] | None = None

    @classmethod
    def create(cls, path: Path, model_uri: str) -> ReloadAnnouncements:
        """Generation 0: the configured bundle. Called by the supervisor before any
        worker starts."""
        path.parent.mkdir(parents=True, exist_ok=True)
        announcements = cls(path)
        announcements._write(Announcement(0, model_uri))
        return announcements

    def remove(self) -> None:
        """Delete the file and its lock (the supervisor, when the server stops)."""
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)

    def read(self) -> Announcement | None:
        """The current announcement; None when the file is missing or unreadable."""
        try:
            doc = json.loads(self.path.read_text())
            return Announcement(int(doc["generation"]), str(doc["model_uri"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def announce(self, model_uri: str) -> int:
        """Announce ``model_uri`` as the next generation; returns its number. Two workers
        announcing at once each get their own number (an exclusive lock around the
        read and the write)."""
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.read()
                generation = (current.generation if current else 0) + 1
                self._write(Announcement(generation, model_uri))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return generation

    def changed(self) -> bool:
        """Whether the file changed since the last call (a ``stat``; True the first time)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        stamp = (st.st_mtime_ns, st.st_ino)  # a replaced file has a new inode
        if stamp == self._seen_stamp:
            return False
        self._seen_stamp = stamp
        return True

    def look_again(self) -> None:
        """Make the next :meth:`changed` say True (to retry a reload that failed here)."""
        self._seen_stamp = None

    def _write(self, announcement: Announcement) -> None:
        doc = {
            "generation": announcement.generation,
            "model_uri": announcement.model_uri,
            "announced_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "by_pid": os.getpid(),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)


def swap_bundle(state: Any, uri: str, tracking_uri: str) -> tuple[Any, Any, float]:
    """Load and check the bundle at ``uri``, then swap it in: ``(old, new, load_ms)``.
    Raises :class:`models.bundle.BundleError` (the current bundle keeps serving). The
    caller holds ``state.reload_lock``."""
    import gc

    # imported here: the supervisor imports this module
    from service.bundle_loader import load_checked_bundle

    started = time.perf_counter()
    new = load_checked_bundle(
        uri, tracking_uri, parse_timeout_s=state.settings.bundle_parse_timeout_seconds
    )
    load_ms = (time.perf_counter() - started) * 1000
    old = state.bundle
    state.bundle = new  # the swap: one reference assignment
    state.bundle_error = state.bundle_reason = None
    state.metrics.set_model(new.version, new.policy.version)
    gc.freeze()  # the new bundle's objects are long-lived too
    return old, new, load_ms


def record_reload(
    state: Any,
    old: Any,
    new: Any,
    uri: str,
    load_ms: float,
    generation: int | None,
    *,
    announced_by_another_worker: bool = False,
) -> None:
    """After a swap: the worker now serves ``generation`` (None: a local reload, no
    siblings), is no longer behind them, and logs the reload once."""
    if generation is not None:
        state.generation = generation
    state.reload_behind = None
    log.info(
        "bundle_reloaded",
        model_uri=uri,
        model_version=new.version,
        previous_version=old.version if old is not None else None,
        load_ms=round(load_ms, 1),
        generation=generation,
        announced_by_another_worker=announced_by_another_worker,
    )


async def follow_announcements(
    state: Any, announcements: ReloadAnnouncements, every_s: float
) -> None:
    """Runs for a worker's life: swap in each bundle another worker announces."""
    while True:
        await asyncio.sleep(every_s)
        if not announcements.changed():
            continue
        wanted = announcements.read()
        if wanted is None or wanted.generation <= state.generation:
            continue
        if not state.reload_lock.acquire(blocking=False):
            announcements.look_again()  # this worker is reloading by itself: next look
            continue
        try:
            old, new, load_ms = await asyncio.to_thread(
                swap_bundle, state, wanted.model_uri, state.settings.mlflow_tracking_uri
            )
        except Exception as exc:
            announcements.look_again()
            from service.bundle_loader import public_reason

            behind = Behind(wanted.generation, f"{type(exc).__name__}: {exc}", public_reason(exc))
            if state.reload_behind != behind:  # once per failure, not at every look
                log.error(
                    "announced_reload_failed",
                    generation=behind.generation,
                    model_uri=wanted.model_uri,
                    error=behind.reason,
                )
            state.reload_behind = behind
        else:
            record_reload(
                state,
                old,
                new,
                wanted.model_uri,
                load_ms,
                wanted.generation,
                announced_by_another_worker=True,
            )
        finally:
            state.reload_lock.release()

"""Dask for batch work: ``--dask local:N`` or ``--dask tcp://HOST:PORT``.

:func:`dask_executor` opens the cluster a ``--dask`` value names and yields a
:class:`concurrent.futures.Executor` over it, so batch code written against executors
(:func:`training.batch_scoring.score_batch`) runs on Dask unchanged:

``local:N``          a :class:`distributed.LocalCluster` on this machine: N worker
                     processes, this machine's cores shared among them (at least one
                     thread each), bound to 127.0.0.1, closed afterwards
``tcp://HOST:PORT``  an existing scheduler (``dask scheduler`` and ``dask worker``
                     started elsewhere); its workers must be able to import tijdig and
                     read the paths a task names (the offline copy: a shared folder)

Without ``--dask`` batch work runs in this process, as it always has.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["DaskCluster", "dask_executor", "parse_dask"]

_LOCAL = re.compile(r"local:(\d+)")


@dataclass(frozen=True)
class DaskCluster:
    """An open cluster: the executor to submit to, its workers and their threads."""

    executor: Executor
    client: Any  # distributed.Client
    workers: int
    threads_per_worker: int
    address: str


def parse_dask(spec: str) -> tuple[str, int | None]:
    """``("local", N)`` or ``("scheduler", None)`` for a ``--dask`` value; ValueError with
    the accepted forms otherwise."""
    m = _LOCAL.fullmatch(spec.strip())
    if m:
        n = int(m.group(1))
        if n < 1:
            raise ValueError(f"--dask local:N needs N >= 1; got {spec!r}")
        return "local", n
    if re.fullmatch(r"(tcp|tls)://[^\s/]+:\d+", spec.strip()):
        return "scheduler", None
    raise ValueError(
        f"--dask must be local:N (a local cluster of N worker processes) or "
        f"tcp://HOST:PORT (an existing scheduler); got {spec!r}"
    )


@contextmanager
def dask_executor(spec: str, *, timeout_s: float = 60.0) -> Iterator[DaskCluster]:
    """Open the cluster ``spec`` names (see the module doc); closes what it started."""
    from distributed import Client, LocalCluster

    kind, n = parse_dask(spec)
    if kind == "local":
        assert n is not None
        threads = max(1, (os.cpu_count() or 1) // n)
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=threads,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster, timeout=timeout_s) as client,
        ):
            yield DaskCluster(client.get_executor(), client, n, threads, cluster.scheduler_address)
        return
    with Client(spec.strip(), timeout=timeout_s) as client:
        info = client.scheduler_info()["workers"]
        if not info:
            raise RuntimeError(f"the Dask scheduler at {spec} has no workers")
        threads = min(int(w.get("nthreads", 1)) for w in info.values())
        yield DaskCluster(client.get_executor(), client, len(info), threads, spec.strip())

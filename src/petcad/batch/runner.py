"""Run one function per study: in this process, or on a Dask distributed cluster.

The function receives a :class:`StudyTask` and writes the task's outputs itself (atomically,
through :mod:`petcad.io.atomic`), so an output file either exists whole or not at all;
that is what makes skipping finished studies safe. Its return value (small: a dict of
figures) is collected in the :class:`BatchReport`.

A study that fails with :class:`~petcad.errors.InputError` does not stop the others: its
message is collected, the remaining studies run, and :func:`run_tasks` raises one
``InputError`` naming the failed studies at the end (exit status 2 on the command line),
leaving the finished studies' outputs in place for the re-run.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from petcad.batch.shard import Shard, in_shard
from petcad.errors import InputError


@dataclass(frozen=True)
class StudyTask:
    """One study of a batch run.

    key : the study key (manifest ``patient_id`` or the series path relative to the cohort
        root); it decides the shard and names the study in messages.
    outputs : the files the task writes; when all exist, the task is skipped.
    payload : whatever the task function needs (picklable for Dask: paths, settings).
    """

    key: str
    outputs: tuple[Path, ...]
    payload: Any = None

    def done(self) -> bool:
        return bool(self.outputs) and all(Path(p).exists() for p in self.outputs)


@dataclass
class BatchReport:
    """What a batch run did; ``results`` maps study key -> the task function's return value."""

    shard: Shard
    backend: str
    n_total: int = 0
    not_in_shard: int = 0
    skipped: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"shard {self.shard}: {len(self.done)} studies processed, {len(self.skipped)} already done (skipped), "
                f"{len(self.failed)} failed, {self.not_in_shard} in other shards; {self.seconds:.1f} s ({self.backend})")


def run_tasks(fn: Callable[[StudyTask], Any], tasks: Sequence[StudyTask], *, shard: Shard = Shard(),
              scheduler: str | None = None, skip_existing: bool = True, progress: bool = False) -> BatchReport:
    """Run ``fn`` on every task of ``shard`` whose outputs do not all exist yet.

    ``scheduler``: ``None`` runs in this process, one study after another; ``"local"`` (or
    ``"local:N"`` for N worker processes, default 2) starts a Dask ``LocalCluster``; any
    other value is a Dask scheduler address (``tcp://host:8786``). ``fn`` must be a
    module-level function so that Dask can send it to the workers.
    """
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})[0]
        raise InputError("batch", f"study key {dup!r} appears twice")
    report = BatchReport(shard=shard, backend="in-process" if scheduler is None else f"dask ({scheduler})",
                         n_total=len(tasks))
    todo = []
    for t in tasks:
        if not in_shard(t.key, shard):
            report.not_in_shard += 1
        elif skip_existing and t.done():
            report.skipped.append(t.key)
        else:
            todo.append(t)
    t0 = time.perf_counter()
    if scheduler is None:
        _run_local(fn, todo, report, progress)
    else:
        _run_dask(fn, todo, report, scheduler, progress)
    report.seconds = time.perf_counter() - t0
    if report.failed:
        first = next(iter(report.failed.items()))
        raise InputError("batch", f"{len(report.failed)} of {len(todo)} studies failed (the others were written; "
                                  f"re-run to retry only the failed ones); first: study {first[0]}: {first[1]}")
    return report


def _run_one(report: BatchReport, key: str, call) -> None:
    """Run ``call()`` for study ``key``: its result, or its bad-input message, goes into ``report``."""
    try:
        result = call()
    except InputError as exc:
        report.failed[key] = str(exc)
    else:
        report.done.append(key)
        report.results[key] = result


def _run_local(fn, todo, report, progress) -> None:
    for i, t in enumerate(todo, 1):
        _run_one(report, t.key, lambda: fn(t))
        if progress:
            print(f"[{i}/{len(todo)}] study {t.key} done", file=sys.stderr)


def _client(scheduler: str):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--scheduler", "the Dask backend needs dask[distributed]: pip install 'petcad[dask]'") from None
    if scheduler == "local" or scheduler.startswith("local:"):
        n = scheduler.partition(":")[2] or "2"
        if not n.isdigit() or int(n) < 1:
            raise InputError("--scheduler", f"expected local or local:N with N >= 1 workers, got {scheduler!r}")
        # one thread per worker process: the studies are the parallel unit, and torch/numba
        # inside a worker then use one core each
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None,
                               env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="30s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("--scheduler", f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__})") from None


def _run_dask(fn, todo, report, scheduler, progress) -> None:
    from distributed import as_completed

    client, cluster = _client(scheduler)
    try:
        futures = {client.submit(fn, t, key=f"petcad-{os.getpid()}-{i}", pure=False): t for i, t in enumerate(todo)}
        for n, fut in enumerate(as_completed(futures), 1):
            t = futures[fut]
            _run_one(report, t.key, fut.result)
            if progress:
                print(f"[{n}/{len(todo)}] study {t.key} done", file=sys.stderr)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

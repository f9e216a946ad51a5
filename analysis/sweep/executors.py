"""Where tasks run.  Each executor takes tasks (see :mod:`analysis.sweep.runner`) and yields
``(task, outputs)`` as tasks finish, in completion order, where ``outputs`` is the list of
RunOutput or, if the task raised, the exception (the other tasks go on); the caller alone writes
results.

- :class:`SerialExecutor`  in this process, one task after another (``workers=0``).
- :class:`LocalExecutor`   ``concurrent.futures.ProcessPoolExecutor`` over the local cores (spawned
                           processes, one torch thread each).
- :class:`DaskExecutor`    a ``dask.distributed.Client``: an existing scheduler (``tcp://HOST:PORT``),
                           or a ``LocalCluster`` started here (and closed on exit).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Iterable, Iterator

from .runner import run_task


class SerialExecutor:
    """Run tasks in this process."""

    name = "serial"
    workers = 1
    local = True

    def run(self, tasks: Iterable[dict]) -> Iterator[tuple[dict, list]]:
        for t in tasks:
            try:
                out = run_task(t)
            except Exception as exc:  # noqa: BLE001 - reported per task by the caller
                out = exc
            yield t, out

    def close(self, kill: bool = False) -> None:
        pass


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """Tasks on ``workers`` spawned processes (default: the number of CPU cores), each with
    ``threads`` torch threads (default 1: the processes share the cores)."""

    name = "local"
    local = True

    def __init__(self, workers: int | None = None, threads: int = 1):
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker, initargs=(threads,))

    def run(self, tasks: Iterable[dict]) -> Iterator[tuple[dict, list]]:
        futures = {self.pool.submit(run_task, t): t for t in tasks}
        try:
            for fut in cf.as_completed(futures):
                exc = fut.exception()
                yield futures[fut], fut.result() if exc is None else exc
        finally:
            for fut in futures:
                fut.cancel()

    def close(self, kill: bool = False) -> None:
        procs = list(getattr(self.pool, "_processes", {}).values()) if kill else []
        self.pool.shutdown(wait=not kill, cancel_futures=True)
        for p in procs:  # interrupted: the workers' half-done tasks are not wanted
            if p.is_alive():
                p.terminate()


class DaskExecutor:
    """Tasks on a Dask distributed cluster.  ``scheduler``: an address ``tcp://HOST:PORT``, a
    ``dask.distributed.Client``, or None for a ``LocalCluster`` of ``workers`` processes (one
    thread each, no dashboard) owned and closed by this executor."""

    name = "dask"
    local = False

    def __init__(self, scheduler=None, workers: int | None = None, threads: int | None = 1):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - dask is an optional dependency
            raise ImportError("running a sweep on Dask needs dask.distributed: pip install 'odenet[dask]'") from None

        self.threads = threads
        self._own_cluster = self._own_client = None
        if isinstance(scheduler, Client):
            self.client = scheduler
        else:
            if scheduler is None:
                self._own_cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                                 processes=True, dashboard_address=None)
                scheduler = self._own_cluster
            self.client = self._own_client = Client(scheduler)
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def run(self, tasks: Iterable[dict]) -> Iterator[tuple[dict, list]]:
        from dask.distributed import as_completed

        tasks = list(tasks)
        if not tasks:
            return
        futures = [self.client.submit(run_task, dict(t, threads=t.get("threads") or self.threads), pure=False)
                   for t in tasks]
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        try:
            for fut in as_completed(futures):
                try:
                    out = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported per task by the caller
                    out = exc
                yield by_key[fut.key], out
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self, kill: bool = False) -> None:
        if self._own_client is not None:
            self._own_client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


def check_workers(workers) -> None:
    """ValueError unless ``workers`` is None or an int >= 0."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be a non-negative int (0: this process); got {workers!r}")


def make_executor(workers: int | None = None, scheduler=None, dask: bool = False):
    """The executor for these options: Dask if ``scheduler`` or ``dask``, else local processes
    (``workers`` >= 1, default all cores), or this process for ``workers == 0``."""
    check_workers(workers)
    if scheduler is not None or dask:
        return DaskExecutor(scheduler, workers)
    if workers == 0:
        return SerialExecutor()
    return LocalExecutor(workers)

"""Where tasks run.  Each executor takes tasks (see :mod:`analysis.experiments.sweep.runner`) and yields
``(task, outputs)`` as tasks finish, in completion order, where ``outputs`` is the list of
RunOutput or, if the task raised, the exception (the other tasks go on); the caller alone writes
results.

- :class:`SerialExecutor`  in this process, one task after another (``workers=0``).
- :class:`LocalExecutor`   ``concurrent.futures.ProcessPoolExecutor`` over the local cores (spawned
                           processes, one torch thread each) that exit when their parent dies.
- :class:`DaskExecutor`    a ``dask.distributed.Client``: an existing scheduler (``tcp://HOST:PORT``),
                           or a ``LocalCluster`` started here (and closed on exit); waits at most
                           ``timeout`` seconds for a first worker (:class:`NoWorkersError`).

Any object with the attributes and methods of :class:`Executor` can be passed to ``run_sweep``.
An executor's ``events`` attribute, when set (``run_sweep`` sets it to the output's event log),
receives one line per worker lost (``worker-lost ...``) and per task retried (``retry <id> ...``).
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable, Protocol

from analysis.experiments.sweep.runner import RunOutput, run_task

if TYPE_CHECKING:
    from dask.distributed import Client

#: What an executor yields per task: the task and its outputs, or the exception it raised.
Finished = Generator[tuple[dict, "list[RunOutput] | BaseException"], None, None]


#: seconds a Dask client waits for its first worker before NoWorkersError
DASK_TIMEOUT = 60.0


class Executor(Protocol):
    """What :func:`~analysis.experiments.sweep.run_sweep` needs of an executor (its ``executor=``).

    ``name`` for messages; ``workers``: how many tasks run at once (tasks are planned to keep
    them busy); ``local``: the workers share this machine's files (they may append to the task's
    ``log``); ``events``: set by the caller, receives one line per worker lost or task retried.
    """

    name: str
    workers: int
    local: bool
    events: Callable[[str], None] | None

    def run(self, tasks: Iterable[dict]) -> Finished:
        """Run ``tasks`` (:func:`~analysis.experiments.sweep.runner.run_task`'s dicts) and yield
        ``(task, outputs)`` in completion order, ``outputs`` being the task's list of RunOutput
        or the exception it raised (the other tasks go on).  Closing the generator cancels the
        tasks not yet started."""
        ...

    def close(self, kill: bool = False) -> None:
        """Release the workers; ``kill``: without waiting for the tasks running."""
        ...


class SerialExecutor:
    """Run tasks in this process."""

    name = "serial"
    workers = 1
    local = True
    events: Callable[[str], None] | None = None

    def run(self, tasks: Iterable[dict]) -> Finished:
        """Run the tasks one after another in this process (see :class:`Executor`)."""
        for t in tasks:
            out: list[RunOutput] | BaseException
            try:
                out = run_task(t)
            except Exception as exc:  # noqa: BLE001 - reported per task by the caller
                out = exc
            yield t, out

    def close(self, kill: bool = False) -> None:
        """Nothing to release."""


PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: Seconds between two looks of a worker's watchdog at its parent.
WATCHDOG_INTERVAL = 0.5


def exit_with_parent(parent: int) -> None:
    """Make this process end when process ``parent`` (its parent) ends, however it ends (SIGKILL
    included): on Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread looks every WATCHDOG_INTERVAL s whether the parent is still the
    parent (an orphan is adopted by another process) and exits at once if not.  (Linux sends
    the signal when the parent's *thread* that started the worker ends: the pool starts its
    workers from the thread that submits the tasks, which outlives the pool in ``run_sweep``.)"""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog alone
            pass
    if os.getppid() != parent:  # the parent died before the request above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_INTERVAL)
        os._exit(1)  # no cleanup: the parent, which alone writes results, is gone

    threading.Thread(target=watch, name="odenet-parent-watchdog", daemon=True).start()


def _init_worker(threads: int, parent: int) -> None:
    exit_with_parent(parent)
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """Tasks on ``workers`` spawned processes (default: the number of CPU cores), each with
    ``threads`` torch threads (default 1: the processes share the cores)."""

    name = "local"
    local = True
    events: Callable[[str], None] | None = None

    def __init__(self, workers: int | None = None, threads: int = 1):
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker, initargs=(threads, os.getpid()))

    def run(self, tasks: Iterable[dict]) -> Finished:
        """Submit every task to the pool and yield them as they finish (see :class:`Executor`).
        A worker that dies breaks the pool: every task still queued yields BrokenProcessPool,
        logged once as ``worker-lost`` to ``events``."""
        futures = {self.pool.submit(run_task, t): t for t in tasks}
        lost = False
        try:
            for fut in cf.as_completed(futures):
                exc = fut.exception()
                if isinstance(exc, cf.process.BrokenProcessPool) and not lost and self.events:
                    lost = True  # one line for the pool: every task still queued fails with it
                    self.events(f"worker-lost local pool: {exc}".replace("\n", " "))
                yield futures[fut], fut.result() if exc is None else exc
        finally:
            for fut in futures:
                fut.cancel()

    def close(self, kill: bool = False) -> None:
        """Shut the pool down, cancelling queued tasks; ``kill``: terminate the workers at once
        instead of waiting for their running tasks."""
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
    events: Callable[[str], None] | None = None

    def __init__(self, scheduler: str | Client | None = None, workers: int | None = None,
                 threads: int | None = 1, *, timeout: float = DASK_TIMEOUT):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - dask is an optional dependency
            raise ImportError("running a sweep on Dask needs dask.distributed: pip install 'odenet[dask]'") from None

        self.threads = threads
        self._own_cluster = self._own_client = None
        target: Any = scheduler  # what the client connects to: an address, or the cluster started here
        if isinstance(scheduler, Client):
            self.client = scheduler
        else:
            if scheduler is None:
                self._own_cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                                 processes=True, dashboard_address=None)
                target = self._own_cluster
            self.client = self._own_client = Client(target, timeout=timeout)
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError) as exc:  # dask's TimeoutError is the builtin one
            address = getattr(self.client.scheduler, "address", target)
            self.close()
            raise NoWorkersError(f"the Dask scheduler {address} has no worker after dask_timeout (--dask-timeout) "
                                 f"= {timeout:g} s; start workers (dask worker {address}) or wait longer") from exc
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def run(self, tasks: Iterable[dict]) -> Finished:
        """Submit every task to the cluster (``threads`` torch threads each) and yield them as
        they finish (see :class:`Executor`).  A worker lost mid-task is logged to ``events``
        (``worker-lost``, ``retry <id>``); the scheduler reruns its tasks elsewhere."""
        from dask.distributed import as_completed

        tasks = list(tasks)
        if not tasks:
            return
        futures = [self.client.submit(run_task, dict(t, threads=t.get("threads") or self.threads), pure=False)
                   for t in tasks]
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        events = self.events

        def on_event(event: Any) -> None:  # the scheduler's "all" topic, on the client's event loop
            if events is None:  # (subscribed only when set)
                return
            msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
            if not isinstance(msg, dict) or msg.get("action") != "remove-worker" or msg.get("expected"):
                return
            keys = [k for k in msg.get("processing-tasks") or () if k in by_key]
            events(f"worker-lost {msg.get('worker')} running {len(keys)} task(s)")
            for k in keys:  # the scheduler reruns them elsewhere (KilledWorker after too many losses)
                for rid, _ in by_key[k]["runs"]:
                    events(f"retry {rid} worker {msg.get('worker')} lost")

        if events:
            self.client.subscribe_topic("all", on_event)
        try:
            for fut in as_completed(futures):
                try:
                    out = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported per task by the caller
                    out = exc
                yield by_key[fut.key], out
        finally:
            self.client.cancel([f for f in futures if not f.done()])
            if events:
                with contextlib.suppress(Exception):  # a closed connection has nothing to unsubscribe
                    self.client.unsubscribe_topic("all")

    def close(self, kill: bool = False) -> None:
        """Close the client, then the cluster this executor started (each with a timeout), so that
        the workers end before the nannies would kill them."""
        if self._own_client is not None:
            with contextlib.suppress(Exception):
                self._own_client.close(timeout=CLOSE_TIMEOUT)
            self._own_client = None
        if self._own_cluster is not None:
            cluster, self._own_cluster = self._own_cluster, None
            with contextlib.suppress(Exception):  # the nannies' own close waits only 4 s for a worker to exit
                cluster.sync(_close_workers, cluster, CLOSE_TIMEOUT)
            with contextlib.suppress(Exception):
                cluster.close(timeout=CLOSE_TIMEOUT)


async def _close_workers(cluster, timeout: float) -> None:
    """Close a LocalCluster's workers (nannies) giving each ``timeout`` seconds to exit."""
    import asyncio

    await asyncio.gather(*(w.close(timeout=timeout) for w in list(cluster.workers.values())))


class NoWorkersError(TimeoutError):
    """A Dask scheduler had no worker within the timeout."""


#: Seconds to close a Dask client or cluster.
CLOSE_TIMEOUT = 30


def check_workers(workers: Any) -> None:
    """ValueError unless ``workers`` is None or an int >= 0."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be a non-negative int (0: this process); got {workers!r}")


def check_timeout(timeout: Any) -> float:
    """ValueError unless ``timeout`` (dask_timeout, --dask-timeout) is a finite number > 0."""
    import math

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ValueError(f"dask_timeout (--dask-timeout) must be a finite number of seconds > 0; got {timeout!r}")
    return float(timeout)


def make_executor(workers: int | None = None, scheduler: str | Client | None = None, dask: bool = False, *,
                  dask_timeout: float = DASK_TIMEOUT) -> Executor:
    """The executor for these options: Dask if ``scheduler`` or ``dask`` (waiting at most
    ``dask_timeout`` s for a worker), else local processes (``workers`` >= 1, default all
    cores), or this process for ``workers == 0``.  ValueError for a negative ``workers`` or a
    ``dask_timeout`` that is not a finite number > 0, before anything starts;
    :class:`NoWorkersError` when a Dask scheduler has no worker in time."""
    check_workers(workers)
    check_timeout(dask_timeout)
    if scheduler is not None or dask:
        return DaskExecutor(scheduler, workers, timeout=dask_timeout)
    if workers == 0:
        return SerialExecutor()
    return LocalExecutor(workers)

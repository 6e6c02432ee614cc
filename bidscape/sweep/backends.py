"""Where runs execute: in this process, a local process pool, or Ray (a local instance or a cluster).

Each backend takes the runs to do and a ``report(task, outcome)`` callback, called in this
process as each run finishes, in completion order. At most a few runs are submitted ahead
of the workers, so Ctrl-C stops submitting at once: runs not started are cancelled, runs in
flight are interrupted (their folders say "failed"), and the ``KeyboardInterrupt`` goes on
to the caller. Runs never reported stay "pending" in the index.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import socket
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Optional

from bidscape.errors import InputError, Problem
from bidscape.sweep import worker
from bidscape.sweep.worker import Outcome

BACKENDS = ("local", "ray")
RAY_INSTALL = "install the ray extra: pip install 'bidscape[ray]'"


@dataclass(frozen=True)
class Task:
    run_id: str
    scenario: dict[str, Any]
    folder: str
    seed: int


Report = Callable[[Task, Outcome], None]


def check_backend(backend: str, workers: Optional[int], address: Optional[str]) -> None:
    """Bad backend settings are input errors, raised before anything is written."""
    if backend not in BACKENDS:
        from bidscape.errors import did_you_mean

        raise InputError(Problem("--backend", f"unknown backend '{backend}'",
                                 f"{did_you_mean(backend, BACKENDS)}use local or ray"))
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(Problem("--workers", f"must be a whole number >= 1 (got {workers!r})", "use e.g. --workers 2"))
    if address is not None and backend != "ray":
        raise InputError(Problem("--address", "a cluster address needs the ray backend",
                                 "add --backend ray, or leave out --address"))
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise InputError(Problem("--backend", "the ray backend needs ray, which is not installed", RAY_INSTALL))
    if address is not None:
        _check_reachable(address)


def run_local(tasks: list[Task], workers: Optional[int], report: Report) -> None:
    """One run at a time in this process (``workers=1``), else a spawn process pool."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            report(task, worker.run_one(task.scenario, task.folder, task.seed))
        return
    # spawn, not fork: numba's threading layer and forked copies of it do not mix
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                               initializer=worker.init_pool_worker, initargs=({"NUMBA_NUM_THREADS": "1"},))
    queue, running = deque(tasks), {}
    interrupted = False
    try:
        while queue or running:
            while queue and len(running) < workers:  # submit no further ahead: Ctrl-C leaves nothing queued
                task = queue.popleft()
                running[pool.submit(worker.run_one, task.scenario, task.folder, task.seed)] = task
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                report(running.pop(future), _pool_outcome(future))
    except KeyboardInterrupt:
        interrupted = True
        started = [future for future in running if not future.cancel()]
        for future in wait(started).done:  # in-flight runs got Ctrl-C too (or end soon): record how
            report(running.pop(future), _pool_outcome(future))
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)


def _check_reachable(address: str) -> None:
    """A HOST:PORT nobody answers at is an input error now; Ray itself would retry for minutes."""
    host, _, port = address.rpartition(":")
    if address in ("auto", "local") or "://" in address or not host or not port.isdigit():
        return  # Ray resolves these itself (and fails fast)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise InputError(Problem("--address", f"nothing answers at '{address}' ({error.strerror or error})",
                                 "start the cluster (`ray start --head`) or check the address")) from None


def _pool_outcome(future: Future) -> Outcome:
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", None, "interrupted"
    # the worker process died (killed, out of memory): the pool is broken for the rest too
    return "failed", None, f"worker process died ({type(error).__name__}: {error})"


def run_ray(tasks: list[Task], workers: Optional[int], address: Optional[str], report: Report) -> None:
    """One Ray task per run on a local Ray instance (``workers`` CPUs) or the cluster at ``address``.

    A worker that dies is retried by Ray (``max_retries``); a run that raises is reported
    failed by ``run_one`` and never retried. Ray is shut down only if this call started it.
    """
    try:
        import ray
    except ImportError:
        raise InputError(Problem("--backend", "the ray backend needs ray, which is not installed",
                                 RAY_INSTALL)) from None
    started = False
    if not ray.is_initialized():
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address:
            try:
                ray.init(address=address, **quiet)
            except (ConnectionError, ValueError) as error:  # nobody there; a malformed address
                raise InputError(Problem("--address", f"cannot connect to Ray at '{address}' ({error})",
                                         "start the cluster (`ray start --head`) or check the address")) from None
        else:
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
        started = True
    # application errors never reach Ray: run_one returns them as failed outcomes
    remote = ray.remote(max_retries=3, retry_exceptions=False, num_cpus=1)(worker.run_one_in_ray)
    limit = workers or len(tasks)  # on a cluster, --workers caps the runs in flight
    queue, running = deque(tasks), {}
    try:
        while queue or running:
            while queue and len(running) < limit:
                task = queue.popleft()
                running[remote.remote(task.scenario, task.folder, task.seed)] = task
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                task = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    continue
                except ray.exceptions.RayError as error:  # retries used up: the worker kept dying
                    outcome = ("failed", None, f"{type(error).__name__}: {str(error).splitlines()[0]}")
                report(task, outcome)
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt: its folder says "failed"
        raise
    finally:
        if started:
            ray.shutdown()

"""Where runs execute: in this process, a local process pool, or Ray (a local instance or a cluster).

Each backend takes the runs to do and a ``report(task, outcome)`` callback, called in this
process as each run finishes, in completion order. At most a few runs are submitted ahead
of the workers, so an interruption (Ctrl-C, or SIGTERM/SIGHUP made ``Interrupted`` by the
caller) stops submitting at once: runs not started are cancelled, runs in flight are
interrupted (the signal is passed on to the workers; their folders record it), and the
exception goes on to the caller. Runs never reported stay "pending" in the index.

Pool workers end with this process however it ends, SIGKILL included
(``bidscape.processes``); a local Ray instance started here is shut down on every path out.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from bidscape.errors import InputError, Interrupted, Problem
from bidscape.sweep import main_script, worker
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


def pool_settings(backend: str, workers: Optional[int]) -> tuple[bool, list[str]]:
    """For a process pool: whether to start workers without the main script, and the plug-in
    modules they import then (``main_script``); raised before anything is written."""
    if backend != "local" or (workers or os.cpu_count() or 1) == 1:
        return False, []
    return main_script.check_workers_can_start()


def run_local(tasks: list[Task], workers: Optional[int], report: Report,
              hide_main: bool = False, plugin_modules: tuple[str, ...] = ()) -> None:
    """One run at a time in this process (``workers=1``), else a spawn process pool."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            report(task, worker.run_one(task.scenario, task.folder, task.seed))
        return
    # spawn, not fork: numba's threading layer and forked copies of it do not mix
    context = multiprocessing.get_context("spawn")
    others = {child.pid for child in multiprocessing.active_children()}
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                               initializer=worker.init_pool_worker,
                               initargs=({"NUMBA_NUM_THREADS": "1"}, tuple(plugin_modules)))
    queue, running = deque(tasks), {}
    interrupted = False
    try:
        while queue or running:
            while queue and len(running) < workers:  # submit no further ahead: Ctrl-C leaves nothing queued
                task = queue.popleft()
                try:
                    with main_script.main_hidden(hide_main):  # workers start as the first runs are submitted
                        future = pool.submit(worker.run_in_pool, task.scenario, task.folder, task.seed)
                except BrokenProcessPool:  # a worker died: what is not started stays pending
                    queue.clear()
                    break
                running[future] = task
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                report(running.pop(future), _pool_outcome(future))
    except KeyboardInterrupt as stop:
        interrupted = True
        started = [future for future in running if not future.cancel()]
        _pass_on(stop, [child for child in multiprocessing.active_children() if child.pid not in others])
        for future in wait(started).done:  # runs in flight stop at their next round: record how
            report(running.pop(future), _pool_outcome(future))
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)


def _pass_on(stop: KeyboardInterrupt, workers: list) -> None:
    """Send the workers the signal that stopped the sweep (Ctrl-C in a terminal has reached
    them already; the second does no harm, see ``worker._stop_run``)."""
    name = stop.signal_name if isinstance(stop, Interrupted) else "SIGINT"
    for process in workers:
        try:
            os.kill(process.pid, getattr(signal, name, signal.SIGINT))
        except (OSError, TypeError):  # it ended meanwhile
            pass


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
    if isinstance(error, KeyboardInterrupt):  # a signal just outside run_in_pool, which names it otherwise
        return "interrupted", None, "SIGINT"
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
        with _signal_handlers_kept(ray):
            if address:
                try:
                    ray.init(address=address, **quiet)
                except (ConnectionError, ValueError) as error:  # nobody there; a malformed address
                    raise InputError(Problem("--address", f"cannot connect to Ray at '{address}' ({error})",
                                             "start the cluster (`ray start --head`) or check the address")) from None
            else:  # its processes end with this one, however it ends (Ray's fate sharing)
                ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
        started = True
    # application errors never reach Ray: run_one returns them as failed outcomes
    remote = ray.remote(max_retries=3, retry_exceptions=False, num_cpus=1)(worker.run_one_in_ray)
    limit = workers or len(tasks)  # on a cluster, --workers caps the runs in flight
    queue, running = deque(tasks), {}
    seen: list[str] = []
    try:
        with _signals_noted(seen):
            _ray_loop(ray, remote, queue, running, limit, report)
    except KeyboardInterrupt as stop:
        for ref in running:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt: its folder says it was interrupted
        if seen and not isinstance(stop, Interrupted):  # ray.wait turns a signal's Interrupted into a bare one
            raise Interrupted(seen[0]) from None
        raise
    finally:
        if started:
            ray.shutdown()


def _ray_loop(ray, remote, queue: deque, running: dict, limit: int, report: Report) -> None:
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


@contextmanager
def _signal_handlers_kept(ray) -> Iterator[None]:
    """Keep this process's signal handlers across ``ray.init``, which sets one that makes SIGTERM
    exit at once (``sys.exit(15)``): after it, the sweep's handler stops it like Ctrl-C and shuts
    Ray down; during it, Ray's exit is turned back into the interruption it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    saved = {number: signal.getsignal(number) for number in numbers}
    try:
        yield
    except SystemExit as exit_:
        if exit_.code != signal.SIGTERM:
            raise
        ray.shutdown()
        raise Interrupted("SIGTERM") from None
    finally:
        for number, handler in saved.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(number, handler)


@contextmanager
def _signals_noted(seen: list[str]) -> Iterator[None]:
    """Note in ``seen`` each SIGTERM or SIGHUP handled in the block (by the handler already set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wrapped = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        handler = signal.getsignal(number) if number is not None else None
        if callable(handler):
            def noted(signum, frame, name=name, handler=handler):
                seen.append(name)
                handler(signum, frame)
            signal.signal(number, noted)
            wrapped[number] = (noted, handler)
    try:
        yield
    finally:
        for number, (noted, handler) in wrapped.items():
            if signal.getsignal(number) is noted:  # not if the handler itself changed it meanwhile
                signal.signal(number, handler)

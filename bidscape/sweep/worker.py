"""What runs in a worker: one scenario, one seed, one run folder.

``run_one`` is a plain top-level function, so process pools and Ray can pickle it by
reference. It never raises for a failed run: it returns ``("failed", None, error)`` and the
run folder says ``status = "failed"``. ``KeyboardInterrupt`` does propagate (Ctrl-C, a
cancelled Ray task), so an interrupted run is never mistaken for a finished one.

In a pool worker (``init_pool_worker``), SIGINT, SIGTERM and SIGHUP stop the run in progress
(its folder records the interruption, and ``run_in_pool`` returns ``("interrupted", ...)``);
the worker itself ends when the pool shuts down or when the sweep process is gone, however
it went (``bidscape.processes.end_with_parent``).
"""

from __future__ import annotations

import importlib
import os
import signal
from typing import Any, Optional

from bidscape import processes
from bidscape.errors import Interrupted

# status, wall seconds, error; ("interrupted", None, SIGNAL_NAME) for a run a signal stopped
Outcome = tuple[str, Optional[float], Optional[str]]

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_busy = False  # a pool worker is inside a run: a signal stops the run, not the idle worker


def run_one(scenario: dict[str, Any], folder: str, seed: int) -> Outcome:
    """Run ``scenario`` with ``seed`` into ``folder`` (replaced); return (status, wall seconds, error)."""
    try:
        from bidscape.api import run
        from bidscape.scenario import Scenario

        result = run(Scenario.from_dict(scenario, source=folder), out=folder, overwrite=True, seed=seed,
                     size_check=False)  # the sweep checked its runs, all at once
        return "complete", result.manifest.get("wall_seconds"), None
    except Exception as error:  # the run folder holds the traceback; the index gets one line
        return "failed", None, f"{type(error).__name__}: {error}"


def run_in_pool(scenario: dict[str, Any], folder: str, seed: int) -> Outcome:
    """``run_one`` in a pool worker: an interrupted run is an outcome, ``("interrupted", None, SIGNAL)``.

    Returned rather than raised, so the pool stays whole and the sweep hears which signal it was.
    """
    global _busy
    _busy = True
    try:
        return run_one(scenario, folder, seed)
    except KeyboardInterrupt as stop:
        if not processes.parent_alive():
            os._exit(128 + signal.SIGTERM)  # the run folder says so; nobody waits for the outcome
        return "interrupted", None, stop.signal_name if isinstance(stop, Interrupted) else "SIGINT"
    finally:
        _busy = False


def init_pool_worker(environment: dict[str, str], plugin_modules: tuple[str, ...] = ()) -> None:
    """Process-pool initializer: the environment before numba is imported, signals stop runs only,
    the worker ends with the sweep process; import the modules that registered plug-ins."""
    os.environ.update(environment)
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, _stop_run)
    processes.end_with_parent(idle=lambda: not _busy)
    for module in plugin_modules:
        importlib.import_module(module)


def _stop_run(signum, frame) -> None:
    # Every signal raises while busy, also a second one (Ctrl-C reaches a worker from the terminal
    # and from the sweep): at worst it cuts the folder's clean-up short, and the folder reads as
    # interrupted instead of failed; both are redone. Ignoring it could lose the interruption,
    # as third-party code may swallow the first one (an import that catches everything).
    if _busy:
        raise Interrupted(signal.Signals(signum).name)
    if not processes.parent_alive():
        os._exit(128 + signum)  # idle, and the sweep is gone: nothing to finish
    # idle with the sweep alive: it cancels what has not started and shuts the pool down


def run_one_in_ray(scenario: dict[str, Any], folder: str, seed: int) -> Outcome:
    """``run_one`` in a Ray worker: one numba thread unless the cluster says otherwise."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # read when numba is first imported in this worker
    return run_one(scenario, folder, seed)

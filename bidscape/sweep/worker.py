"""What runs in a worker: one scenario, one seed, one run folder.

``run_one`` is a plain top-level function, so process pools and Ray can pickle it by
reference. It never raises for a failed run: it returns ``("failed", None, error)`` and the
run folder says ``status = "failed"``. ``KeyboardInterrupt`` does propagate (Ctrl-C, a
cancelled Ray task), so an interrupted run is never mistaken for a finished one.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Optional

Outcome = tuple[str, Optional[float], Optional[str]]  # status, wall seconds, error

_busy = False  # a pool worker is inside a run (Ctrl-C stops the run, not the idle worker)


def run_one(scenario: dict[str, Any], folder: str, seed: int) -> Outcome:
    """Run ``scenario`` with ``seed`` into ``folder`` (replaced); return (status, wall seconds, error)."""
    global _busy
    _busy = True
    try:
        from bidscape.api import run
        from bidscape.scenario import Scenario

        result = run(Scenario.from_dict(scenario, source=folder), out=folder, overwrite=True, seed=seed,
                     size_check=False)  # the sweep checked its runs, all at once
        return "complete", result.manifest.get("wall_seconds"), None
    except Exception as error:  # the run folder holds the traceback; the index gets one line
        return "failed", None, f"{type(error).__name__}: {error}"
    finally:
        _busy = False


def init_pool_worker(environment: dict[str, str]) -> None:
    """Process-pool initializer: set the environment before numba is imported; Ctrl-C stops runs only."""
    os.environ.update(environment)
    signal.signal(signal.SIGINT, _interrupt_if_busy)


def _interrupt_if_busy(signum, frame) -> None:
    # the parent cancels what has not started; an idle worker then exits cleanly, without a traceback
    if _busy:
        raise KeyboardInterrupt


def run_one_in_ray(scenario: dict[str, Any], folder: str, seed: int) -> Outcome:
    """``run_one`` in a Ray worker: one numba thread unless the cluster says otherwise."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # read when numba is first imported in this worker
    return run_one(scenario, folder, seed)

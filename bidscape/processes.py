"""Child processes that end with their parent, however the parent ends (SIGKILL included).

A sweep's pool workers and the dashboard's Streamlit server are child processes. A child
outlives a parent that is killed: a pool worker then waits for work forever, a server keeps
its port. ``end_with_parent()``, called in the child, stops it when the parent is gone:

- on Linux the kernel sends it SIGTERM the moment the parent dies (``prctl(PR_SET_PDEATHSIG)``);
- everywhere, a daemon thread watches the parent (multiprocessing's parent sentinel, a pipe
  only the parent holds open, in a pool worker; the parent pid otherwise) and sends the same
  SIGTERM where the kernel cannot.

SIGTERM lets the child stop cleanly (a sweep worker records its run as interrupted, Streamlit
shuts its server down); ``grace`` seconds later the thread ends the process regardless.

The kernel's signal fires when the *thread* that started the child ends, not the process.
That is safe here: a sweep's workers are started by the thread running the sweep (or the
pool's manager thread), which waits for them; the dashboard's thread waits for Streamlit.

``python -m bidscape.processes MODULE ARGS...`` runs ``python -m MODULE ARGS...`` in a process
that ends with its parent (``ending_with_parent`` builds that command line).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

PARENT_ENV = "BIDSCAPE_PARENT_PID"  # the pid a child started by ``ending_with_parent`` must outlive
GRACE = 10.0  # seconds a child has to stop cleanly after its parent died
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL = 0.5  # seconds between looks at the parent pid, where there is no sentinel to wait on


def end_with_parent(parent_pid: Optional[int] = None, idle: Callable[[], bool] = lambda: False,
                    grace: float = GRACE) -> None:
    """Stop this process when its parent dies: SIGTERM at once, ``os._exit`` after ``grace`` s.

    ``parent_pid`` is the parent this process must outlive (default: multiprocessing's parent,
    else the current parent); a parent that died before this call counts as dead.
    ``idle()`` says the process has nothing left to finish, so it may exit before ``grace``.
    """
    parent = multiprocessing.parent_process()
    expected = parent_pid or (parent.pid if parent is not None else os.getppid())
    kernel_signals = _set_parent_death_signal(signal.SIGTERM)
    if parent is not None and parent.pid == expected:
        gone, already_gone = parent.join, not parent.is_alive()  # join returns once the parent's pipe closes
    else:
        gone, already_gone = (lambda: _wait_reparented(expected)), os.getppid() != expected
    # the kernel signals a parent's death only if it comes after the prctl call
    send_signal = already_gone or not kernel_signals
    threading.Thread(target=_stop_after, args=(gone, send_signal, idle, grace),
                     name="end-with-parent", daemon=True).start()


def parent_alive() -> bool:
    """Whether the parent this process was started by is still there."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        return parent.is_alive()
    expected = os.environ.get(PARENT_ENV)
    return os.getppid() == int(expected) if expected else True  # nothing to tell by: assume it is


def ending_with_parent(command: list[str]) -> list[str]:
    """``[python, "-m", MODULE, *ARGS]`` as a command whose process ends with this one.

    Start it with ``env=child_env(...)`` so the child knows which process to outlive.
    """
    if len(command) < 3 or command[1] != "-m":
        raise ValueError(f"expected a `python -m MODULE ...` command line, got {command[:3]}")
    return [command[0], "-m", __name__, *command[2:]]


def child_env(env: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment for a command from ``ending_with_parent``: this process's pid in it."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def stop_child(process: subprocess.Popen, timeout: float = GRACE) -> int:
    """Stop ``process`` and wait for it: SIGTERM, then SIGKILL after ``timeout`` s. Its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _set_parent_death_signal(signum: int) -> bool:
    """Linux: have the kernel send ``signum`` to this process when its parent dies. False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _wait_reparented(parent_pid: int) -> None:
    # a process whose parent dies is adopted by init (or a subreaper): its parent pid changes
    while os.getppid() == parent_pid:
        time.sleep(_POLL)


def _stop_after(gone: Callable[[], None], send_signal: bool, idle: Callable[[], bool], grace: float) -> None:
    gone()
    if send_signal:  # not where the kernel sent SIGTERM: a second one would interrupt the clean-up
        os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not idle():
        time.sleep(0.05)
    os._exit(128 + signal.SIGTERM)


def _run_module(argv: list[str]) -> None:
    if not argv:
        sys.exit(f"usage: python -m {__name__} MODULE [ARGS...]")
    parent = os.environ.get(PARENT_ENV)
    end_with_parent(int(parent) if parent else os.getppid())
    sys.argv = list(argv)  # run_module puts the module's file in sys.argv[0]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _run_module(sys.argv[1:])

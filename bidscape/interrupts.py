"""Stopping work on a signal as on Ctrl-C.

``kill``, ``timeout``, systemd and container stops send SIGTERM; a closed terminal sends
SIGHUP. Python's default for both is to die on the spot, leaving a run folder that says
"running" forever. Inside ``stop_on_signals()`` they raise ``Interrupted`` instead, which the
run folder records as an interruption (like the ``KeyboardInterrupt`` of Ctrl-C), and the CLI
exits with the shell's code for that signal (143 for SIGTERM, 129 for SIGHUP).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from bidscape.errors import Interrupted

STOP_SIGNALS = ("SIGTERM", "SIGHUP")

_last: list[KeyboardInterrupt] = []  # the interruption that ended the last block, for the CLI's exit


def last_interruption() -> Optional[KeyboardInterrupt]:
    """The ``Interrupted`` (or Ctrl-C's ``KeyboardInterrupt``) that ended the last ``stop_on_signals``
    block, with the run folder's notes on it; None if none did. The CLI reads it after typer has
    turned the exception into exit code 130, to exit with the signal's own code and say what
    happened to the folder."""
    return _last[-1] if _last else None


@contextmanager
def stop_on_signals(names: tuple[str, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the named signals raise ``Interrupted``.

    Only signals left at the default action are taken: a handler someone else installed (a
    sweep worker's, a host application's) and an ignored signal (``nohup``) stay as they are.
    Outside the main thread, Python cannot set handlers: the block runs unchanged.
    """
    _last.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def interrupt(signum, frame) -> None:
        for number, handler in previous.items():  # a second signal during the clean-up acts as usual
            signal.signal(number, handler)
        raise Interrupted(signal.Signals(signum).name)

    for name in names:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            previous[number] = signal.signal(number, interrupt)
    try:
        yield
    except KeyboardInterrupt as error:
        _last[:] = [error]
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

"""Errors a user can fix: each names the field, the bad value and the fix."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "populations[0].budget.low"
    message: str  # what is wrong, with the bad value
    fix: str = ""  # what to do instead

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}{self.message}.{fix}"


class InputError(Exception):
    """Bad input from the user (a scenario, a flag, a folder). The CLI exits with code 2."""

    def __init__(self, problems: Problem | Iterable[Problem], source: str = ""):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.source} is invalid" if self.source else "invalid input"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'? " if match else ""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal: Ctrl-C (SIGINT), SIGTERM or SIGHUP.

    A subclass of ``KeyboardInterrupt``, so code that already treats Ctrl-C as "stop now,
    mark the folder failed" treats ``kill`` and container stops the same way. Interrupted
    work is redone (sweeps), never recorded as a permanent failure.
    """

    def __init__(self, signal_name: str = "SIGINT"):
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        import signal

        return 128 + int(getattr(signal, self.signal_name, signal.SIGINT))

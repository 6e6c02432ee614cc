"""Process state read from /proc, for the tests that check no process outlives its parent."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its (new) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"

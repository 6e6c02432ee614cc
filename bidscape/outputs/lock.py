"""One writer per run folder: an OS-level lock on ``.bidscape-lock`` inside it.

The lock is ``flock`` on a file of the folder, held for the whole run and released by the
kernel however the process ends (SIGKILL and power loss included), so "is the writer still
there?" has an exact answer on this machine: try the lock. The manifest also names the writer
(pid, host, start time) for people and for messages.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

try:
    import fcntl
except ImportError:  # not POSIX: no OS lock; the manifest's pid is the only evidence
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".bidscape-lock"


class FolderLocked(Exception):
    """Another live process holds the folder's lock."""


class FolderLock:
    """An exclusive lock on ``folder/.bidscape-lock``; ``release()`` or process exit frees it."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self._fd: Optional[int] = None

    def acquire(self) -> "FolderLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderLocked(str(self.path)) from None
        self._fd = fd
        return self

    def still_ours(self) -> bool:
        """False when the folder was removed or replaced since ``acquire`` (our lock file is gone)."""
        if self._fd is None:
            return False
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def is_locked(folder: Path, writer: Optional[dict] = None) -> bool:
    """Whether a live process is writing ``folder`` now (without disturbing it)."""
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return _writer_alive(writer)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return _writer_alive(writer)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the probe's lock when it was taken
    return False


def writer_identity() -> dict:
    """Who writes a folder: pid and host (the start time is the manifest's ``started``)."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _writer_alive(writer: Optional[dict]) -> bool:
    """Fallback without an OS lock: the writer's pid is alive on this host."""
    if not writer or writer.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(writer["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True

"""Reading a TOML file a user named (a scenario, a sweep file): every way it can fail, said plainly.

A path can be missing, a broken link, a symlink loop, a folder, a named pipe or device,
or unreadable; each gets its own message and fix instead of "does not exist". A UTF-8
byte-order mark (what some Windows editors write) is accepted.
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from bidscape.errors import InputError, Problem

_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device"}


def read_toml(path: str | Path, kind: str = "scenario file", examples: str = "example scenarios are in data/scenarios/",
              field: str = "") -> tuple[dict[str, Any], str]:
    """A TOML file's raw tables and its name for messages; a file that cannot be read is an InputError.

    ``field`` is where the path came from (e.g. ``sweep.scenario``); empty for a command-line argument.
    """
    path = Path(path)
    source = str(path)
    problem = path_problem(path, kind, examples)
    if problem:
        raise InputError(Problem(field, *problem))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(Problem(field, f"cannot read {kind} '{path}' ({error.strerror or error})",
                                 "check that it is a file you can read")) from None
    try:
        text = data.decode("utf-8-sig")  # a UTF-8 byte-order mark is not part of the TOML
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise InputError(Problem("", f"not UTF-8 text (byte {error.start} on line {line})",
                                 "save the file as UTF-8"), source) from None
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as error:
        raise InputError(Problem("", f"not valid TOML ({error})", "fix the syntax there"), source) from None


def path_problem(path: Path, kind: str, examples: str) -> tuple[str, str] | None:
    """(message, fix) when ``path`` is not a readable regular file, else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return _stat_problem(path, kind, examples, error)
    if stat.S_ISDIR(mode):
        inside = sorted(p.name for p in path.glob("*.toml"))[:5]
        return (f"{kind} '{path}' is a folder, not a file",
                f"name a file in it ({', '.join(inside)})" if inside else f"name a .toml file ({examples})")
    if not stat.S_ISREG(mode):
        return (f"{kind} '{path}' is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a file",
                "save the TOML to a file and name that file")
    if not os.access(path, os.R_OK):
        return f"{kind} '{path}' cannot be read (permission denied)", f"check its permissions (chmod u+r '{path}')"
    return None


def _stat_problem(path: Path, kind: str, examples: str, error: OSError) -> tuple[str, str]:
    if error.errno == errno.ELOOP:
        return f"{kind} '{path}' is a symbolic link loop", "point the link at the file itself"
    if error.errno == errno.EACCES:
        return f"{kind} '{path}' cannot be reached (permission denied)", "check the permissions of its folders"
    if error.errno == errno.ENOTDIR:
        return f"{kind} '{path}' does not exist (a part of the path is a file, not a folder)", "check the path"
    if error.errno == errno.ENAMETOOLONG:
        return f"the path of {kind} '{path}' is too long", "use a shorter path"
    if os.path.islink(path):
        return f"{kind} '{path}' is a broken symbolic link (to '{os.readlink(path)}')", "point the link at a file"
    return f"{kind} '{path}' does not exist", f"check the path ({examples})"

"""TOML in: reading a file a user named, ``--set key.path=value`` overrides, and ``TomlDocument``
(read, override, validate; write back).

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

import numpy as np

from bidscape.errors import InputError, Problem, did_you_mean

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


# ---- overrides (`--set key.path=value`, `[[events]] set = {...}`) ----

def parse_value(text: str) -> Any:
    """A TOML value (number, bool, string, array, inline table); bare words stay strings."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict[str, Any], override: str) -> None:
    path, sep, text = override.partition("=")
    if not sep or not path.strip():
        raise InputError(Problem("--set", f"'{override}' is not of the form key.path=value",
                                 "write e.g. --set run.rounds=10"))
    set_path(raw, path.strip(), parse_value(text.strip()))


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set ``raw[a][b]... = value`` for ``path = "a.b..."``; list items by index or by name."""
    parts = path.split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part, where)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise InputError(Problem(path, f"'{'.'.join(parts[:depth])}' is a value, not a table",
                                     "set the value itself, or a field of a table"))


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    raise InputError(Problem(where, f"no item '{part}' in this list",
                             f"{did_you_mean(part, [str(n) for n in names])}use an index "
                             f"0..{len(items) - 1} or a name: {', '.join(map(str, names))}"))


class TomlDocument:
    """Reading, overriding and writing back a validated TOML document (a scenario, a market game).

    The class provides ``from_dict(raw, source)``: validation and its checks.
    """

    @classmethod
    def from_toml(cls, path: str | Path, overrides: list[str] | None = None):
        """Read, override (``key.path=value`` strings) and validate a file."""
        raw, source = read_toml(path)
        for override in overrides or []:
            apply_override(raw, override)
        return cls.from_dict(raw, source)

    def to_dict(self) -> dict[str, Any]:
        """The resolved document (defaults filled in), as it would be written in TOML."""
        return self.model_dump(mode="json", by_alias=True)

    def with_updates(self, updates: dict[str, Any], source: str = "scenario"):
        """A copy with ``{"dotted.path": value}`` applied, validated again (strictly: numpy numbers
        from Python code count as numbers, strings do not)."""
        raw = self.to_dict()
        for path, value in updates.items():
            set_path(raw, path, value.item() if isinstance(value, np.generic) else value)
        return type(self).from_dict(raw, source)

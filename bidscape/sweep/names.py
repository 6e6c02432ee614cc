"""Variant names, which are folder names: checked when given, made up from the values for grid points.

>>> grid_names({"mechanism.reserve": [0.0, 0.25], "populations.a.params.step": [0.02]})
['reserve=0,step=0.02', 'reserve=0.25,step=0.02']
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

from bidscape.errors import InputError, Problem
from bidscape.names import MAX_NAME as _MAX_NAME, SAFE_NAME as _SAFE_NAME

RESERVED_NAMES = ("sweep.json", "index.arrow", "index.csv")  # files of the sweep folder
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._+-]")  # in grid labels, where = and , separate


def check_variant_names(names: list[str], where: str) -> None:
    """Variant names become folder names: safe characters, unique (also ignoring case)."""
    problems = []
    seen: dict[str, str] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or len(name) > _MAX_NAME:
            problems.append(Problem(f"{where}[{i}].name", f"variant name {name!r} cannot be a folder name",
                                    f"use letters, digits and . _ = , + - (at most {_MAX_NAME} characters), "
                                    "starting with a letter or digit"))
        elif name in RESERVED_NAMES:
            problems.append(Problem(f"{where}[{i}].name", f"variant name '{name}' is a file of the sweep folder",
                                    "choose another name"))
        elif name.lower() in seen:
            problems.append(Problem(f"{where}[{i}].name", f"variant name '{name}' is used twice"
                                    + (f" (as '{seen[name.lower()]}')" if seen[name.lower()] != name else ""),
                                    "give each variant its own name (names differing only in case clash too)"))
        else:
            seen[name.lower()] = name
    if problems:
        raise InputError(problems)


def grid_names(grid: dict[str, list[Any]]) -> list[str]:
    """``reserve=0.25,step=0.02`` for each grid point: the last part of each key, more if two keys share it."""
    labels = _key_labels(list(grid))
    axes = [[f"{label}={_value_text(value, i)}" for i, value in enumerate(values)]
            for label, values in zip(labels, grid.values())]
    names, taken = [], set()
    for parts in itertools.product(*axes):
        name = ",".join(parts)
        if len(name) > _MAX_NAME:
            name = name[:_MAX_NAME - 9] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
        unique, n = name, 1
        while unique.lower() in taken:
            n += 1
            unique = f"{name}-{n}"
        taken.add(unique.lower())
        names.append(unique)
    return names


def _key_labels(keys: list[str]) -> list[str]:
    parts = [key.split(".") for key in keys]
    labels = []
    for i, key_parts in enumerate(parts):
        for length in range(1, len(key_parts) + 1):
            label = ".".join(key_parts[-length:])
            others = [".".join(p[-length:]) for j, p in enumerate(parts) if j != i]
            if label not in others:
                break
        labels.append(_UNSAFE_CHARS.sub("_", label))
    return labels


def _value_text(value: Any, position: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, str) and value:
        return _UNSAFE_CHARS.sub("_", value)[:40]
    return f"v{position + 1}"  # tables, arrays: the value's place in the grid's list

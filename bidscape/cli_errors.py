"""Command-line usage errors (a bad option value, an unknown option, a missing argument) as ``Problem``s.

Click (typer's parser) reports them in its own words, without the bad value or a fix;
``main()`` turns every one of them into the project's message instead, in one place:

    error: invalid input: --workers: 0 is not a whole number >= 1. Fix: write a whole number >= 1, e.g. --workers 1 ...
"""

from __future__ import annotations

import enum
from pathlib import PurePath
from typing import Any, Optional, Sequence

from bidscape.errors import Problem, did_you_mean


def usage_problem(error: Exception, argv: Sequence[str]) -> Problem:
    """The usage error ``error`` (from click, raised while parsing ``argv``) as one Problem."""
    kind = type(error).__name__
    command = _command(error)
    help_hint = f"see `{command} --help`"
    param = getattr(error, "param", None)
    if kind == "NoSuchOption":
        option = getattr(error, "option_name", "") or ""
        choices = list(getattr(error, "possibilities", None) or [])
        return Problem(option, f"'{option}' is not an option of `{command}`",
                       f"{did_you_mean(option, choices)}{help_hint}")
    if kind == "BadOptionUsage":
        option = getattr(error, "option_name", "") or ""
        return Problem(option, _message(error), f"write {option} VALUE; {help_hint}")
    if param is None:  # e.g. too many arguments
        return Problem("", _message(error), help_hint)
    name = _name(param)
    if kind == "MissingParameter":
        return Problem(name, "is missing", f"give {name}; {help_hint}")
    expected, example = _expected(param)
    value = _value(param, argv)
    shown = f"{value!r} is not {expected}" if value is not None and expected else _message(error)
    fix = f"write {expected}, e.g. {name} {example}" if expected else help_hint
    return Problem(name, shown, fix)


def _command(error: Exception) -> str:
    """``bidscape SUBCOMMAND``: the program's own name, however Python was started (``python -m ...``)."""
    names, ctx = [], getattr(error, "ctx", None)
    while ctx is not None and getattr(ctx, "parent", None) is not None:
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    return " ".join(["bidscape", *names])


def _message(error: Exception) -> str:
    text = str(getattr(error, "message", "") or error).removeprefix("Value error, ")
    return (text[:1].lower() + text[1:]).rstrip(".")


def _name(param: Any) -> str:
    opts = list(getattr(param, "opts", None) or [])
    options = [o for o in opts if o.startswith("-")]
    if options:
        return max(options, key=len)
    return getattr(param, "metavar", None) or (opts[0].upper() if opts else "argument")


def _value(param: Any, argv: Sequence[str]) -> Optional[str]:
    """The value given for ``param`` on the command line (``--opt VALUE`` or ``--opt=VALUE``), else None."""
    opts = [o for o in getattr(param, "opts", None) or [] if o.startswith("-")]
    for i, arg in enumerate(argv):
        for opt in opts:
            if arg == opt and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1:]
    return None


def _expected(param: Any) -> tuple[str, str]:
    """What ``param`` takes, in words, and an example value ("" when unknown)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)  # typer >= 0.20
    click_type = getattr(param, "type", None)  # older typer: a click ParamType
    low = getattr(param, "min", getattr(click_type, "min", None))
    high = getattr(param, "max", getattr(click_type, "max", None))
    type_name = getattr(click_type, "name", "")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = [str(member.value) for member in annotation]
        return f"one of: {', '.join(choices)}", choices[0]
    if getattr(click_type, "choices", None):
        choices = [str(c) for c in click_type.choices]
        return f"one of: {', '.join(choices)}", choices[0]
    if annotation is int or type_name in ("integer", "integer range"):
        return "a whole number" + _range(low, high), str(low if low is not None else 1)
    if annotation is float or type_name in ("float", "float range"):
        return "a number" + _range(low, high), str(low if low is not None else 0.5)
    if (isinstance(annotation, type) and issubclass(annotation, PurePath)) or type_name == "path":
        return "a path", "PATH"
    return "", ""


def _range(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def click_exceptions() -> tuple[type, ...]:
    """Click's usage-error classes: typer's vendored copy (newer typer) and/or click itself."""
    kinds: list[type] = []
    try:
        from typer._click.exceptions import ClickException as Vendored
        kinds.append(Vendored)
    except ImportError:
        pass
    try:
        from click import ClickException
        kinds.append(ClickException)
    except ImportError:
        pass
    return tuple(kinds)

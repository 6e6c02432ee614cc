"""``--help`` for flags: no value type after an option that takes no value.

Typer's rich help labels every parameter with its type, flags included, so ``--overwrite``
and ``--help`` read as if they took a ``<bool>`` argument. The command and group classes
here give flags an empty metavar, which both typer's rich help and click's plain help print
instead of the type; options that take a value keep theirs (``--seed <int>``).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


class _NoFlagType:
    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]  # the click command this is mixed into
        for param in params:  # the help option is built on first use: set it here, not at registration
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_NoFlagType, TyperCommand):
    """A typer command whose flags show no type in ``--help``."""


class Group(_NoFlagType, TyperGroup):
    """A typer group (``bidscape --help``) whose flags show no type."""


def without_flag_types(app: typer.Typer) -> None:
    """Every command registered on ``app`` so far, unless it chose its own class, uses ``Command``."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer fills in TyperCommand when none is given
            info.cls = Command

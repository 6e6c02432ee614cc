"""What a market game is to the rest of bidscape: how its scenario files and run folders are
recognised, and how one is loaded, sized, played and summarised.

A market game is a scenario of its own kind (not auctions among populations): its files carry
a table of their own (``table``, e.g. ``[market_game]``) and its run folders a manifest
``"kind"`` of their own. The command line, sweeps, the dashboard's discovery and the Mesa
wrapper ask the registry (``bidscape.games.GAMES``) which game a file or folder belongs to,
instead of knowing any game by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import pyarrow as pa


class Game:
    """A registered market game; subclasses fill in the class attributes and methods."""

    name: ClassVar[str]  # the registry key
    title: ClassVar[str]  # what it plays, in words: "double auction"
    table: ClassVar[str]  # the table that marks its scenario files
    kind: ClassVar[str]  # its manifests' "kind"
    label: ClassVar[str] = "market game"  # what users call such scenarios in messages

    def schemas(self) -> dict[str, pa.Schema]:
        """Its run folder's tables (name -> schema)."""
        raise NotImplementedError

    def output_files(self) -> tuple[str, ...]:
        return ("manifest.json",) + tuple(f"{name}.arrow" for name in self.schemas())

    def load(self, path: str | Path, overrides: Optional[list[str]] = None) -> Any:
        """Its scenario, read from ``path`` with ``key.path=value`` overrides and validated."""
        raise NotImplementedError

    def describe(self, scenario: Any) -> str:
        """One line for the command line: who plays, how, for how long."""
        raise NotImplementedError

    def run(self, scenario: Any, out: Path, overwrite: bool = False,
            progress: Callable[[int], None] | bool | None = None) -> Path:
        """Play ``scenario`` into the run folder ``out`` and return it."""
        raise NotImplementedError

    def print_summary(self, folder: Path, console: Any = None) -> None:
        """Print the headline tables of a complete run folder."""
        raise NotImplementedError

"""Market games: scenarios of their own kind, played by their own kernels into run folders of
their own (``bidscape.games.double_auction``: double auctions with zero-intelligence traders).

``GAMES`` holds one ``Game`` per kind; ``game_of`` (a scenario's raw tables), ``game_of_file``
(a scenario file) and ``game_of_manifest`` (a run folder's manifest) say which game, if any,
something belongs to. Anything else is an auction scenario or run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from bidscape.errors import InputError
from bidscape.games.base import Game
from bidscape.registry import Registry

GAMES: Registry[Game] = Registry("market game", "games")


def _register() -> None:
    from bidscape.games.double_auction.game import DoubleAuctionGame

    GAMES.register(DoubleAuctionGame.name, DoubleAuctionGame())


def game_of(raw: Any) -> Optional[Game]:
    """The game whose scenario ``raw`` (a file's parsed tables) is, or None for an auction scenario."""
    if not isinstance(raw, Mapping):
        return None
    return next((game for _, game in GAMES.items() if game.table in raw), None)


def game_of_file(path: str | Path) -> Optional[Game]:
    """The game of the scenario file ``path``; None for an auction scenario, or a file that cannot
    be read (reported when it is read as a scenario)."""
    from bidscape.scenario import read_toml

    if not Path(path).is_file():
        return None
    try:
        return game_of(read_toml(path)[0])
    except InputError:
        return None


def game_of_manifest(manifest: Mapping[str, Any]) -> Optional[Game]:
    """The game that wrote a run folder with this manifest, or None for an auction run."""
    return next((game for _, game in GAMES.items() if manifest.get("kind") == game.kind), None)


_register()

__all__ = ["GAMES", "Game", "game_of", "game_of_file", "game_of_manifest"]

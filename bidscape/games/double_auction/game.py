"""The double auction as a registered market game (``bidscape.games.GAMES["double_auction"]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from bidscape.games.base import Game
from bidscape.games.double_auction.output import KIND, SCHEMAS
from bidscape.games.double_auction.run import print_summary, run_game
from bidscape.games.double_auction.scenario import TABLE, GameScenario


class DoubleAuctionGame(Game):
    name = "double_auction"
    title = "double auction"
    table = TABLE
    kind = KIND

    def schemas(self) -> dict[str, pa.Schema]:
        return dict(SCHEMAS)

    def load(self, path: str | Path, overrides: Optional[list[str]] = None) -> GameScenario:
        return GameScenario.from_toml(path, overrides)

    def describe(self, scenario: GameScenario) -> str:
        return scenario.describe()

    def run(self, scenario: GameScenario, out: Path, overwrite: bool = False, progress: Any = None) -> Path:
        return run_game(scenario, out=out, overwrite=overwrite, progress=progress)

    def print_summary(self, folder: Path, console: Any = None) -> None:
        print_summary(folder, console)

"""The traders of a market game as flat arrays for the kernels, drawn once per run.

Seeds: ``SeedSequence(run.seed)`` spawns two children: the first spawns one generator per
``[[traders]]`` group for its unit values (in file order), the second gives the 64-bit key
of the counter-based hash that every order price and trader pick comes from. The same
seed therefore gives the same values and the same trades, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bidscape.engine.rng import run_key_from_seed
from bidscape.games.double_auction.equilibrium import Equilibrium, competitive_equilibrium
from bidscape.games.double_auction.scenario import GameScenario
from bidscape.games.double_auction.traders import SIDES, STRATEGIES


@dataclass(frozen=True)
class GameMarket:
    run_key: np.uint64
    side: np.ndarray  # int8 per trader: 0 buy, 1 sell
    strategy: np.ndarray  # int8 per trader: traders.STRATEGIES ids
    units: np.ndarray  # int64 per trader
    values: np.ndarray  # float64 (traders, max units): values (buyers, descending) / costs (sellers, ascending); nan pads
    group: np.ndarray  # int16 per trader: index of its [[traders]] group
    group_names: list[str]
    equilibrium: Equilibrium

    @property
    def n_traders(self) -> int:
        return int(self.side.shape[0])

    @property
    def max_trades(self) -> int:
        """At most this many trades per period: the smaller side's units."""
        buy = int(self.units[self.side == SIDES["buy"]].sum())
        sell = int(self.units[self.side == SIDES["sell"]].sum())
        return min(buy, sell)

    @classmethod
    def build(cls, scenario: GameScenario) -> "GameMarket":
        values_seed, kernel_seed = np.random.SeedSequence(scenario.run.seed).spawn(2)
        groups = scenario.traders
        tables = [group.draw_values(np.random.default_rng(child))
                  for group, child in zip(groups, values_seed.spawn(len(groups)))]
        width = max(group.units for group in groups)
        values = np.full((scenario.total_traders, width), np.nan)
        row = 0
        for table in tables:
            values[row:row + table.shape[0], :table.shape[1]] = table
            row += table.shape[0]
        counts = [group.count for group in groups]
        side = np.repeat(np.array([SIDES[g.side] for g in groups], np.int8), counts)
        units = np.repeat(np.array([g.units for g in groups], np.int64), counts)
        buy_values = np.concatenate([t.ravel() for t, g in zip(tables, groups) if g.side == "buy"])
        sell_costs = np.concatenate([t.ravel() for t, g in zip(tables, groups) if g.side == "sell"])
        return cls(
            run_key=np.uint64(run_key_from_seed(kernel_seed)),
            side=side,
            strategy=np.repeat(np.array([STRATEGIES[g.strategy] for g in groups], np.int8), counts),
            units=units,
            values=values,
            group=np.repeat(np.arange(len(groups), dtype=np.int16), counts),
            group_names=[g.name for g in groups],
            equilibrium=competitive_equilibrium(buy_values, sell_costs),
        )

"""Market-game scenario files: TOML in, a validated ``GameScenario`` out.

A market game is recognised by its ``[market_game]`` table (``bidscape.games.game_of``)::

    [run]
    name = "zi-c-cda"
    seed = 1
    rounds = 10                  # trading periods

    [market_game]
    mechanism = "continuous"     # "continuous" (CDA) | "call" (one uniform-price call per period)
    steps_per_round = 2000       # CDA: order submissions per period (the call market ignores it)
    calls_per_round = 1          # call market: clearings per period (the CDA ignores it)
    price_low = 1.0              # range of zero-intelligence prices
    price_high = 200.0

    [[traders]]
    name = "buyers"
    side = "buy"
    count = 20                   # traders in this group
    units = 3                    # units each may buy
    values = { dist = "uniform", low = 50, high = 200 }
    strategy = "zi_c"            # zi_c | zi_u | truthful

    [[traders]]
    name = "sellers"
    side = "sell"
    count = 20
    units = 3
    values = [10, 60, 90]        # explicit unit costs: one list for every trader, or one per trader
    strategy = "zi_c"

Every mistake becomes an ``InputError`` naming the field, the bad value and the fix:

>>> GameScenario.from_dict({"market_game": {"mechanism": "contiuous"}, "traders": []})
Traceback (most recent call last):
...
bidscape.errors.InputError: scenario is invalid:
  - market_game.mechanism: 'contiuous' is not allowed. Fix: did you mean 'continuous'? use one of: 'continuous' or 'call'
  - traders: list should have at least 2 items after validation, not 0. Fix: add at least one item
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from bidscape import limits
from bidscape.errors import Problem, did_you_mean
from bidscape.markets.distributions import Distribution
from bidscape.games.double_auction.traders import STRATEGIES
from bidscape.names import RunName
from bidscape.scenario import Amount, Auctions, Rounds, TomlDocument, validated
from bidscape.sizing import AGENT_ROUND_SECONDS, IMPORT_BYTES, Estimate

TABLE = "market_game"  # the table that marks a market-game scenario file
MECHANISM_NAMES = ("continuous", "call")


class _Section(BaseModel):
    # strict: numbers must be numbers (pydantic would read true as 1 and "10" as 10)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class GameRun(_Section):
    name: RunName = "market_game"
    seed: int = Field(0, ge=0)
    rounds: Rounds = 10


class MarketGame(_Section):
    mechanism: Literal["continuous", "call"] = "continuous"
    steps_per_round: Auctions = 2000  # continuous: order submissions per period
    calls_per_round: Auctions = 1  # call: clearings per period (fresh orders for units left)
    price_low: Amount = 1.0
    price_high: Amount = 200.0


class TraderGroup(_Section):
    name: str = Field(min_length=1)
    side: Literal["buy", "sell"]
    count: Annotated[int, Field(ge=1), limits.at_most(limits.MAX_AGENTS, "more traders than any machine holds")]
    units: Annotated[int, Field(ge=1), limits.at_most(limits.MAX_UNITS, "each trader's values are a row of "
                                                                        "the value table")] = 1
    # a distribution, or an explicit list (kept as a list[float] or list[list[float]])
    values: Distribution
    strategy: str = "zi_c"

    @field_validator("values", mode="wrap")
    @classmethod
    def _explicit_or_distribution(cls, value: Any, handler) -> Any:
        if isinstance(value, list):
            return _explicit_values(value)
        return handler(value)

    @field_serializer("values")
    def _dump_values(self, values: Any) -> Any:
        if isinstance(values, list):
            return values
        return values.model_dump(mode="json", by_alias=True)

    @property
    def explicit(self) -> bool:
        return isinstance(self.values, list)

    def draw_values(self, rng: np.random.Generator) -> np.ndarray:
        """``(count, units)`` unit values, each row sorted (buyers: highest first; sellers: lowest first)."""
        if isinstance(self.values, list):
            table = np.array(self.values, dtype=np.float64)
            if table.ndim == 1:
                table = np.tile(table, (self.count, 1))
        else:
            table = self.values.sample(rng, self.count * self.units).astype(np.float64)
            table = table.reshape(self.count, self.units)
        table = np.sort(table, axis=1)
        return np.ascontiguousarray(table[:, ::-1] if self.side == "buy" else table)


class GameScenario(TomlDocument, _Section):
    run: GameRun = Field(default_factory=GameRun)
    market_game: MarketGame
    traders: list[TraderGroup] = Field(min_length=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "scenario") -> "GameScenario":
        return validated(cls, raw, source, _check_semantics)

    @property
    def total_traders(self) -> int:
        return sum(group.count for group in self.traders)

    def describe(self) -> str:
        """One line for the CLI: who trades, how, for how long."""
        game = self.market_game
        sides = {side: [g for g in self.traders if g.side == side] for side in ("buy", "sell")}
        who = "; ".join(
            f"{sum(g.count for g in groups)} {'buyers' if side == 'buy' else 'sellers'} "
            f"({', '.join(f'{g.count}x{g.units} {g.strategy}' for g in groups)})"
            for side, groups in sides.items())
        how = ("continuous double auction, "
               f"{game.steps_per_round:,} orders per period" if game.mechanism == "continuous"
               else f"uniform-price call market, {game.calls_per_round:,} call(s) per period")
        return (f"market game: {who}; {how}; {self.run.rounds} period(s), "
                f"prices {game.price_low:g}..{game.price_high:g}")

    def size_estimate(self) -> Estimate:
        """Memory and time of a run (``bidscape.sizing``): its value table and trade buffers."""
        traders = self.total_traders
        width = max(g.units for g in self.traders)
        units = {side: sum(g.count * g.units for g in self.traders if g.side == side) for side in ("buy", "sell")}
        room = min(units.values())
        # per trader: its row of the value table (and a copy), its units sorted for the equilibrium, state
        parts = {f"traders[{i}].count": g.count * (width * 16 + g.units * 24 + 64) for i, g in enumerate(self.traders)}
        parts["market_game"] = room * 48 * 2  # a period's trade buffers: one row per possible trade
        steps = self.market_game.steps_per_round if self.market_game.mechanism == "continuous" else sum(units.values())
        seconds = self.run.rounds * (steps * 200e-9 + traders * AGENT_ROUND_SECONDS)
        return Estimate(IMPORT_BYTES + sum(parts.values()), seconds, parts,
                        f"{traders:,} traders x {width:,} unit(s) in the value table")


# ---- checks ----

def _explicit_values(items: list[Any]) -> list[Any]:
    """A list of numbers, or a list of lists of numbers (one per trader); all finite and >= 0."""
    if not items:
        raise ValueError('an explicit list of values is empty; write one number per unit, e.g. values = [120, 90, 60], '
                         'or a distribution, e.g. values = { dist = "uniform", low = 50, high = 200 }')
    nested = isinstance(items[0], list)
    rows = items if nested else [items]
    for r, row in enumerate(rows):
        if not isinstance(row, list) or (not nested and any(isinstance(x, list) for x in row)):
            raise ValueError("mixes numbers and lists; write either one list of numbers (every trader) "
                             "or a list of lists (one per trader)")
        for k, x in enumerate(row):
            where = f"item [{r}][{k}]" if nested else f"item [{k}]"
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ValueError(f"{where} is {x!r}, not a number; write numbers, e.g. [120, 90, 60]")
            if not math.isfinite(x) or x < 0:
                raise ValueError(f"{where} is {x!r}; values and costs must be finite and >= 0")
            if x > limits.MAX_AMOUNT:
                raise ValueError(f"{where} is {x!r}, above {limits.MAX_AMOUNT:g}, the largest allowed "
                                 f"({limits.AMOUNT_REASON}); use values <= {limits.MAX_AMOUNT:g}")
    return [[float(x) for x in row] for row in items] if nested else [float(x) for x in items]


def _check_semantics(scenario: GameScenario) -> list[Problem]:
    problems: list[Problem] = []
    game = scenario.market_game
    if game.price_high <= game.price_low:
        problems.append(Problem("market_game.price_high",
                                f"price_high ({game.price_high:g}) must be above price_low ({game.price_low:g})",
                                "set price_low < price_high, e.g. price_low = 1.0, price_high = 200.0"))
    seen: set[str] = set()
    for i, group in enumerate(scenario.traders):
        where = f"traders[{i}]"
        if group.name in seen:
            problems.append(Problem(f"{where}.name", f"trader group name '{group.name}' is used twice",
                                    "give each [[traders]] group its own name"))
        seen.add(group.name)
        if group.strategy not in STRATEGIES:
            problems.append(Problem(f"{where}.strategy", f"unknown strategy '{group.strategy}'",
                                    f"{did_you_mean(group.strategy, STRATEGIES)}"
                                    f"use one of: {', '.join(STRATEGIES)}"))
        if isinstance(group.values, list):
            rows = group.values if isinstance(group.values[0], list) else [group.values]
            if len(rows) > 1 or isinstance(group.values[0], list):
                if len(rows) != group.count:
                    problems.append(Problem(f"{where}.values", f"{len(rows)} lists of values for "
                                            f"count = {group.count} traders",
                                            f"write one list per trader ({group.count}), or a single "
                                            "list of numbers shared by every trader"))
            bad = [len(row) for row in rows if len(row) != group.units]
            if bad:
                problems.append(Problem(f"{where}.values", f"a list has {bad[0]} value(s) for "
                                        f"units = {group.units}",
                                        f"write exactly {group.units} number(s) per trader (one per unit)"))
    sides = {group.side for group in scenario.traders}
    for side in ("buy", "sell"):
        if side not in sides:
            problems.append(Problem("traders", f"no trader group has side = \"{side}\": nobody can "
                                    f"{'buy' if side == 'buy' else 'sell'}",
                                    f'add a [[traders]] group with side = "{side}"'))
    return problems

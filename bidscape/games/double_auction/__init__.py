"""Market games: double auctions with zero-intelligence traders (Gode & Sunder 1993).

Buyers hold units with redemption values, sellers units with costs; each period they trade
in a continuous double auction (``mechanism = "continuous"``) or a uniform-price call
market (``"call"``). Allocative efficiency is the realised surplus over the competitive
equilibrium's. Registered as ``bidscape.games.GAMES["double_auction"]``; see
``docs/double_auction.md``.

>>> from bidscape.games.double_auction import GameScenario, simulate
>>> scenario = GameScenario.from_dict({
...     "run": {"seed": 1, "rounds": 5},
...     "market_game": {"mechanism": "continuous", "steps_per_round": 2000},
...     "traders": [
...         {"name": "buyers", "side": "buy", "count": 10, "units": 3, "strategy": "zi_c",
...          "values": {"dist": "uniform", "low": 50, "high": 200}},
...         {"name": "sellers", "side": "sell", "count": 10, "units": 3, "strategy": "zi_c",
...          "values": {"dist": "uniform", "low": 1, "high": 150}}]})
>>> result = simulate(scenario)
>>> result.market.columns[:4]
['round', 'trades', 'mean_price', 'price_std']
>>> bool(result.summary["market"]["mean_efficiency"] > 0.9)
True
>>> folder = run_game(scenario, out="runs/zi-c")  # doctest: +SKIP
"""

from bidscape.games.double_auction.equilibrium import Equilibrium, competitive_equilibrium
from bidscape.games.double_auction.market import GameMarket
from bidscape.games.double_auction.run import GameResult, Period, play, print_summary, run_game, simulate, summary
from bidscape.games.double_auction.scenario import GameScenario
from bidscape.games.double_auction.traders import STRATEGIES, STRATEGY_DESCRIPTIONS

__all__ = [
    "GameScenario",
    "simulate", "run_game", "summary", "print_summary", "play", "GameResult", "Period",
    "GameMarket", "Equilibrium", "competitive_equilibrium", "STRATEGIES", "STRATEGY_DESCRIPTIONS",
]

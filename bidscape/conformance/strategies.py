"""``check_strategy``: what every bidding strategy must do, on small markets.

>>> from bidscape import check_strategy
>>> check_strategy("exp3").ok
True

The strategy bids for one population among fixed-rule competitors, in a handful of
small markets (first and second price, two channels, segments with a traffic curve,
targeting and a common value, budgets drawn from zero upwards, a zero budget, and a
reserve so high that every round is lost), and must:

1. finish every run, with finite multipliers >= 0 each round;
2. never spend above its budget, and never bid above what is left of it (the largest
   winning bid in the auction sample is at most the budget the agent had);
3. spend nothing with a zero budget, and come through rounds in which it wins nothing;
4. be deterministic: the same seed gives the same multipliers, spend and wins, bit for bit.

Markets the strategy declares it cannot use (``Strategy.scenario_problems``, e.g.
``multi_channel`` with one channel) are skipped and listed in ``report.skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from bidscape.errors import InputError


@dataclass
class StrategyReport:
    strategy: str
    markets: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.markets)

    def raise_for_failures(self) -> None:
        if not self.ok:
            shown = "\n  - ".join(self.failures[:10]) or "no market could run it"
            raise AssertionError(f"strategy '{self.strategy}' failed check_strategy:\n  - {shown}")


def markets(strategy: str, params: dict[str, Any], seed: int) -> dict[str, dict[str, Any]]:
    """The small scenarios ``check_strategy`` runs (name -> scenario dict)."""
    def scenario(mechanism: str, budget: Optional[dict], reserve: float = 0.0,
                 channels: Optional[list] = None, rounds: int = 8, traffic: Optional[dict] = None) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "run": {"seed": seed, "rounds": rounds, "auctions_per_round": 3000, "record_agents": "agent",
                    "auction_sample_rate": 1.0, "experimental": True},
            "mechanism": {"type": mechanism, "reserve": reserve},
            "market": {"bidders_per_auction": 4},
            "populations": [
                {"name": "tested", "size": 40, "strategy": strategy, "params": params,
                 "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
                 **({"budget": budget} if budget else {})},
                {"name": "others", "size": 40, "strategy": "constant_shade", "params": {"multiplier": 0.8},
                 "values": {"dist": "uniform", "low": 0.0, "high": 1.0}},
            ],
        }
        if channels:
            raw["channels"] = channels
        if traffic:  # the competitors bid in the first segment only
            raw["traffic"] = traffic
            raw["populations"][1]["targets"] = [traffic["segments"][0]["name"]]
        return raw

    budgets = {"dist": "uniform", "low": 0.0, "high": 20.0}
    return {
        "first price, budgets from 0": scenario("first_price", budgets),
        "second price, budgets from 0": scenario("second_price", budgets),
        "second price, zero budget": scenario("second_price", {"dist": "constant", "value": 0.0}),
        "first price, every round lost (reserve above all values)": scenario("first_price", budgets, reserve=5.0),
        "two channels, first and second price": scenario("second_price", budgets, channels=[
            {"name": "a", "auctions_per_round": 2000, "mechanism": {"type": "first_price"}},
            {"name": "b", "auctions_per_round": 1000, "mechanism": {"type": "second_price"}},
        ]),
        "segments: a traffic curve, targeting, a common value (first price)": scenario(
            "first_price", budgets, traffic={"curve": [0.5, 1.5, 1.0], "segments": [
                {"name": "contested", "share": 0.7,
                 "common_value": {"dist": "lognormal", "mean": -0.125, "sigma": 0.5}},
                {"name": "alone", "share": 0.3}]}),
    }


def check_strategy(strategy: str, params: Optional[dict[str, Any]] = None, seed: int = 0) -> StrategyReport:
    """Run the checks above on ``strategy`` (a registered name) with ``params``."""
    from bidscape.bidders import STRATEGIES
    from bidscape.scenario import Scenario

    STRATEGIES.get(strategy)  # unknown names: one clear error
    report = StrategyReport(strategy)
    for name, raw in markets(strategy, dict(params or {}), seed).items():
        try:
            scenario = Scenario.from_dict(raw, source=f"check_strategy market '{name}'")
        except InputError as error:
            if any(p.path.endswith((".strategy", ".params.contexts")) for p in error.problems):
                report.skipped.append(f"{name}: {error.problems[0].message}")
                continue
            raise
        report.markets.append(name)
        try:
            first = _play(scenario)
            again = _play(scenario)
        except Exception as error:  # a strategy that crashes fails the check, with the reason
            report.failures.append(f"{name}: the run failed: {type(error).__name__}: {error}")
            continue
        report.failures.extend(f"{name}: {problem}" for problem in first.problems)
        if not all(np.array_equal(a, b) for a, b in zip(first.trace, again.trace)):
            report.failures.append(f"{name}: not deterministic: the same seed gave different multipliers or spend")
    return report


@dataclass
class _Played:
    trace: list[np.ndarray]
    problems: list[str]


def _play(scenario) -> _Played:
    from bidscape.loop.simulation import Simulation

    simulation = Simulation(scenario)
    mine = simulation.state.population_slice(0)
    budget = simulation.state.budget[mine].copy()
    trace: list[np.ndarray] = []
    problems: list[str] = []
    spent = np.zeros(budget.size)
    sample = _Sample()
    try:
        while not simulation.finished:
            left_before = simulation.state.remaining_budget[mine].copy()
            sample.left_before = dict(zip(range(mine.start, mine.stop), left_before))
            simulation.step(sample)
            state = simulation.state
            spend = state.spend[mine]
            spent += spend
            trace += [state.multiplier[mine].copy(), spend.copy(), state.wins[mine].copy()]
            r = simulation.round - 1
            if np.any(spent > budget * (1 + 1e-12) + 1e-12):
                problems.append(f"round {r}: spent above the budget")
            if np.any((budget == 0) & (spent > 0)):
                problems.append(f"round {r}: an agent with a zero budget spent")
            problems.extend(f"round {r}: {p}" for p in sample.problems)
            sample.problems.clear()
    finally:
        simulation.close()
    return _Played(trace, sorted(set(problems)))


class _Sample:
    """Stands in for the recorder: checks each sampled winning bid against the budget left."""

    def __init__(self):
        self.left_before: dict[int, float] = {}
        self.problems: list[str] = []

    def write_auctions(self, columns: dict[str, Any]) -> None:
        for winner, bid in zip(columns["winner"], columns["top_bid"]):
            left = self.left_before.get(int(winner))
            if left is not None and bid > left * (1 + 1e-12) + 1e-12:
                self.problems.append(f"agent {winner} bid {bid:.6g} with {left:.6g} of its budget left")

    def write_market(self, columns) -> None:
        pass

    def write_agents(self, *args) -> None:
        pass

    def write_populations(self, *args) -> None:
        pass

    def write_table(self, *args) -> None:
        pass

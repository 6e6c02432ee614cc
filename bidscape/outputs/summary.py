"""A run's summary (``manifest.json``'s ``"summary"``, what ``bidscape run`` prints): headline
numbers gathered round by round, and the definitions of the ratio metrics that the summary and
``bidscape.analysis`` share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np

from bidscape.outputs.manifest import json_safe

if TYPE_CHECKING:
    from bidscape.loop.simulation import Simulation

# every ratio metric: name -> (numerator, denominator), both sums over the rounds (and channels) counted
MARKET_RATIOS = {
    "efficiency": ("welfare", "max_welfare"),
    "price_of_anarchy": ("max_welfare", "welfare"),
    "sold_share": ("sold", "slots_offered"),
    "mean_price": ("revenue", "sold"),
}
POPULATION_RATIOS = {
    "budget_utilisation": ("budgeted_spend", "budget"),
    "return_on_spend": ("value", "spend"),
    "win_rate": ("wins", "participations"),
    "mean_price": ("spend", "wins"),
}


def ratio(totals: Mapping[str, Any], numerator: str, denominator: str) -> Optional[float]:
    """``numerator / denominator`` of ``totals``; None where the denominator is not positive."""
    below = totals[denominator]
    return totals[numerator] / below if below is not None and below > 0 else None


def expected_conversions(outcome_state: np.ndarray, ranges: np.ndarray, position: bool,
                         rates: np.ndarray) -> np.ndarray:
    """Expected conversions of each of a channel's agent ranges (``int64[R, 3]``: first agent, count,
    population) this round: the range's clicks (position auctions) or wins (single-item auctions)
    x its population's conversion rate (``rates``, per population; NaN where none)."""
    from bidscape.engine.kernel import CLICKS, WINS  # here: readers of the summary need no kernels

    column = CLICKS if position else WINS
    counts = np.array([outcome_state[a:a + n, column].sum() for a, n, _ in ranges])
    return counts * rates[ranges[:, 2]]


class RunTotals:
    """Headline numbers of a run, gathered round by round for the summary."""

    def __init__(self, simulation: "Simulation"):
        self.simulation = simulation
        self.market = {"rounds": 0, "auctions": 0, "slots_offered": 0, "sold": 0, "revenue": 0.0, "welfare": 0.0,
                       "max_welfare": 0.0}
        populations = len(simulation.state.population_names)
        self.spend = np.zeros(populations)
        self.wins = np.zeros(populations)
        self.value = np.zeros(populations)
        self.first_multiplier: Optional[np.ndarray] = None
        rates = simulation.scenario.conversion_rates()  # None: no population values conversions
        self.conversion_rates = None if rates is None else np.array(rates)
        self.conversions = None if rates is None else np.zeros(populations)
        traffic = simulation.scenario.traffic
        self.segment_names = [] if traffic is None else [s.name for s in traffic.segments]
        self.segments = np.zeros((len(self.segment_names), 6))  # columns: engine.context.SEGMENT_TOTALS

    def add(self, result) -> None:
        for key in ("auctions", "sold", "revenue", "welfare", "max_welfare"):
            self.market[key] += getattr(result, key)
        self.market["rounds"] += 1
        self.market["slots_offered"] += sum(c.auctions * c.totals.slots for c in result.channels)
        for channel in result.channels:
            if channel.segments is not None:
                self.segments += channel.segments
        state = self.simulation.state
        starts = state.population_start[:-1]
        self.spend += np.add.reduceat(state.spend, starts)
        self.wins += np.add.reduceat(state.wins, starts)
        self.value += np.add.reduceat(state.value, starts)
        if self.conversions is not None:
            self._add_conversions()
        if self.first_multiplier is None:
            self.first_multiplier = self._mean_multiplier()

    def _add_conversions(self) -> None:
        from bidscape.mechanisms import MECHANISMS

        state = self.simulation.state
        for c, channel in enumerate(self.simulation.channels()):  # as the round just played them
            position = MECHANISMS.get(channel.mechanism.type).capabilities.clicks
            ranges = state.channel_ranges[c]
            np.add.at(self.conversions, ranges[:, 2],
                      expected_conversions(state.channel_outcomes[c], ranges, position, self.conversion_rates))

    def _mean_multiplier(self) -> np.ndarray:
        state = self.simulation.state
        return np.add.reduceat(state.multiplier, state.population_start[:-1]) / np.diff(state.population_start)

    def _mean_regret(self, p: int) -> Optional[float]:
        regret = self.simulation.strategies[p].regret()
        return None if regret is None else float(np.mean(regret))

    def summary(self) -> dict[str, Any]:
        m = dict(self.market)
        m["sold_share"] = ratio(m, *MARKET_RATIOS["sold_share"]) or 0.0  # of slot impressions
        m["mean_price"] = ratio(m, *MARKET_RATIOS["mean_price"])
        m["efficiency"] = ratio(m, *MARKET_RATIOS["efficiency"])
        state = self.simulation.state
        last_multiplier = self._mean_multiplier()
        populations = []
        for p, population in enumerate(self.simulation.scenario.populations):
            budget = state.budget[state.population_slice(p)]
            finite = bool(np.all(np.isfinite(budget)))
            total_budget = float(budget.sum()) if finite else None
            populations.append({
                "population": population.name,
                "strategy": population.strategy,
                "agents": population.size,
                "budget": total_budget,
                "spend": float(self.spend[p]),
                "budget_utilisation": float(self.spend[p] / total_budget) if total_budget else None,
                "wins": int(self.wins[p]),
                "value": float(self.value[p]),
                "utility": float(self.value[p] - self.spend[p]),
                "liquid_welfare": float(np.minimum(budget, self.simulation.value_won[state.population_slice(p)]).sum()),
                "mean_multiplier_first_round": float(self.first_multiplier[p]) if self.first_multiplier is not None else None,
                "mean_multiplier_last_round": float(last_multiplier[p]),
                "mean_regret": self._mean_regret(p),
            } | self._conversions(p))
        summary = {"market": m, "populations": populations}
        if self.segment_names:
            summary["segments"] = [self._segment(name, row) for name, row in zip(self.segment_names, self.segments)]
        return json_safe(summary)  # e.g. a NaN mean regret: null, not NaN

    def _conversions(self, p: int) -> dict[str, Any]:
        """Expected conversions and spend per conversion, when some population values conversions."""
        if self.conversions is None:
            return {}
        conversions = float(self.conversions[p])  # NaN (null) for a population without a conversion rate
        return {"conversions": conversions,
                "cost_per_conversion": float(self.spend[p]) / conversions if conversions > 0 else None}

    @staticmethod
    def _segment(name: str, row: np.ndarray) -> dict[str, Any]:
        auctions, sold, _, revenue, welfare, max_welfare = (float(x) for x in row)
        return {"segment": name, "auctions": int(auctions), "sold": int(sold), "revenue": revenue,
                "welfare": welfare, "efficiency": welfare / max_welfare if max_welfare > 0 else None,
                "mean_price": revenue / sold if sold > 0 else None}

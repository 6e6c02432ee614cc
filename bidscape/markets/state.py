"""Market state: struct-of-arrays over all agents, populations as contiguous ranges.

No Python object per agent: an agent is a row index. Memory is about 80 bytes per agent
(bid state 16, outcome state 32, budget 8, multiplier 8, dedup mark 1, plus what
strategies keep), so 1e7 agents fit in well under 1 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bidscape.bidders.base import PopulationView, RoundFeedback
from bidscape.engine.kernel import BID_FACTOR, REMAINING, SPEND, VALUE, VALUE_SCALE, WINS
from bidscape.scenario import Population, Scenario


@dataclass
class MarketState:
    population_names: list[str]
    population_start: np.ndarray  # int64[P + 1]: agents of population p are start[p]:start[p+1]
    value_tables: np.ndarray  # float64[P, intervals + 1]: per-auction value quantiles
    bid_state: np.ndarray  # float64[A, 2]: bid_factor, remaining_budget
    outcome_state: np.ndarray  # float64[A, 4]: value_scale, spend, wins, value (this round)
    budget: np.ndarray  # float64[A]: per run; inf when unlimited
    multiplier: np.ndarray  # float64[A]: set by strategies before each round
    marked: np.ndarray  # uint8[A]: scratch for drawing distinct participants

    @classmethod
    def build(cls, scenario: Scenario, seed: np.random.SeedSequence) -> "MarketState":
        """Draw per-agent budgets and value scales, one generator per population."""
        populations = scenario.populations
        sizes = [p.size for p in populations]
        start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n_agents = int(start[-1])
        outcome_state = np.zeros((n_agents, 4))
        budget = np.empty(n_agents)
        for population, child, lo, hi in zip(populations, seed.spawn(len(populations)), start[:-1], start[1:]):
            rng = np.random.default_rng(child)
            outcome_state[lo:hi, VALUE_SCALE] = population.value_scale.sample(rng, population.size)
            budget[lo:hi] = population.budget.sample(rng, population.size) if population.budget else np.inf
        bid_state = np.zeros((n_agents, 2))
        bid_state[:, REMAINING] = budget
        return cls(
            population_names=[p.name for p in populations],
            population_start=start,
            value_tables=value_tables(populations),
            bid_state=bid_state,
            outcome_state=outcome_state,
            budget=budget,
            multiplier=np.ones(n_agents),
            marked=np.zeros(n_agents, np.uint8),
        )

    @property
    def n_agents(self) -> int:
        return self.budget.shape[0]

    @property
    def remaining_budget(self) -> np.ndarray:
        return self.bid_state[:, REMAINING]

    @property
    def value_scale(self) -> np.ndarray:
        return self.outcome_state[:, VALUE_SCALE]

    @property
    def spend(self) -> np.ndarray:
        return self.outcome_state[:, SPEND]

    @property
    def wins(self) -> np.ndarray:
        return self.outcome_state[:, WINS]

    @property
    def value(self) -> np.ndarray:
        return self.outcome_state[:, VALUE]

    def population_slice(self, p: int) -> slice:
        return slice(int(self.population_start[p]), int(self.population_start[p + 1]))

    def population_view(self, p: int, rounds: int) -> PopulationView:
        part = self.population_slice(p)
        return PopulationView(
            name=self.population_names[p],
            rounds=rounds,
            budget=_read_only(self.budget[part]),
            remaining_budget=_read_only(self.remaining_budget[part]),
            value_scale=_read_only(self.value_scale[part]),
            multiplier=self.multiplier[part],
        )

    def feedback(self, p: int, round_index: int) -> RoundFeedback:
        part = self.population_slice(p)
        return RoundFeedback(
            round=round_index,
            spend=_read_only(self.spend[part]),
            wins=_read_only(self.wins[part]),
            value=_read_only(self.value[part]),
            remaining_budget=_read_only(self.remaining_budget[part]),
        )

    def begin_round(self) -> None:
        """Zero the round's outcomes and fold multipliers and value scales into bid factors."""
        self.outcome_state[:, SPEND:] = 0.0
        np.multiply(self.multiplier, self.value_scale, out=self.bid_state[:, BID_FACTOR])

    def set_values(self, populations: list[Population]) -> None:
        self.value_tables = value_tables(populations)


def value_tables(populations: list[Population]) -> np.ndarray:
    return np.stack([p.values.quantile_table() for p in populations])


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view

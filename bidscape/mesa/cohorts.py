"""Cohort agents: one Mesa agent per population, or per archetype inside a population.

A bidscape market keeps its (possibly millions of) bidders as rows of flat arrays; a
``CohortAgent`` is an observer of a group of those rows. After every round the model
reads the arrays once and sets each cohort's aggregates as plain attributes (``spend``,
``wins``, ``mean_multiplier``, ...), so Mesa's ``model.agents.select(...)``,
``agents.agg(...)``, agent reporters and visualisations work on cohorts. A cohort never
changes bids: strategies set multipliers, and a change to a population goes through
``MarketModel.apply`` / ``intervene`` (e.g. ``populations.NAME.params.*``).

Cohorts (``MarketModel(cohorts_by=...)``):

- ``None`` (default): one cohort per population, except that a population whose strategy
  groups its agents into archetypes (``llm_proxy``: ``archetype_of`` and ``labels``) gets
  one cohort per archetype, the very groups the strategy decides for;
- ``"population"``: exactly one cohort per population;
- ``("value_scale", "budget")`` (2 quantile bins each: below / above the median) or
  ``{"value_scale": 3, "budget": 2}``: quantile bins inside every population, cut as
  ``llm_proxy`` cuts its archetypes (``bidscape.bidders.llm_proxy.archetypes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import mesa
import numpy as np
from numba import njit

from bidscape.bidders.llm_proxy import ATTRIBUTES, archetypes
from bidscape.errors import InputError, Problem

AGGREGATES = ("agents", "mean_multiplier", "spend", "wins", "value", "utility", "budget",
              "budget_remaining", "spend_to_date", "budget_utilisation", "mean_regret")


class CohortAgent(mesa.Agent):
    """A group of market agents seen as one Mesa agent; its attributes are read from the arrays.

    After each round: ``agents`` (members), ``mean_multiplier`` (the round's bid
    multiplier, mean over members), ``spend``, ``wins``, ``value``, ``utility`` (this
    round, all channels), ``budget`` (per run, ``inf`` if some member is unlimited),
    ``budget_remaining``, ``spend_to_date``, ``budget_utilisation`` (spend so far /
    budget, None when unlimited), ``mean_regret`` (learners; None otherwise). Before the
    first round the per-round figures are 0.
    """

    def __init__(self, model: mesa.Model, cohort: str, population: str, label: str, members: int):
        super().__init__(model)
        self.cohort = cohort  # "advertisers", or "proxied/2" for an archetype
        self.population = population
        self.label = label  # what the cohort is, e.g. "all agents" or "value_scale 0.8..1 (bin 1 of 2)"
        self.agents = members
        self.mean_multiplier = 0.0
        self.spend = self.wins = self.value = self.utility = 0.0
        self.budget = self.budget_remaining = 0.0
        self.spend_to_date = 0.0
        self.budget_utilisation: Optional[float] = None
        self.mean_regret: Optional[float] = None
        self._rows: Any = None  # set by Cohorts: a slice of the arrays, or an index array

    def members(self) -> np.ndarray:
        """Indices of the member agents in the market's arrays (the ``agent`` column of agents.arrow)."""
        rows = self._rows
        return np.arange(rows.start, rows.stop, dtype=np.int64) if isinstance(rows, slice) else rows.copy()

    def __repr__(self) -> str:
        return f"CohortAgent({self.cohort!r}, agents={self.agents})"


def cohort_bins(cohorts_by: Any) -> Optional[dict[str, int]]:
    """``cohorts_by`` as quantile bins per attribute; None for the defaults ("population" or None)."""
    if cohorts_by is None or cohorts_by == "population":
        return None
    if isinstance(cohorts_by, str):
        cohorts_by = (cohorts_by,)
    bins = dict(cohorts_by) if isinstance(cohorts_by, Mapping) else {name: 2 for name in cohorts_by}
    for name, k in bins.items():
        if name not in ATTRIBUTES:
            raise InputError(Problem("cohorts_by", f"cannot group agents by {name!r}",
                                     f'use "population", or bins of: {", ".join(ATTRIBUTES)}'))
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 16:
            raise InputError(Problem(f"cohorts_by.{name}", f"{k!r} is not a number of bins",
                                     "use an integer from 1 to 16"))
    return bins


class Cohorts:
    """The model's cohort agents and how to aggregate the arrays over them."""

    def __init__(self, model: mesa.Model, simulation: Any, cohorts_by: Any = None):
        bins = cohort_bins(cohorts_by)
        state = simulation.state
        self.agents: list[CohortAgent] = []
        self._groups: list[tuple[slice, Optional[np.ndarray], int, int]] = []  # rows, codes, first, count
        for p, name in enumerate(state.population_names):
            part = state.population_slice(p)
            strategy = simulation.strategies[p]
            if bins is not None:
                codes, labels = archetypes(state.population_view(p, simulation.scenario.run.rounds), bins)
            elif cohorts_by is None and hasattr(strategy, "archetype_of") and hasattr(strategy, "labels"):
                codes, labels = np.asarray(strategy.archetype_of, np.int64), list(strategy.labels)
            else:
                codes, labels = None, ["all agents"]
            if len(labels) == 1:
                codes = None
            first = len(self.agents)
            for k, label in enumerate(labels):
                size = part.stop - part.start if codes is None else int(np.count_nonzero(codes == k))
                agent = CohortAgent(model, name if codes is None else f"{name}/{k}", name, label, size)
                agent._rows = part if codes is None else np.flatnonzero(codes == k) + part.start
                self.agents.append(agent)
            self._groups.append((part, codes, first, len(labels)))
        self.population_names = list(state.population_names)
        self.sizes = np.array([agent.agents for agent in self.agents], np.float64)
        self.budget = np.array([state.budget[agent._rows].sum() for agent in self.agents])
        self.spend_to_date = np.zeros(len(self.agents))
        for agent, budget in zip(self.agents, self.budget):
            agent.budget = agent.budget_remaining = float(budget)

    def _sum(self, *columns: np.ndarray) -> np.ndarray:
        """Per cohort sums of five arrays over all agents: float64[cohorts, 5]."""
        out = np.zeros((len(self.agents), 5))
        none = np.zeros(0, np.int64)
        for part, codes, first, k in self._groups:
            cohort_sums(none if codes is None else codes, *(c[part] for c in columns), out[first:first + k])
        return out

    def population_sums(self, per_cohort: np.ndarray) -> np.ndarray:
        return np.array([per_cohort[first:first + k].sum() for _, _, first, k in self._groups])

    def refresh(self, simulation: Any) -> dict[str, np.ndarray]:
        """Read the round just played from the arrays into the cohort agents; per-population sums back."""
        state = simulation.state
        sums = self._sum(state.spend, state.wins, state.value, state.multiplier, state.remaining_budget)
        spend, wins, value, multiplier, remaining = sums.T
        self.spend_to_date += spend
        for i, agent in enumerate(self.agents):
            agent.mean_multiplier = float(multiplier[i] / self.sizes[i])
            agent.spend, agent.wins, agent.value = float(spend[i]), float(wins[i]), float(value[i])
            agent.utility = agent.value - agent.spend
            agent.budget_remaining = float(remaining[i])
            agent.spend_to_date = float(self.spend_to_date[i])
            agent.budget_utilisation = utilisation(self.spend_to_date[i], self.budget[i])
        for p, (part, codes, first, k) in enumerate(self._groups):
            regret = simulation.strategies[p].regret()
            if regret is not None:
                regret = np.asarray(regret, np.float64)
                regret = (np.array([regret.sum()]) if codes is None
                          else np.bincount(codes, weights=regret, minlength=k)) / self.sizes[first:first + k]
            for j in range(k):
                self.agents[first + j].mean_regret = None if regret is None else float(regret[j])
        return {"spend": self.population_sums(spend), "wins": self.population_sums(wins),
                "multiplier": self.population_sums(multiplier), "spend_to_date": self.population_sums(self.spend_to_date),
                "budget": self.population_sums(self.budget), "agents": self.population_sums(self.sizes)}


@njit(cache=True)
def cohort_sums(codes, a, b, c, d, e, out):
    """Add ``a[i] .. e[i]`` into ``out[codes[i], 0..4]`` (all into row 0 when ``codes`` is empty).

    One pass over the (strided) state columns instead of one numpy reduction per column.
    """
    for i in range(a.shape[0]):
        row = codes[i] if codes.shape[0] else 0
        out[row, 0] += a[i]
        out[row, 1] += b[i]
        out[row, 2] += c[i]
        out[row, 3] += d[i]
        out[row, 4] += e[i]


def utilisation(spent: float, budget: float) -> Optional[float]:
    """Spend so far as a share of the budget; None when the budget is unlimited (or zero)."""
    return float(spent / budget) if np.isfinite(budget) and budget > 0 else None

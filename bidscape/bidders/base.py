"""How strategies meet the engine.

A strategy controls one population. Between rounds it sets each agent's bid multiplier
(``decide``), and after the round it learns from per-agent aggregates (``observe``).
Within a round the kernel bids ``min(multiplier * value, remaining_budget)`` for every
agent, auction by auction, so strategies never run per auction and never per agent in
Python: they work on whole arrays.

A new strategy is one module with a ``Strategy`` subclass (its parameters a pydantic
model in ``Params``) plus one line in ``bidscape/bidders/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class PopulationView:
    """Array views of one population's agents (slices of the market state, no copies)."""

    name: str
    rounds: int  # rounds in the run
    budget: np.ndarray  # per run; inf when unlimited
    remaining_budget: np.ndarray
    value_scale: np.ndarray
    multiplier: np.ndarray  # written by ``decide``

    @property
    def size(self) -> int:
        return self.budget.shape[0]


@dataclass(frozen=True)
class RoundFeedback:
    """What each agent of the population got in one round."""

    round: int
    spend: np.ndarray
    wins: np.ndarray
    value: np.ndarray
    remaining_budget: np.ndarray


class Strategy:
    """Base class of strategies: ``Params`` validates the scenario's ``params`` table."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    needs_budget: ClassVar[bool] = False

    def __init__(self, params: BaseModel, agents: PopulationView, rng: np.random.Generator):
        self.params = params
        self.agents = agents
        self.rng = rng

    def set_params(self, params: BaseModel) -> None:
        """New parameters from a scheduled event; learned state is kept."""
        self.params = params

    def decide(self, round_index: int) -> None:
        """Write ``self.agents.multiplier`` for the coming round."""
        raise NotImplementedError

    def observe(self, feedback: RoundFeedback) -> None:
        """Learn from the round just played (do not change multipliers here)."""

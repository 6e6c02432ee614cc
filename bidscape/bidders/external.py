"""External control: multipliers set from outside the simulation, round by round.

The RL trainer (``bidscape train-rl``), the PettingZoo environment
(``bidscape.rl.env.MarketEnv``) and your own code drive a population with this strategy:
before each ``Simulation.step()`` call ``set_multipliers`` on the population's strategy
object (``simulation.strategies[p]``); agents that were never set bid
``params.multiplier x value``, and a multiplier stays until it is set again. After the
round, ``last_feedback`` holds what the population got (spend, wins, value per agent).

    [[populations]]
    strategy = "external"
    params = { multiplier = 1.0 }

Run from a scenario file with nobody setting multipliers, it is constant bidding at
``params.multiplier``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bidscape import limits
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy


class ExternalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    multiplier: limits.Multiplier = Field(1.0, ge=0, allow_inf_nan=False,
                                          description="bid = multiplier x value for agents not set from outside")


class External(Strategy):
    name = "external"
    summary = "multipliers set from outside each round (RL trainer, PettingZoo env, your code)"
    Params = ExternalParams

    def __init__(self, params: ExternalParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        self.next_multiplier = np.full(agents.size, params.multiplier)
        self.last_feedback: Optional[RoundFeedback] = None

    def set_multipliers(self, multipliers, agents: slice | np.ndarray = slice(None)) -> None:
        """Multipliers for the coming rounds: of all agents, or of ``agents`` (a slice or indices)."""
        values = np.asarray(multipliers, dtype=np.float64)
        if not np.all(np.isfinite(values) & (values >= 0)):
            raise ValueError(f"multipliers must be finite and >= 0 (population '{self.agents.name}')")
        self.next_multiplier[agents] = values

    def decide(self, round_index: int) -> None:
        self.agents.multiplier[:] = self.next_multiplier

    def observe(self, feedback: RoundFeedback) -> None:
        # views of the market state: valid until the next round starts
        self.last_feedback = feedback

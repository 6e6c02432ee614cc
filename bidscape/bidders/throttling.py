"""Throttling: pace a budget by taking part in only a share of the auctions.

Each agent bids ``multiplier x value`` whenever it takes part, and takes part in each
auction it is drawn for with probability ``p`` (the kernel draws this per auction and
agent from the run's hash, so it is reproducible). After each round ``p`` moves towards
the per-round budget rate ``rho = remaining budget / rounds left``:

    p <- clip(p * (1 + step * (rho - spend) / rho), p_min, 1)

the multiplicative form of the probabilistic throttling of Balseiro, Kroer & Kumar
(2021, "Budget management strategies in repeated auctions"): spend per round is about
proportional to ``p``, so the update is a damped fixed-point step. Unlike pacing it
leaves the bid itself alone, so a throttled bidder stays truthful in a second-price
auction and is a fair comparison for pacing.

    [[populations]]
    strategy = "throttling"
    budget = { dist = "uniform", low = 20.0, high = 60.0 }
    params = { step = 0.5 }
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bidscape import limits
from bidscape.bidders.base import Modifier, PopulationView, RoundFeedback, Strategy


class ThrottlingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    multiplier: limits.Multiplier = Field(1.0, ge=0, allow_inf_nan=False,
                                          description="bid = multiplier x value when taking part")
    step: float = Field(0.5, gt=0, le=1, allow_inf_nan=False, description="relative step of the participation update")
    initial: float = Field(1.0, gt=0, le=1, allow_inf_nan=False, description="starting participation probability")
    p_min: float = Field(0.001, ge=0, le=1, allow_inf_nan=False, description="lowest participation probability")


class Throttling(Strategy):
    name = "throttling"
    summary = "take part in each auction with probability p; p paces spend to budget left / rounds left"
    Params = ThrottlingParams
    needs_budget = True
    modifiers = frozenset({Modifier.PARTICIPATION})

    def __init__(self, params: ThrottlingParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        agents.participation[:] = params.initial
        self.rate = np.zeros(agents.size)

    def decide(self, round_index: int) -> None:
        self.agents.multiplier[:] = self.params.multiplier
        self.rate = self.agents.remaining_budget / (self.agents.rounds - round_index)

    def observe(self, feedback: RoundFeedback) -> None:
        p = self.agents.participation
        gap = np.divide(self.rate - feedback.spend, self.rate, out=np.full(p.size, -1.0), where=self.rate > 0)
        p *= 1.0 + self.params.step * np.clip(gap, -1.0, 1.0)
        np.clip(p, self.params.p_min, 1.0, out=p)

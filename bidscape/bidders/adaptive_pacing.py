"""Adaptive pacing: dual-gradient budget pacing (Balseiro & Gur, 2019).

Each agent bids ``value / (1 + mu)``. After every round, ``mu`` takes a projected
gradient step on the dual of the budget constraint: it rises when the round's spend ran
above the per-round budget rate ``rho = budget / rounds`` and falls when it ran below:

    mu <- clip(mu + step * (spend - rho) / rho, 0, mu_max)

The gap is divided by ``rho`` so that ``step`` is dimensionless (the paper's step size
is ``step / rho``). With ``replan = true`` the rate is re-planned every round as the
remaining budget over the rounds left, so early over- or under-spending is spread over
the rest of the run instead of ending the budget early (or leaving some unspent). In a stationary market the spend per round settles near ``rho``
and the whole budget is used by the last round; exact in-round budgets guarantee no
overspend on the way.

    [[populations]]
    strategy = "adaptive_pacing"
    budget = { dist = "uniform", low = 50.0, high = 150.0 }
    params = { step = 0.1 }
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy


class AdaptivePacingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    step: float = Field(0.1, gt=0, le=10, allow_inf_nan=False,
                        description="dual step size, relative to the per-round budget")
    initial_mu: float = Field(0.0, ge=0, allow_inf_nan=False,
                              description="starting dual variable (multiplier 1 / (1 + mu))")
    mu_max: float = Field(100.0, gt=0, allow_inf_nan=False, description="upper bound of mu")
    replan: bool = Field(False, description="target remaining budget / rounds left, not budget / rounds")


def budget_rate(agents: PopulationView, round_index: int, replan: bool) -> np.ndarray:
    """Each agent's per-round budget rate ``rho``: ``budget / rounds``, or with ``replan`` the budget
    left over the rounds left (round ``round_index`` included)."""
    if replan:
        return agents.remaining_budget / (agents.rounds - round_index)
    return agents.budget / agents.rounds


class AdaptivePacing(Strategy):
    name = "adaptive_pacing"
    summary = "dual-gradient budget pacing: multiplier 1/(1+mu), mu tracks spend vs budget/rounds"
    Params = AdaptivePacingParams
    needs_budget = True

    def __init__(self, params: AdaptivePacingParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        self.mu = np.full(agents.size, min(params.initial_mu, params.mu_max))

    def decide(self, round_index: int) -> None:
        agents = self.agents
        self.rate = budget_rate(agents, round_index, self.params.replan)
        np.divide(1.0, 1.0 + self.mu, out=agents.multiplier)

    def observe(self, feedback: RoundFeedback) -> None:
        gap = np.divide(feedback.spend - self.rate, self.rate, out=np.zeros_like(self.rate),
                        where=self.rate > 0)
        self.mu += self.params.step * gap
        np.clip(self.mu, 0.0, self.params.mu_max, out=self.mu)

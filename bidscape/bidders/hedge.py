"""Hedge (multiplicative weights) over a grid of bid multipliers, with full information.

After every round each agent learns the utility every multiplier of its grid would
have earned in the auctions it took part in, the other bids held fixed (computed by the
engine from the highest competing bid of each auction, ``bidscape.engine.counterfactual``).
It plays arm ``i`` with probability proportional to ``exp(eta * U_i / s)``, ``U_i`` the
arm's cumulative counterfactual utility and ``s`` the agent's largest absolute per-round
utility so far. The default ``eta = sqrt(8 ln K / T) / 2`` gives regret
O(sqrt(T ln K)) (Freund & Schapire 1997). Needs a first-price, second-price or all-pay
auction in every channel of the population.

    [[populations]]
    strategy = "hedge"
    params = { grid = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0] }
"""

from typing import Optional

import numpy as np
from pydantic import Field

from bidscape.bidders.grid import GridLearner, GridParams, sample_from_logits


class HedgeParams(GridParams):
    eta: Optional[float] = Field(None, gt=0, allow_inf_nan=False,
                                 description="learning rate (default: sqrt(8 ln K / T) / 2)")


class Hedge(GridLearner):
    name = "hedge"
    summary = "no-regret learner over a multiplier grid, full information (multiplicative weights)"
    Params = HedgeParams
    full_information = True

    def __init__(self, params, agents, rng):
        super().__init__(params, agents, rng)
        self.scale = np.full(agents.size, 1e-300)  # largest absolute round utility seen, per agent

    def learn(self, feedback, utility) -> None:
        np.maximum(self.scale, np.abs(utility), out=self.scale)
        if feedback.counterfactual is not None:
            np.maximum(self.scale, np.abs(feedback.counterfactual).max(axis=1), out=self.scale)

    @property
    def eta(self) -> float:
        if self.params.eta is not None:
            return self.params.eta
        return float(np.sqrt(8 * np.log(self.grid.size) / self.agents.rounds) / 2)

    def choose(self, round_index: int) -> np.ndarray:
        if self.cumulative_counterfactual is None:
            return self.rng.integers(0, self.grid.size, self.agents.size)
        n = self.agents.size
        probabilities = np.empty_like(self.cumulative_counterfactual)
        return sample_from_logits(self.cumulative_counterfactual, self.eta / self.scale, 0.0, self.rng.random(n),
                                  probabilities)

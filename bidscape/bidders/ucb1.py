"""UCB1 over a grid of bid multipliers (bandit feedback; Auer, Cesa-Bianchi & Fischer 2002).

Each agent first plays every arm once (in an order rotated per agent, so that a
population does not explore in lockstep), then the arm with the highest
``mean reward + sqrt(2 ln t / plays)``, rewards on [0, 1] (see ``bidscape.bidders.grid``).
Regret grows as O(log T) in a stationary market.

    [[populations]]
    strategy = "ucb1"
    params = { grid = [0.6, 0.7, 0.8, 0.9, 1.0] }
"""

import numpy as np
from pydantic import Field

from bidscape.bidders.grid import GridLearner, GridParams


class Ucb1Params(GridParams):
    exploration: float = Field(2.0, ge=0, allow_inf_nan=False,
                               description="c in the bonus sqrt(c ln t / plays)")


class Ucb1(GridLearner):
    name = "ucb1"
    summary = "bandit over a multiplier grid: highest upper confidence bound (UCB1)"
    Params = Ucb1Params

    def __init__(self, params, agents, rng):
        super().__init__(params, agents, rng)
        self.offset = rng.integers(0, self.grid.size, self.rows)

    def choose(self, round_index: int) -> np.ndarray:
        k = self.grid.size
        if self.t < k:
            return (self.offset + self.t) % k
        bonus = np.sqrt(self.params.exploration * np.log(self.t) / np.maximum(self.plays, 1.0))
        return (self.mean_unit_reward() + bonus).argmax(axis=1)

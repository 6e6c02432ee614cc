"""Epsilon-greedy over a grid of bid multipliers (bandit feedback).

Each round each agent plays a uniformly random arm with probability ``epsilon_t`` and
otherwise its best arm so far (highest mean utility; unplayed arms first). With
``decay = true``, ``epsilon_t = min(1, epsilon * arms / (t + 1))``, the schedule with
logarithmic regret of Auer, Cesa-Bianchi & Fischer (2002).

    [[populations]]
    strategy = "epsilon_greedy"
    params = { low = 0.5, high = 1.0, arms = 6, epsilon = 0.1 }
"""

import numpy as np
from pydantic import Field

from bidscape.bidders.grid import GridLearner, GridParams


class EpsilonGreedyParams(GridParams):
    epsilon: float = Field(0.1, ge=0, le=1, allow_inf_nan=False, description="exploration probability")
    decay: bool = Field(False, description="epsilon_t = min(1, epsilon * arms / (t + 1))")


class EpsilonGreedy(GridLearner):
    name = "epsilon_greedy"
    summary = "bandit over a multiplier grid: explore with probability epsilon, else the best arm so far"
    Params = EpsilonGreedyParams

    def choose(self, round_index: int) -> np.ndarray:
        n, k = self.plays.shape
        epsilon = self.params.epsilon
        if self.params.decay:
            epsilon = min(1.0, epsilon * k / (self.t + 1))
        mean = np.divide(self.total, self.plays, out=np.zeros_like(self.total), where=self.plays > 0)
        mean[self.plays == 0] = np.inf  # try every arm once first
        greedy = mean.argmax(axis=1)
        explore = self.rng.random(n) < epsilon
        random_arm = self.rng.integers(0, k, n)
        return np.where(explore, random_arm, greedy)

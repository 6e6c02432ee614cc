"""Gaussian Thompson sampling over a grid of bid multipliers (bandit feedback).

Each round each agent draws, for every arm, ``theta ~ Normal(mean reward, scale^2 /
(plays + 1))`` (rewards on [0, 1]; unplayed arms have mean 0.5) and plays the arm with
the largest draw (Agrawal & Goyal 2013, Gaussian priors).

    [[populations]]
    strategy = "thompson"
    params = { low = 0.5, high = 1.0, arms = 6 }
"""

import numpy as np
from pydantic import Field

from bidscape.bidders.grid import GridLearner, GridParams


class ThompsonParams(GridParams):
    scale: float = Field(1.0, gt=0, allow_inf_nan=False, description="posterior standard deviation at one play")


class Thompson(GridLearner):
    name = "thompson"
    summary = "bandit over a multiplier grid: Gaussian Thompson sampling"
    Params = ThompsonParams

    def choose(self, round_index: int) -> np.ndarray:
        spread = self.params.scale / np.sqrt(self.plays + 1.0)
        draws = self.mean_unit_reward() + spread * self.rng.standard_normal(self.plays.shape)
        return draws.argmax(axis=1)

"""EXP3 over a grid of bid multipliers (bandit feedback; Auer, Cesa-Bianchi, Freund & Schapire 2002).

Each agent keeps log-weights over the arms and plays arm ``i`` with probability
``(1 - gamma) softmax(w)_i + gamma / K``. After the round's reward ``x`` on [0, 1] it
subtracts ``eta (1 - x) / p_i`` from the log-weight of the arm it played: an
importance-weighted, unbiased estimate of every arm's loss (the loss-based form, whose
estimates stay bounded on one side). With ``gamma = 0`` and ``eta = sqrt(2 ln K / (T K))``
(the defaults, T = rounds of the run) its expected regret is at most ``sqrt(2 T K ln K)``
against any sequence of rewards (Lattimore & Szepesvari 2020, Theorem 11.2), which is
why it is the learner of choice among other learners (adversarial feedback).

    [[populations]]
    strategy = "exp3"
    params = { low = 0.3, high = 1.0, arms = 8 }
"""

from typing import Optional

import numpy as np
from pydantic import Field

from bidscape.bidders.grid import GridLearner, GridParams, sample_from_logits


class Exp3Params(GridParams):
    eta: Optional[float] = Field(None, gt=0, allow_inf_nan=False,
                                 description="learning rate (default: sqrt(2 ln K / (T K)))")
    gamma: float = Field(0.0, ge=0, le=1, allow_inf_nan=False, description="extra uniform exploration")


class Exp3(GridLearner):
    name = "exp3"
    summary = "adversarial bandit over a multiplier grid (EXP3)"
    Params = Exp3Params

    def __init__(self, params, agents, rng):
        super().__init__(params, agents, rng)
        self.log_weights = np.zeros(self.plays.shape)
        self.probabilities = np.full(self.plays.shape, 1.0 / self.grid.size)

    @property
    def eta(self) -> float:
        if self.params.eta is not None:
            return self.params.eta
        k = self.grid.size
        return float(np.sqrt(2 * np.log(k) / (self.agents.rounds * k)))

    def choose(self, round_index: int) -> np.ndarray:
        n = self.agents.size
        return sample_from_logits(self.log_weights, np.ones(n), self.params.gamma, self.rng.random(n),
                                  self.probabilities)

    def learn(self, feedback, utility) -> None:
        rows = np.arange(utility.size)
        played = self.probabilities[rows, self.arm]
        self.log_weights[rows, self.arm] -= self.eta * (1.0 - self.unit_reward(utility)) / played

"""EXP3 over a grid of bid multipliers (bandit feedback; Auer, Cesa-Bianchi, Freund & Schapire 2002).

Each round's utility is mapped onto a loss ``l = 1 - x`` on [0, 1] (``x`` the reward on [0, 1]
of ``bidscape.bidders.grid``). Each agent keeps ``L_k``, an importance-weighted estimate of
every arm's cumulative loss (the played arm's loss over the probability it had: unbiased, and
bounded on one side), and plays arm ``k`` with probability ``(1 - gamma) softmax(-rate_t L)_k +
gamma / K``, where

    rate_t = min(rate_{t-1}, eta_t / s_t),   eta_t = sqrt(ln K / (t K))

is the anytime rate of Bubeck & Cesa-Bianchi (2012, Theorem 3.1) over a running scale
``s_t``: the mean loss of the arms the agent played so far, but at least a quarter
(``grid.FLOOR``; 1 before any round). With ``gamma = 0`` (the default) its expected regret on
these losses is at most ``5 sqrt(T K ln K)`` against any sequence of utilities, for every T
(docs/learners.md derives it and says what it means in utility), which is why it is the
learner of choice among other learners (adversarial feedback).

    [[populations]]
    strategy = "exp3"
    params = { low = 0.3, high = 1.0, arms = 8 }
"""

from typing import Optional

import numpy as np
from numba import njit
from pydantic import Field

from bidscape.bidders.grid import FLOOR, MAX_RATE, AnytimeRate, GridParams, lower_rate, sample_from_logits


class Exp3Params(GridParams):
    eta: Optional[float] = Field(None, gt=0, allow_inf_nan=False,
                                 description="fixed rate on losses over the running scale, instead of the "
                                             "anytime sqrt(ln K / (t K))")
    gamma: float = Field(0.0, ge=0, le=1, allow_inf_nan=False, description="extra uniform exploration")


class Exp3(AnytimeRate):
    name = "exp3"
    summary = "adversarial bandit over a multiplier grid (EXP3)"
    Params = Exp3Params

    def __init__(self, params, agents, rng):
        super().__init__(params, agents, rng)
        n, k = self.plays.shape
        self.estimate = np.zeros((n, k))  # -L: minus the estimated cumulative loss of every arm
        self.probabilities = np.full((n, k), 1.0 / k)  # of the round being played
        self.loss_total = np.zeros(n)  # losses of the arms played
        self.rate = np.full(n, MAX_RATE)  # rate_t, per agent; never increases

    def scale(self) -> np.ndarray:
        """The running scale ``s``: mean loss of the arms played, at least FLOOR (1 before any round)."""
        if self.t == 0:
            return np.ones(self.rows)
        return np.maximum(self.loss_total / self.t, FLOOR)

    def choose(self, round_index: int) -> np.ndarray:
        eta = self.params.eta
        if eta is None:
            k = self.grid.size
            eta = np.sqrt(np.log(k) / ((self.t + 1) * k))  # t + 1: the round about to be played
        lower_rate(self.rate, eta, self.scale())
        n = self.rows
        return sample_from_logits(self.estimate, self.rate, self.params.gamma, self.rng.random(n),
                                  self.probabilities)

    def learn(self, feedback, utility) -> None:
        loss = 1.0 - self.unit_reward(utility)
        self.loss_total += loss
        _importance_weighted(self.estimate, self.probabilities, self.arm, loss)


@njit(cache=True)
def _importance_weighted(estimate, probabilities, arm, loss):
    """``estimate[i, arm[i]] -= loss[i] / probabilities[i, arm[i]]`` per row, in one pass."""
    for i in range(arm.shape[0]):
        estimate[i, arm[i]] -= loss[i] / probabilities[i, arm[i]]

"""Hedge (exponential weights) over a grid of bid multipliers, with full information.

After every round each agent learns the utility every multiplier of its grid would
have earned in the auctions it took part in, the other bids held fixed (computed by the
engine from the highest competing bid of each auction, ``bidscape.engine.counterfactual``).
It plays arm ``k`` with probability proportional to ``exp(rate_t * G_k)``, ``G_k`` the arm's
cumulative counterfactual utility, and

    rate_t = min(rate_{t-1}, eta_t / s_t),   eta_t = sqrt(8 ln K / t)

the anytime rate of Cesa-Bianchi & Lugosi (2006, Theorem 2.3) over a running scale ``s_t``:
the mean spread ``max_k g_k - min_k g_k`` of the agent's rounds so far, but at least a quarter
of the largest (``grid.FLOOR``). Whatever the other bids, the regret against the mixed
play is at most ``ln K / rate_T + sum_t min(R_t, rate_t R_t^2 / 8)`` (``R_t`` the round's
spread), hence at most ``6.02 S sqrt(T ln K) + 2 S`` with ``S`` the largest spread, for every T
(docs/learners.md derives both). Needs a first-price, second-price or all-pay auction in
every channel of the population.

    [[populations]]
    strategy = "hedge"
    params = { grid = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0] }
"""

from typing import Optional

import numpy as np
from pydantic import Field

from bidscape.bidders.grid import FLOOR, MAX_RATE, AnytimeRate, GridParams, add_spread, lower_rate, sample_from_logits

ANYTIME = np.sqrt(8.0)  # eta_t = ANYTIME sqrt(ln K / t)


class HedgeParams(GridParams):
    eta: Optional[float] = Field(None, gt=0, allow_inf_nan=False,
                                 description="fixed rate on utilities over the running scale, instead of the "
                                             "anytime sqrt(8 ln K / t)")


class Hedge(AnytimeRate):
    name = "hedge"
    summary = "no-regret learner over a multiplier grid, full information (exponential weights)"
    Params = HedgeParams
    full_information = True

    def __init__(self, params, agents, rng):
        super().__init__(params, agents, rng)
        n, k = self.plays.shape
        self.probabilities = np.full((n, k), 1.0 / k)  # of the round being played
        self.spread_total = np.zeros(n)  # sum over rounds of max_k g_k - min_k g_k
        self.spread_max = np.zeros(n)
        self.rate = np.full(n, MAX_RATE)  # rate_t, per agent; never increases

    def learn(self, feedback, utility) -> None:
        if feedback.counterfactual is not None:
            add_spread(feedback.counterfactual, self.spread_total, self.spread_max)

    def scale(self) -> np.ndarray:
        """The running scale ``s``: mean spread of the rounds learned from, at least FLOOR x the largest."""
        return np.maximum(self.spread_total / max(self.t, 1), FLOOR * self.spread_max)

    def choose(self, round_index: int) -> np.ndarray:
        if self.cumulative_counterfactual is None:
            return self.rng.integers(0, self.grid.size, self.rows)
        eta = self.params.eta
        if eta is None:
            eta = ANYTIME * np.sqrt(np.log(self.grid.size) / (self.t + 1))  # t + 1: the round about to be played
        lower_rate(self.rate, eta, self.scale())
        return sample_from_logits(self.cumulative_counterfactual, self.rate, 0.0, self.rng.random(self.rows),
                                  self.probabilities)

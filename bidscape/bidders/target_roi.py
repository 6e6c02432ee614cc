"""Target return on spend: maximise value won subject to value >= target x spend (and a budget).

An autobidder that maximises the value it wins over the run subject to a return-on-spend
(RoS) constraint and, optionally, a budget (Aggarwal, Badanidiyuru & Mehta 2019,
"Autobidding with constraints"):

    max  V   s.t.  V >= tau * S,   S <= B

with ``V`` the value and ``S`` the spend summed over the run. Pricing both constraints
with multipliers ``lambda, mu >= 0`` gives the Lagrangian ``V + lambda (V - tau S) +
mu (B - S)``, which an auction at a time is ``(1 + lambda) v - (lambda tau + mu) p``:
in a truthful auction the best response is to bid

    bid = (1 + lambda) / (lambda * tau + mu) * value,

one multiplier for all auctions (uniform bidding is optimal for a value maximiser,
Aggarwal et al. 2019). ``lambda -> inf`` bids ``value / tau``, which can never pay more
than ``value / tau`` for anything in a second-price auction; a smaller ``lambda``
overbids that, as a value maximiser should while its RoS stays above target. With only
the budget binding (``lambda = 0``) the bid is ``value / mu``, budget pacing.

The multipliers are learned online by projected dual subgradient steps, the dual
descent of Balseiro, Lu & Mirrokni (2020, "Dual mirror descent for online allocation
problems") with the Euclidean mirror map. After each round, per agent, in numpy:

    lambda <- clip(lambda - step * (V_t - tau S_t - r_t) / vbar, 0, lambda_max)
    mu     <- clip(mu - budget_step * (rho_t - S_t) / rho_t, 0, mu_max)

``V_t, S_t`` are the round's value and spend, ``vbar`` the agent's mean value won per
round so far (so ``step`` is dimensionless), ``rho_t`` the per-round budget rate. With
``replan = false`` these are the paper's: ``r_t = 0`` and ``rho_t = B / T``. With
``replan = true`` (the default) the round's requirement is re-planned from what is left:
``r_t = -G_t / (T - t)`` where ``G_t`` is the RoS surplus ``sum (V - tau S)`` so far
(a deficit is made up over the rounds left, a surplus spent), and ``rho_t = remaining
budget / (T - t)``. The constraint is over the whole run, so the telescoping sum of the
updates bounds its violation by ``O(vbar * lambda_max / step)``, which does not grow
with the number of rounds; re-planning drives it towards zero by the last round.

The bid multiplier is capped at ``max_multiplier``: when the RoS target does not bind
(``lambda = 0``) and there is no budget, a value maximiser would bid without limit.

    [[populations]]
    strategy = "target_roi"
    values = { dist = "uniform", low = 0.0, high = 1.0 }
    budget = { dist = "uniform", low = 50.0, high = 150.0 }   # optional
    params = { target = 1.5, step = 0.5 }

``target_cpa`` (``bidscape.bidders.target_cpa``) is the same bidder with ``tau = 1 / cpa``.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bidscape import limits
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy


class DualParams(BaseModel):
    """Step sizes, starting points and bounds of the dual variables (shared with ``target_cpa``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    step: float = Field(2.0, gt=0, le=10, allow_inf_nan=False,
                        description="dual step of lambda (RoS constraint), relative to the value won per round")
    budget_step: float = Field(0.2, gt=0, le=10, allow_inf_nan=False,
                               description="dual step of mu (budget), relative to the per-round budget")
    initial_lambda: float = Field(5.0, ge=0, allow_inf_nan=False,
                                  description="starting lambda (larger: start nearer the safe bid value / target)")
    initial_mu: float = Field(0.0, ge=0, allow_inf_nan=False,
                              description="starting mu of agents with a budget (0: budget not yet binding)")
    lambda_max: float = Field(100.0, gt=0, allow_inf_nan=False, description="upper bound of lambda")
    mu_max: float = Field(100.0, gt=0, allow_inf_nan=False, description="upper bound of mu")
    max_multiplier: limits.Multiplier = Field(10.0, gt=0, allow_inf_nan=False,
                                              description="cap on bid / value (reached when neither constraint binds)")
    replan: bool = Field(True, description="make up RoS deficits and budget left over the rounds left "
                                           "(false: the paper's fixed per-round targets)")


class TargetRoiParams(DualParams):
    target: float = Field(gt=0, allow_inf_nan=False,
                          description="return on spend to meet over the run: value >= target x spend")


class DualConstrainedBidder(Strategy):
    """Value maximiser under ``value >= ratio x spend`` and ``spend <= budget``, by dual descent.

    Subclasses say what the constraint's ratio ``tau`` is (``ros_target``); the rest,
    state and updates, is shared.
    """

    params: DualParams

    def __init__(self, params: DualParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        n = agents.size
        self.budgeted = np.isfinite(agents.budget)
        self.lam = np.full(n, min(params.initial_lambda, params.lambda_max))
        self.mu = np.where(self.budgeted, min(params.initial_mu, params.mu_max), 0.0)
        self.value_won = np.zeros(n)  # over the rounds so far
        self.spent = np.zeros(n)
        self.rounds_seen = 0
        self._rate = np.zeros(n)  # the per-round budget rate of the coming round
        self._required = np.zeros(n)  # the RoS surplus the coming round should add

    def ros_target(self) -> float:
        """``tau``: the constraint is value >= tau x spend."""
        raise NotImplementedError

    def decide(self, round_index: int) -> None:
        agents, params = self.agents, self.params
        left = agents.rounds - round_index
        if params.replan:
            self._rate = np.divide(agents.remaining_budget, left, out=np.full(agents.size, np.inf),
                                   where=self.budgeted)
            np.divide(self.ros_target() * self.spent - self.value_won, left, out=self._required)
        else:
            self._rate = agents.budget / agents.rounds
            self._required[:] = 0.0
        price = self.lam * self.ros_target() + self.mu  # what a unit of spend costs in the Lagrangian
        out = agents.multiplier
        out[:] = params.max_multiplier
        np.divide(1.0 + self.lam, price, out=out, where=price * params.max_multiplier > 1.0 + self.lam)

    def observe(self, feedback: RoundFeedback) -> None:
        params, tau = self.params, self.ros_target()
        gap = feedback.value - tau * feedback.spend
        self.value_won += feedback.value
        self.spent += feedback.spend
        self.rounds_seen += 1
        scale = self.value_won / self.rounds_seen  # mean value won per round: makes ``step`` dimensionless
        self.lam -= params.step * np.divide(gap - self._required, scale, out=np.zeros_like(scale),
                                            where=scale > 0)
        np.clip(self.lam, 0.0, params.lambda_max, out=self.lam)
        if self.budgeted.any():
            rate = self._rate
            below = np.divide(rate - feedback.spend, rate, out=np.zeros_like(rate),
                              where=self.budgeted & (rate > 0))
            # a budget spent to the last cent has rate 0: the dual price goes up, not to nan
            below[self.budgeted & (rate <= 0)] = -1.0
            self.mu -= params.budget_step * below
            np.clip(self.mu, 0.0, params.mu_max, out=self.mu)


class TargetRoi(DualConstrainedBidder):
    name = "target_roi"
    summary = ("value maximiser with value >= target x spend (and a budget): "
               "multiplier (1+lambda)/(lambda target + mu), duals by subgradient steps")
    Params = TargetRoiParams
    params: TargetRoiParams

    def ros_target(self) -> float:
        return self.params.target

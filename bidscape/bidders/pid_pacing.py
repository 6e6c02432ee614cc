"""PID budget pacing against a daily spend plan learned from past days.

The run is cut into "days" of ``rounds_per_day`` rounds (default: the whole run is one
day), and each agent gets an equal share of its budget per day, ``budget / days`` with
``days = rounds / rounds_per_day`` (a last day cut short gets its share of the rounds).
Within a day the agent follows a target expenditure plan: ``plan[h]``, the share of the
day's budget to have spent by the end of round ``h`` of the day. A PID controller on
the log of the bid multiplier tracks it, per agent:

    E_t = (target spend to date - spend to date) / (budget / rounds)
    I_t = I_{t-1} + E_t                  (frozen while the multiplier is pinned at a bound)
    multiplier = clip(initial_multiplier * exp(kp E_t + ki I_t + kd (E_t - E_{t-1})),
                      min_multiplier, max_multiplier)

``E_t`` is the cumulative tracking error in rounds' worth of budget (positive: behind
plan, so bid more), the same units for any day length, and ``E_t - E_{t-1}`` is the
last round's spend-rate error. Spend to date and its target run over the whole run, so
what one day leaves unspent carries into the next. The integral holds the multiplier
that spends at the planned rate, so the tracking error itself goes to zero (a
proportional term alone would leave an offset). Anti-windup: the integral is frozen while
the multiplier is pinned at a bound (conditional integration) and clamped to what the
multiplier's range can use. The default is PI (``kd = 0``): a round's spend
is noisy, and the derivative term passes that noise straight to the bid.

The plan is learned from past days, as in robust budget pacing (Balseiro, Kumar,
Mirrokni, Sivan & Wang 2023, "Robust budget pacing with a single sample"), where the
target expenditure of each period follows what past days offered in it. The first day
is uniform. A strategy sees what its agents won, not what they were offered, and under
tight tracking what they win follows the plan rather than the traffic (a plan that asks
too little of a busy round still gets exactly that little, only more cheaply), so an
average of value or spend won would confirm any plan it started from. What reveals the
traffic is its price: the multiplier at which a round would have spent its plan,

    price[h] = mean multiplier in round h * (planned spend / spend) ** (1 / spend_elasticity)

(low in a busy round; the correction reads a round's over- or under-spend through an
assumed constant elasticity of spend in the multiplier, 3 by default). After each day
every round's share is moved against its price, relative to the plan-weighted mean:

    share[h] <- share[h] * (price[h] / mean price) ** -(plan_rate * spend_elasticity)

(at most x3 either way), renormalised and mixed with the uniform plan (``uniform_weight``)
as a hedge against an untypical day. If spend is ``traffic x multiplier^c`` with ``c =
spend_elasticity``, ``plan_rate = 1`` makes the new plan proportional to the day's
traffic in one step; smaller rates get there over a few days and damp noise and a wrong
``c``. At the fixed point every round is bought at the same multiplier, the constant
dual price of the optimal pacer (Balseiro & Gur 2019), and spend is shared out in
proportion to the opportunities. The plan is one per population (its agents are drawn
into auctions alike), so the state stays at a few arrays per agent.

    [[populations]]
    strategy = "pid_pacing"
    values = { dist = "uniform", low = 0.0, high = 1.0 }
    budget = { dist = "uniform", low = 50.0, high = 150.0 }
    params = { rounds_per_day = 24, kp = 0.4, ki = 0.1 }
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bidscape import limits
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy


class PidPacingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rounds_per_day: Optional[int] = Field(None, ge=1, description="rounds in a day (default: the whole run)")
    kp: float = Field(0.4, ge=0, le=10, allow_inf_nan=False,
                      description="proportional gain on the cumulative tracking error (rounds of budget)")
    ki: float = Field(0.1, ge=0, le=10, allow_inf_nan=False, description="integral gain")
    kd: float = Field(0.0, ge=0, le=10, allow_inf_nan=False,
                      description="derivative gain (on the last round's spend-rate error)")
    initial_multiplier: limits.Multiplier = Field(
        1.0, gt=0, allow_inf_nan=False, description="multiplier of the first round, and the controller's base")
    min_multiplier: limits.Multiplier = Field(0.0, ge=0, allow_inf_nan=False,
                                              description="lower bound of the multiplier")
    max_multiplier: limits.Multiplier = Field(1.0, gt=0, allow_inf_nan=False,
                                              description="upper bound of the multiplier")
    spend_elasticity: float = Field(3.0, gt=0, le=20, allow_inf_nan=False,
                                    description="assumed d log(spend) / d log(multiplier), to price a round's overspend")
    plan_rate: float = Field(0.5, ge=0, le=1, allow_inf_nan=False,
                             description="how far each day moves the plan towards the one today's prices imply")
    uniform_weight: float = Field(0.05, ge=0, le=1, allow_inf_nan=False,
                                  description="weight of the uniform plan mixed into the learned one")

    @model_validator(mode="after")
    def _bounds(self) -> "PidPacingParams":
        if self.min_multiplier > self.max_multiplier:
            raise ValueError(f"min_multiplier {self.min_multiplier:g} is above max_multiplier "
                             f"{self.max_multiplier:g}; make min_multiplier <= max_multiplier")
        return self


PLAN_STEP_LIMIT = 3.0  # a day moves a round's plan share by at most this factor, either way
MULTIPLIER_FLOOR = 1e-3  # the integral clamp's floor when min_multiplier is 0


class PidPacing(Strategy):
    name = "pid_pacing"
    summary = "PID control of the multiplier to track a daily spend plan learned from past days"
    Params = PidPacingParams
    needs_budget = True

    params: PidPacingParams

    def __init__(self, params: PidPacingParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        n = agents.size
        self.day_length = h = min(params.rounds_per_day or agents.rounds, agents.rounds)
        self.plan = np.arange(1, h + 1) / h  # cumulative share of the day's budget by each round's end
        self.plans: list[np.ndarray] = [self.plan]  # the plan of each day so far (the last is in use)
        self.prices = np.zeros(h)  # the current day's price of each round: multiplier that meets its plan
        self.round_budget = np.where(np.isfinite(agents.budget), agents.budget / agents.rounds, 0.0)
        self.spent = np.zeros(n)
        self.error = np.zeros(n)  # E: behind plan, in rounds of budget
        self.previous_error = np.zeros(n)
        self.integral = np.zeros(n)

    def set_params(self, params: PidPacingParams) -> None:
        """New gains and bounds apply from the next round; a new day length starts a uniform plan."""
        super().set_params(params)
        h = min(params.rounds_per_day or self.agents.rounds, self.agents.rounds)
        if h != self.day_length:
            self.day_length = h
            self.plan = np.arange(1, h + 1) / h
            self.plans.append(self.plan)
            self.prices = np.zeros(h)

    def target_to_date(self, round_index: int) -> float:
        """Target cumulative spend by the end of ``round_index``, in rounds of budget."""
        h = self.day_length
        day, hour = divmod(round_index, h)
        rounds_today = min(h, self.agents.rounds - day * h)  # the last day may be cut short
        return day * h + self.plan[hour] / self.plan[rounds_today - 1] * rounds_today

    def decide(self, round_index: int) -> None:
        p, out = self.params, self.agents.multiplier
        if round_index == 0:
            out[:] = np.clip(p.initial_multiplier, p.min_multiplier, p.max_multiplier)
            return
        control = p.kp * self.error + p.ki * self.integral + p.kd * (self.error - self.previous_error)
        np.exp(np.minimum(control, 700.0), out=out)
        out *= p.initial_multiplier
        np.clip(out, p.min_multiplier, p.max_multiplier, out=out)

    def observe(self, feedback: RoundFeedback) -> None:
        p = self.params
        self.spent += feedback.spend
        self.previous_error, self.error = self.error, self.previous_error
        np.divide(self.spent, self.round_budget, out=self.error, where=self.round_budget > 0)
        np.subtract(self.target_to_date(feedback.round), self.error, out=self.error)
        self.error[self.round_budget <= 0] = 0.0  # no budget: nothing to track
        # anti-windup: no integrating while the multiplier is pinned at a bound (conditional
        # integration), and never past what the multiplier's range can use (clamping)
        m = self.agents.multiplier
        pinned = ((m >= p.max_multiplier) & (self.error > 0)) | ((m <= p.min_multiplier) & (self.error < 0))
        self.integral += np.where(pinned, 0.0, self.error)
        if p.ki > 0:
            low = np.log(max(p.min_multiplier, MULTIPLIER_FLOOR) / p.initial_multiplier) / p.ki
            high = np.log(max(p.max_multiplier, MULTIPLIER_FLOOR) / p.initial_multiplier) / p.ki
            np.clip(self.integral, min(low, 0.0), max(high, 0.0), out=self.integral)
        # the round's price: the multiplier that would have spent its plan, were spend ~ multiplier^c
        hour = feedback.round % self.day_length
        planned = (self.plan[hour] - (self.plan[hour - 1] if hour else 0.0)) * self.day_length * self.round_budget.sum()
        spent = float(feedback.spend.sum())
        if spent > 0:
            self.prices[hour] = float(m.mean()) * (planned / spent) ** (1.0 / p.spend_elasticity)
        else:  # nothing bought at any multiplier tried: dear, however cheap the plan was
            self.prices[hour] = np.inf
        if hour == self.day_length - 1 and feedback.round < self.agents.rounds - 1:
            self._learn_plan()

    def _learn_plan(self) -> None:
        """Tomorrow's plan: move spend towards the rounds where it was cheap today."""
        p, h = self.params, self.day_length
        shares = np.diff(self.plan, prepend=0.0)
        known = np.isfinite(self.prices)
        prices = np.maximum(self.prices, 1e-12)
        mean_price = float(shares[known] @ prices[known] / shares[known].sum()) if known.any() else 1.0
        with np.errstate(divide="ignore", over="ignore"):
            factor = (prices / mean_price) ** -(p.plan_rate * p.spend_elasticity)
        factor = np.clip(factor, 1 / PLAN_STEP_LIMIT, PLAN_STEP_LIMIT)
        shares = shares * factor
        shares = (1.0 - p.uniform_weight) * shares / shares.sum() + p.uniform_weight / h
        self.plan = np.cumsum(shares)
        self.plan[-1] = 1.0
        self.plans.append(self.plan)

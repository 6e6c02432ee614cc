"""What the bandit and no-regret learners share: a grid of bid multipliers, per-agent state
as ``[agents, arms]`` arrays, reward scaling, and regret against the best fixed arm.

Every learner plays one arm (multiplier) per agent per round and learns from the round's
utility ``value - spend`` (bandit feedback) or, for full-information learners, from the
counterfactual utility of every arm (``RoundFeedback.counterfactual``, computed by the
engine from the highest competing bids, see ``bidscape.engine.counterfactual``).

Regret, recorded in ``agents.arrow`` (column ``regret``), is each agent's cumulative
counterfactual utility of its best fixed arm in hindsight minus the utility it actually
got: the standard external regret, with the other bids held fixed. It is recorded when
every channel of the population is a first-price, second-price or all-pay auction (the
engine can replay those); elsewhere the column is null.

Rewards are put on [0, 1] per agent for the algorithms that need it (UCB1, EXP3,
Thompson sampling): ``(u - lo) / (hi - lo)``, with ``lo`` and ``hi`` the smallest and
largest round utility the agent has seen so far (0 included). An affine map keeps the
best arm the best.

With ``contexts = "segment"`` (markets with ``[traffic]``) each agent keeps one set of arms per
segment: it plays an arm per segment, bids ``grid[arm_s] x value`` in auctions of segment ``s``,
and learns each set from that segment's utility (and counterfactuals) alone. Internally an agent
and segment is one row of the ``[rows, arms]`` arrays (row ``i * S + s``), so every learner works
unchanged; its regret is the contextual one, against the best fixed arm *per segment*, summed
over segments.

The exponential-weights learners (hedge, exp3) share their learning-rate rule: an anytime
rate ``eta_t`` divided by a running scale ``s_t`` of the agent's rounds, the mean of the
rounds seen but never below ``FLOOR`` times the largest, and never increased (``lower_rate``);
``docs/learners.md`` gives the regret bounds this keeps.
"""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bidscape import limits
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.errors import Problem

# The running scale of hedge and exp3 is the mean of the agent's rounds, but at least this
# share of the largest: the mean is what learns fast in a steady market (the largest round is
# often twice the typical one or more), the floor keeps a worst-case regret bound when
# one round dwarfs the others (the bound grows as 1 / FLOOR; docs/learners.md).
FLOOR = 0.25
# The rate before any round has a scale: the largest finite one, so that the first rounds
# set it, while ``rate * (logit - top)`` stays a number.
MAX_RATE = 1e300


class GridParams(BaseModel):
    """The arms: ``grid = [...]`` explicitly, or ``arms`` evenly spaced from ``low`` to ``high``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    grid: Optional[list[float]] = Field(None, min_length=2, description="bid multipliers to choose from")
    low: limits.Multiplier = Field(0.1, ge=0, allow_inf_nan=False, description="smallest multiplier (without grid)")
    high: limits.Multiplier = Field(1.0, gt=0, allow_inf_nan=False, description="largest multiplier (without grid)")
    arms: int = Field(10, ge=2, le=1000, description="number of multipliers (without grid)")
    track_regret: bool = Field(True, description="compute counterfactuals to record regret")
    contexts: Literal["none", "segment"] = Field(
        "none", description='"segment": one set of arms per traffic segment (markets with [traffic])')

    @field_validator("grid")
    @classmethod
    def _valid_grid(cls, grid: Optional[list[float]]) -> Optional[list[float]]:
        if grid is not None:
            if any(not np.isfinite(m) or m < 0 for m in grid):
                raise ValueError("grid multipliers must be finite and >= 0")
            if max(grid) > limits.MAX_MULTIPLIER:
                raise ValueError(f"grid multipliers must be at most {limits.MAX_MULTIPLIER:g} "
                                 f"({limits.MULTIPLIER_REASON}); use smaller multipliers")
            if len(set(grid)) != len(grid):
                raise ValueError("grid multipliers must be distinct")
        return grid

    @model_validator(mode="after")
    def _low_below_high(self) -> "GridParams":
        if self.grid is None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def multipliers(self) -> np.ndarray:
        if self.grid is not None:
            return np.array(self.grid, np.float64)
        return np.linspace(self.low, self.high, self.arms)


class GridLearner(Strategy):
    """Base of the grid learners: subclasses implement ``choose`` and ``learn``."""

    Params = GridParams
    full_information = False  # True: needs counterfactual utilities of every arm (hedge)

    def __init__(self, params: GridParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        self.grid = params.multipliers()
        per_segment = agents.segment_multiplier
        if params.contexts == "segment" and per_segment is None:
            raise ValueError(f"'{self.name}' with contexts = \"segment\" needs a market with [traffic] segments")
        self.segments = 1 if params.contexts == "none" else per_segment.shape[1]
        self.rows = agents.size * self.segments  # one per agent (and segment, with contexts = "segment")
        n, k = self.rows, self.grid.size
        self.arm = np.zeros(n, np.int64)
        self.plays = np.zeros((n, k))  # times each arm was played
        self.total = np.zeros((n, k))  # utility each arm got when played
        self.low = np.zeros(n)  # smallest round utility seen (0 included), per agent
        self.high = np.zeros(n)  # largest
        self.cumulative_utility = np.zeros(n)
        self.cumulative_counterfactual: Optional[np.ndarray] = None
        self.t = 0  # rounds learned from

    @classmethod
    def uses_segments(cls, params: GridParams) -> bool:
        return params.contexts == "segment"

    @classmethod
    def scenario_problems(cls, scenario, index: int, where: str) -> list[Problem]:
        from bidscape.mechanisms import MECHANISMS

        parsed = scenario.populations[index].parsed_params()  # None when the params did not parse
        if parsed is not None and cls.uses_segments(parsed):
            problems = segment_problems(cls.name, scenario, index, where, "params.contexts")
            if problems:
                return problems
        if not cls.full_information:
            return []

        for channel in scenario.resolved_channels():
            if index in channel.populations and channel.mechanism.type in MECHANISMS:
                if not MECHANISMS.get(channel.mechanism.type).capabilities.replayable:
                    return [Problem(f"{where}.strategy",
                                    f"'{cls.name}' learns from the counterfactual utility of every multiplier, "
                                    f"which bidscape computes for first-price, second-price and all-pay auctions; "
                                    f"channel '{channel.name}' runs '{channel.mechanism.type}'",
                                    "use a bandit-feedback learner there (exp3, ucb1, thompson, epsilon_greedy)")]
        return []

    @classmethod
    def bytes_per_agent(cls, params: GridParams, channels: int) -> int:
        # per arm: plays, totals, this round's and the cumulative counterfactual utility, and
        # temporaries (measured: 58 bytes per arm per agent with 10 arms)
        return 64 + 64 * len(params.multipliers())

    @classmethod
    def change_problems(cls, old: GridParams, new: GridParams, where: str) -> list[Problem]:
        if old.contexts != new.contexts:
            return [Problem(where, f"'{cls.name}' keeps its arms per segment or not from the start, so contexts "
                            "cannot change during a run", "set contexts at the start")]
        if np.array_equal(old.multipliers(), new.multipliers()):
            return []
        return [Problem(where, f"'{cls.name}' learns one value per multiplier of its grid, so the grid (grid, low, "
                        "high, arms) cannot change during a run", "set the grid at the start; events may change "
                        "the other parameters")]

    def set_params(self, params: GridParams) -> None:
        problems = self.change_problems(self.params, params, f"strategy '{self.name}'")
        if problems:
            raise ValueError(str(problems[0]))
        super().set_params(params)

    def counterfactual_grid(self) -> Optional[np.ndarray]:
        return self.grid if (self.full_information or self.params.track_regret) else None

    def regret(self) -> Optional[np.ndarray]:
        if self.cumulative_counterfactual is None:
            return None
        regret = self.cumulative_counterfactual.max(axis=1) - self.cumulative_utility
        return regret if self.segments == 1 else regret.reshape(-1, self.segments).sum(axis=1)

    def decide(self, round_index: int) -> None:
        self.arm = self.choose(round_index)
        if self.segments == 1:
            np.take(self.grid, self.arm, out=self.agents.multiplier)
        else:
            self.agents.multiplier.fill(1.0)
            np.take(self.grid, self.arm.reshape(-1, self.segments), out=self.agents.segment_multiplier)

    def observe(self, feedback: RoundFeedback) -> None:
        if self.segments == 1:
            utility = feedback.value - feedback.spend
        else:  # row i * S + s: agent i in segment s
            utility = (feedback.segment_value - feedback.segment_spend).T.ravel()
        count_round(self.arm, utility, self.plays, self.total, self.cumulative_utility, self.low, self.high)
        if feedback.counterfactual is not None:
            if self.cumulative_counterfactual is None:
                self.cumulative_counterfactual = np.zeros_like(self.total)
            add_rows(self.cumulative_counterfactual, feedback.counterfactual)
        self.t += 1
        self.learn(feedback, utility)

    # ---- for subclasses ----
    def choose(self, round_index: int) -> np.ndarray:
        raise NotImplementedError

    def learn(self, feedback: RoundFeedback, utility: np.ndarray) -> None:
        """Update after ``observe`` has counted the round (plays, totals, counterfactuals)."""

    def unit_reward(self, utility: np.ndarray) -> np.ndarray:
        """Utility mapped onto [0, 1] with the range the agent has seen."""
        spread = np.maximum(self.high - self.low, 1e-300)
        return np.clip((utility - self.low) / spread, 0.0, 1.0)

    def mean_unit_reward(self) -> np.ndarray:
        """Each arm's mean reward on [0, 1] (0.5 for arms not yet played)."""
        spread = np.maximum(self.high - self.low, 1e-300)[:, None]
        mean = np.divide(self.total, self.plays, out=np.zeros_like(self.total), where=self.plays > 0)
        unit = np.clip((mean - self.low[:, None]) / spread, 0.0, 1.0)
        return np.where(self.plays > 0, unit, 0.5)


def segment_problems(name: str, scenario, index: int, where: str, field: str = "strategy") -> list[Problem]:
    """Problems with population ``index`` bidding per segment (``Strategy.uses_segments``); ``field``
    names what asked for it when the scenario has no segments."""
    from bidscape.mechanisms import MECHANISMS

    if scenario.traffic is None:
        return [Problem(f"{where}.{field}", f"'{name}' bids per segment, and the scenario has no [traffic] segments",
                        "add a [traffic] section with [[traffic.segments]]"
                        + (", or drop the per-segment setting" if field != "strategy" else ""))]
    for channel in scenario.resolved_channels():
        if index in channel.populations and getattr(MECHANISMS.get(channel.mechanism.type), "all_pay", False):
            return [Problem(f"{where}.strategy", f"'{name}' learns from its spend per segment, which bidscape does "
                            f"not split by segment in all-pay auctions (channel '{channel.name}')",
                            "use it with first-price, second-price or position auctions")]
    return []


class AnytimeRate(GridLearner):
    """A grid learner with a per-agent, nonincreasing learning rate ``rate`` (hedge, exp3): it
    starts at MAX_RATE, is lowered each round by ``lower_rate``, and a new ``eta`` (an event)
    starts it again."""

    def set_params(self, params: GridParams) -> None:
        new_eta = params.eta != self.params.eta
        super().set_params(params)
        if new_eta:
            self.rate[:] = MAX_RATE


def lower_rate(rate: np.ndarray, eta: float, scale: np.ndarray) -> None:
    """``rate = min(rate, eta / scale)`` in place: the regret bounds of exponential weights with
    a time-varying rate need it never to increase (a zero scale leaves the rate as it is)."""
    np.minimum(rate, eta / np.maximum(scale, eta / MAX_RATE), out=rate)


@njit(cache=True)
def count_round(arm, utility, plays, total, cumulative_utility, low, high):
    """Count row ``i``'s round: arm ``arm[i]`` played once more for ``utility[i]``, which also goes into
    the row's cumulative utility and its range ``[low, high]`` (one pass; numpy's fancy indexing took
    about 100 ms a round at 1e6 rows)."""
    for i in range(arm.shape[0]):
        u = utility[i]
        plays[i, arm[i]] += 1.0
        total[i, arm[i]] += u
        cumulative_utility[i] += u
        low[i] = min(low[i], u)
        high[i] = max(high[i], u)


@njit(cache=True)
def add_rows(total, rows):
    """``total += rows`` for a ``rows`` that may be a strided view (the engine's counterfactuals are)."""
    for i in range(total.shape[0]):
        for k in range(total.shape[1]):
            total[i, k] += rows[i, k]


@njit(cache=True)
def add_spread(utility, total, largest):
    """Per row ``i``: ``s = max_k utility[i, k] - min_k utility[i, k]`` (how far apart the arms
    were this round), added to ``total[i]`` and maxed into ``largest[i]``; one pass."""
    n, k = utility.shape
    for i in range(n):
        low = utility[i, 0]
        high = low
        for j in range(1, k):
            low = min(low, utility[i, j])
            high = max(high, utility[i, j])
        total[i] += high - low
        largest[i] = max(largest[i], high - low)


@njit(cache=True)
def sample_from_logits(logits, factor, gamma, uniforms, probabilities):
    """Per row ``i``: ``p = (1 - gamma) softmax(factor[i] * logits[i]) + gamma / K``, written to
    ``probabilities[i]``, and one arm drawn from it with ``uniforms[i]`` (one pass, no temporaries).
    ``factor[i] * (logit - top)`` rather than ``factor[i] * logit - top``: equal ``logits`` stay
    equal however large the factor."""
    n, k = logits.shape
    arms = np.empty(n, np.int64)
    for i in range(n):
        top = logits[i, 0]
        for j in range(1, k):
            top = max(top, logits[i, j])
        total = 0.0
        for j in range(k):
            e = np.exp(factor[i] * (logits[i, j] - top))
            probabilities[i, j] = e
            total += e
        u = uniforms[i]
        arm = k - 1
        running = 0.0
        for j in range(k):
            probabilities[i, j] = (1.0 - gamma) * probabilities[i, j] / total + gamma / k
            running += probabilities[i, j]
            if running > u and arm == k - 1 and j < k - 1:
                arm = j
        arms[i] = arm
    return arms

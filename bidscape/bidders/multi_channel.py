"""Multi-channel autobidding: split one budget across channels, learning where it buys most.

Each agent bids ``multiplier x value`` in every channel (truthful by default, as the
per-channel autobidder of a second-price exchange would) and gives each channel ``c`` a
budget for the round, ``share_c x rho`` with ``rho = remaining budget / rounds left``.
It sees only what its own budgets bought (bandit feedback: value and spend per channel)
and learns the shares by exponentiated-gradient ascent on the simplex
(Deng, Lu, Mirrokni, Zhang & Zuo 2023, "Multi-channel autobidding with budget and ROI
constraints"):

    g_c = value_c / spend_c  if the channel used its budget (it could take more), else 0
    share <- (1 - explore) * normalise(share * exp(step * g / max(g))) + explore / C

A channel that did not spend its budget gets no credit: more budget there buys nothing,
so its share drifts to where the marginal dollar still buys value. ``explore`` keeps
every channel tried, so a channel that gets better is found again.

    [[populations]]
    strategy = "multi_channel"
    budget = { dist = "constant", value = 50.0 }
    params = { step = 0.3 }
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bidscape import limits
from bidscape.bidders.base import Modifier, PopulationView, RoundFeedback, Strategy
from bidscape.errors import Problem


class MultiChannelParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    multiplier: limits.Multiplier = Field(1.0, ge=0, allow_inf_nan=False,
                                          description="bid = multiplier x value in every channel")
    step: float = Field(0.3, gt=0, le=10, allow_inf_nan=False, description="exponentiated-gradient step")
    explore: float = Field(0.05, ge=0, le=1, allow_inf_nan=False, description="share spread evenly over channels")
    used: float = Field(0.95, gt=0, le=1, allow_inf_nan=False,
                        description="a channel used its budget when it spent at least this share of it")


class MultiChannel(Strategy):
    name = "multi_channel"
    summary = "splits budget/rounds-left across channels, shares learned from value per spend (bandit feedback)"
    Params = MultiChannelParams
    needs_budget = True
    modifiers = frozenset({Modifier.CHANNEL_CAPS})

    def __init__(self, params: MultiChannelParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        self.channels = len(agents.channel_names)
        self.share = np.full((agents.size, self.channels), 1.0 / self.channels)
        self.allotted = np.zeros((self.channels, agents.size))

    @classmethod
    def bytes_per_agent(cls, params: MultiChannelParams, channels: int) -> int:
        return 64 + 32 * channels  # budget shares and allotments per channel

    @classmethod
    def scenario_problems(cls, scenario, index: int, where: str) -> list[Problem]:
        mine = [c.name for c in scenario.resolved_channels() if index in c.populations]
        if len(mine) < 2:
            return [Problem(f"{where}.strategy", f"'multi_channel' splits a budget across channels, but population "
                            f"'{scenario.populations[index].name}' bids in {len(mine)} channel(s)",
                            "add it to two or more [[channels]] (populations = [...])")]
        return []

    def decide(self, round_index: int) -> None:
        agents = self.agents
        agents.multiplier[:] = self.params.multiplier
        rate = agents.remaining_budget / (agents.rounds - round_index)
        for c, cap in enumerate(agents.channel_caps):
            self.allotted[c] = self.share[:, c] * rate
            cap[:] = self.allotted[c]

    def observe(self, feedback: RoundFeedback) -> None:
        spend, value = feedback.channel_spend, feedback.channel_value  # [C, n]
        used = spend >= self.params.used * self.allotted
        gain = np.where(used & (spend > 0), np.divide(value, spend, out=np.zeros_like(value), where=spend > 0), 0.0).T
        top = gain.max(axis=1, keepdims=True)
        gain = np.divide(gain, top, out=np.zeros_like(gain), where=top > 0)
        weights = self.share * np.exp(self.params.step * gain)
        weights /= weights.sum(axis=1, keepdims=True)
        explore = self.params.explore
        self.share = (1 - explore) * weights + explore / self.channels

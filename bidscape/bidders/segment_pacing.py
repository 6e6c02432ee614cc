"""Segment pacing: one budget, paced with one multiplier per traffic segment.

Adaptive pacing (``adaptive_pacing``) with a dual variable per segment: each agent bids
``value / (1 + mu_s)`` in auctions of segment ``s``, and after every round each ``mu_s``
takes the projected gradient step of adaptive pacing against its own target, the share
``split_s`` of the per-round budget rate ``rho``:

    mu_s <- clip(mu_s + step * (spend_s - split_s rho) / (split_s rho), 0, mu_max)

``rho`` is ``budget / rounds``, or with ``replan = true`` the remaining budget over the rounds
left. The budget stays one: every bid is capped by what is left of it, so the agent never
spends more than its budget in total, whatever the split.

``split`` names the share of the budget each segment should take (say an advertiser's plan
for its inventory); unset, it is each targeted segment's share of the traffic. A segment
whose auctions cannot absorb its share (too little value there) ends with ``mu_s = 0`` and
spends less; the others keep their shares. The default split is taken from the traffic at the
start of the run: when events change the shares, set ``split`` (an event may change it too). Against uniform pacing, a split costs value in a
second-price market (where one multiplier for all segments is optimal) and buys control.

Needs a market with ``[traffic]`` segments and a budget; strategies get their spend per
segment each round (``RoundFeedback.segment_spend``).

    [[populations]]
    strategy = "segment_pacing"
    budget = { dist = "uniform", low = 50.0, high = 150.0 }
    params = { step = 0.3, replan = true, split = { "news-mobile" = 0.7, "sports-desktop" = 0.3 } }
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import BaseModel, Field, field_validator

from bidscape.bidders.adaptive_pacing import AdaptivePacingParams, budget_rate
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.bidders.grid import segment_problems
from bidscape.errors import Problem


class SegmentPacingParams(AdaptivePacingParams):
    """Adaptive pacing's parameters (``step``, ``initial_mu``, ``mu_max``, ``replan``), per segment, and a split."""

    split: Optional[dict[str, float]] = Field(
        None, description="share of the budget per segment (summing to 1); unset: the segments' traffic shares")

    @field_validator("split")
    @classmethod
    def _shares(cls, split: Optional[dict[str, float]]) -> Optional[dict[str, float]]:
        if split is not None:
            if not split or any(not np.isfinite(v) or v < 0 for v in split.values()):
                raise ValueError("split shares must be finite and >= 0; write e.g. { \"news-mobile\" = 0.7, "
                                 "\"sports-desktop\" = 0.3 }")
            if abs(sum(split.values()) - 1.0) > 1e-9:
                raise ValueError(f"split shares must sum to 1 (they sum to {sum(split.values()):g}); "
                                 "scale them so that they do")
        return split


class SegmentPacing(Strategy):
    name = "segment_pacing"
    summary = "budget pacing with a multiplier per traffic segment, each steering its share of the budget"
    Params = SegmentPacingParams
    needs_budget = True

    @classmethod
    def uses_segments(cls, params: BaseModel) -> bool:
        return True

    @classmethod
    def scenario_problems(cls, scenario, index: int, where: str) -> list[Problem]:
        problems = segment_problems(cls.name, scenario, index, where)
        parsed = scenario.populations[index].parsed_params()
        if problems or parsed is None or parsed.split is None:
            return problems
        names = [s.name for s in scenario.traffic.segments]
        for name in parsed.split:
            if name not in names:
                problems.append(Problem(f"{where}.params.split", f"unknown segment '{name}'",
                                        f"use one of the [[traffic.segments]] names: {', '.join(names)}"))
        return problems

    @classmethod
    def bytes_per_agent(cls, params: BaseModel, channels: int) -> int:
        return 64  # the multipliers and outcomes per segment are counted with the market state

    def __init__(self, params: SegmentPacingParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        if agents.segment_multiplier is None:
            raise ValueError("segment_pacing needs a market with [traffic] segments")
        segments = agents.segment_multiplier.shape[1]
        self.mu = np.full((agents.size, segments), min(params.initial_mu, params.mu_max))
        self.split = self._split(params)

    def _split(self, params: SegmentPacingParams) -> np.ndarray:
        if params.split is not None:
            return np.array([params.split.get(name, 0.0) for name in self.agents.segment_names])
        shares = np.asarray(self.agents.segment_shares, np.float64)  # 0 where the population does not target
        return shares / shares.sum()

    def set_params(self, params: SegmentPacingParams) -> None:
        super().set_params(params)
        self.split = self._split(params)

    def decide(self, round_index: int) -> None:
        agents = self.agents
        self.rate = budget_rate(agents, round_index, self.params.replan)
        agents.multiplier.fill(1.0)
        np.divide(1.0, 1.0 + self.mu, out=agents.segment_multiplier)

    def observe(self, feedback: RoundFeedback) -> None:
        target = self.rate[:, None] * self.split[None, :]  # [n, S]
        spend = feedback.segment_spend.T
        gap = np.divide(spend - target, target, out=np.zeros_like(target), where=target > 0)
        self.mu += self.params.step * gap
        np.clip(self.mu, 0.0, self.params.mu_max, out=self.mu)

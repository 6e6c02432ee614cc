"""A trained policy as a strategy: multipliers from a torch MLP, one forward pass per round.

Before each round every agent of the population gets its observation (budget left, time
left, recent wins and prices, last multiplier; see ``bidscape.bidders.rl_network``) and the policy
trained by ``bidscape train-rl`` maps all of them to multipliers in one batched, gradient-free
forward pass. ``deterministic = true`` (the default) plays the policy's median multiplier;
``false`` samples from it with a torch generator seeded from the strategy's own seed, so
runs with the same ``run.seed`` stay identical either way.

    [[populations]]
    strategy = "rl_policy"
    params = { weights = "weights/rl.pt", deterministic = true }

Needs the ``rl`` extra (``pip install "bidscape[rl]"``). Relative weight paths start at the
working folder. Importing this module does not import torch; running the strategy does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.errors import InputError, Problem

INSTALL = 'pip install "bidscape[rl]"'


def torch_missing() -> bool:
    return importlib.util.find_spec("torch") is None


class RLPolicyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weights: str = Field(min_length=1, description="policy file written by `bidscape train-rl`")
    deterministic: bool = Field(True, description="play the median multiplier instead of sampling")

    @field_validator("weights")
    @classmethod
    def _usable(cls, weights: str) -> str:
        # "what is wrong; the fix": scenario errors split messages there
        if torch_missing():
            raise ValueError(f"strategy 'rl_policy' needs torch, which is not installed; run {INSTALL}")
        if not Path(weights).is_file():
            raise ValueError(f"weights file '{weights}' does not exist; train one with `bidscape train-rl "
                             f"SCENARIO --population NAME --out {weights}`, or fix the path (relative "
                             "paths start at the working folder)")
        return weights


class RLPolicy(Strategy):
    name = "rl_policy"
    summary = "multipliers from a trained torch policy (params.weights), one forward pass per round"
    Params = RLPolicyParams

    def __init__(self, params: RLPolicyParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        where = f"populations.{agents.name}.params.weights"
        if torch_missing():
            raise InputError(Problem(where, "strategy 'rl_policy' needs torch, which is not installed",
                                     f"run {INSTALL}"))
        import torch

        from bidscape.bidders.rl_network import load_policy

        self._torch = torch
        self.policy, self.metadata = load_policy(params.weights, where)
        self.features = self.policy.observation_builder(agents.budget, agents.rounds)
        self.generator = torch.Generator().manual_seed(int(rng.integers(2**63)))

    def set_params(self, params: RLPolicyParams) -> None:
        if params.weights != self.params.weights:  # a scheduled event swapped the policy
            from bidscape.bidders.rl_network import load_policy, observation_bounds

            self.policy, self.metadata = load_policy(params.weights,
                                                     f"populations.{self.agents.name}.params.weights")
            self.features.low, self.features.high = observation_bounds(self.policy.action_low,
                                                                       self.policy.action_high)
        super().set_params(params)

    def decide(self, round_index: int) -> None:
        agents = self.agents
        obs = self.features.build(round_index, agents.remaining_budget, agents.multiplier)
        with self._torch.no_grad():
            multiplier, _, _ = self.policy.act(self._torch.from_numpy(obs), self.generator,
                                               self.params.deterministic)
        agents.multiplier[:] = multiplier.numpy()

    def observe(self, feedback: RoundFeedback) -> None:
        self.features.update(feedback.spend, feedback.wins, feedback.value)

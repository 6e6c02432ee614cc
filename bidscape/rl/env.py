"""A market as a PettingZoo ``ParallelEnv``: a few learning bidders among a simulated crowd.

``MarketEnv(scenario, population="learners", learners=4)`` turns population ``learners``
of the scenario over to the ``external`` strategy; its first ``learners`` agents are the
PettingZoo agents ``bidder_0``, ``bidder_1``, ... The population's other agents bid
``background_multiplier x value`` (default 1), or follow a trained policy
(``background_weights``); every other population plays its scenario strategy.

- one ``step`` = one round of the scenario (all its auctions);
- action: the agent's bid multiplier for the round, ``Box(low, high, (1,), float32)``;
  agents missing from the actions dict keep their last multiplier;
- observation: the six features of ``bidscape.rl.policy`` (budget left, time left, win
  rate and price ratio of recent rounds, spend pace, last multiplier), ``Box`` of float32,
  computed over the whole population (the win rate is relative to its mean);
- reward: the agent's utility in the round, value won minus spend;
- every agent is truncated after the last round (the run is over; nothing terminates early);
- infos: ``spend``, ``wins``, ``value``, ``multiplier``, ``remaining_budget`` of the round.

``reset(seed=s)`` plays the scenario with ``run.seed = s``, so a seed fixes the episode
(given the actions); ``reset()`` without a seed draws the next run seed from the last one.

>>> from bidscape.rl.env import MarketEnv                                        # doctest: +SKIP
>>> env = MarketEnv("data/scenarios/rl.toml", population="learners", learners=2)  # doctest: +SKIP
>>> obs, infos = env.reset(seed=1)                                                 # doctest: +SKIP
>>> while env.agents:                                                              # doctest: +SKIP
...     obs, rewards, terminations, truncations, infos = env.step(
...         {agent: env.action_space(agent).sample() for agent in env.agents})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from bidscape.loop.simulation import Simulation
from bidscape.errors import InputError, Problem
from bidscape.rl.policy import EMA_DECAY, ObservationBuilder, observation_bounds
from bidscape.rl.train import cohort_scenario, with_seed
from bidscape.scenario import Scenario


class MarketEnv(ParallelEnv):
    metadata = {"name": "bidscape_market_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, scenario: Scenario | str | Path, population: str, learners: int = 1,
                 action_low: float = 0.0, action_high: float = 1.5, background_multiplier: float = 1.0,
                 background_weights: Optional[str | Path] = None, ema_decay: float = EMA_DECAY):
        if not isinstance(scenario, Scenario):
            scenario = Scenario.from_toml(scenario)
        self.scenario, self.cohort = cohort_scenario(scenario, population, background_multiplier)
        size = self.scenario.populations[self.cohort].size
        if not 1 <= learners <= size:
            raise InputError(Problem("learners", f"{learners} learning agents in population '{population}' "
                                     f"of {size}", f"use 1..{size}, or make the population larger"))
        if not 0 <= action_low < action_high:
            raise InputError(Problem("action range", f"[{action_low}, {action_high}] is not a range of "
                                     "multipliers", "use 0 <= low < high"))
        self.learners = learners
        self.action_low, self.action_high = float(action_low), float(action_high)
        self.ema_decay = ema_decay
        self.background = None
        if background_weights is not None:
            from bidscape.rl.policy import load_policy

            self.background, _ = load_policy(background_weights, "background_weights")
        self.possible_agents = [f"bidder_{i}" for i in range(learners)]
        self.agents: list[str] = []
        low, high = observation_bounds(self.action_low, self.action_high)
        self._observation_spaces = {a: spaces.Box(low, high, dtype=np.float32) for a in self.possible_agents}
        self._action_spaces = {a: spaces.Box(np.float32(self.action_low), np.float32(self.action_high), (1,),
                                             np.float32) for a in self.possible_agents}
        self._seeds: Optional[np.random.Generator] = None
        self.simulation: Optional[Simulation] = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._action_spaces[agent]

    def reset(self, seed: Optional[int] = None,
              options: Optional[dict[str, Any]] = None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._seeds = np.random.default_rng(seed)
            run_seed = int(seed)
        elif self._seeds is None:
            self._seeds = np.random.default_rng(self.scenario.run.seed)
            run_seed = self.scenario.run.seed
        else:
            run_seed = int(self._seeds.integers(2**31))
        self.simulation = Simulation(with_seed(self.scenario, run_seed))
        self.strategy = self.simulation.strategies[self.cohort]
        view = self.strategy.agents
        self.features = ObservationBuilder(view.budget, view.rounds, self.action_low, self.action_high,
                                           self.ema_decay)
        if self.background is not None:
            self.background_features = self.background.observation_builder(view.budget, view.rounds)
        self.agents = list(self.possible_agents)
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if self.simulation is None or not self.agents:
            raise RuntimeError("the episode is over (or never began): call reset() first")
        view = self.strategy.agents
        chosen = self.strategy.next_multiplier[:self.learners].copy()
        for i, agent in enumerate(self.possible_agents):
            if agent in actions:
                chosen[i] = float(np.asarray(actions[agent], dtype=np.float64).reshape(-1)[0])
        self.strategy.set_multipliers(np.clip(chosen, self.action_low, self.action_high), slice(0, self.learners))
        if self.background is not None and view.size > self.learners:
            self._set_background()
        self.simulation.step()
        outcome = self.strategy.last_feedback
        self.features.update(outcome.spend, outcome.wins, outcome.value)
        if self.background is not None:
            self.background_features.update(outcome.spend, outcome.wins, outcome.value)
        live = self.agents
        rewards = {a: float(outcome.value[i] - outcome.spend[i]) for i, a in enumerate(live)}
        infos = {a: {"spend": float(outcome.spend[i]), "wins": float(outcome.wins[i]),
                     "value": float(outcome.value[i]), "multiplier": float(view.multiplier[i]),
                     "remaining_budget": float(view.remaining_budget[i])} for i, a in enumerate(live)}
        observations = self._observations()
        over = self.simulation.finished
        terminations = {a: False for a in live}
        truncations = {a: over for a in live}
        if over:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        self.simulation = None

    # ---- helpers ----
    def _observations(self) -> dict[str, np.ndarray]:
        view = self.strategy.agents
        obs = self.features.build(self.simulation.round, view.remaining_budget, view.multiplier)
        return {a: obs[i] for i, a in enumerate(self.agents)}

    def _set_background(self) -> None:
        import torch

        view = self.strategy.agents
        rest = slice(self.learners, view.size)
        obs = self.background_features.build(self.simulation.round, view.remaining_budget, view.multiplier)
        with torch.no_grad():
            multiplier, _, _ = self.background.act(torch.from_numpy(obs[rest]), deterministic=True)
        self.strategy.set_multipliers(multiplier.double().numpy(), rest)

"""Reinforcement learning for bidding (optional extra: ``pip install "bidscape[rl]"``).

A cohort of agents (one population) shares one small torch policy that maps each agent's
observation (budget left, time left, recent wins and prices, last multiplier) to its bid
multiplier for the next round; one forward pass serves the whole cohort.

- ``bidscape.rl.policy``: the observation builder (numpy) and the policy network, save/load.
- ``bidscape.rl.train``: PPO on the vectorised market (``bidscape train-rl``).
- ``bidscape.rl.env``: ``MarketEnv``, a PettingZoo ``ParallelEnv`` with a few learning
  agents among a simulated population.
- strategies ``rl_policy`` (run a trained policy in any scenario) and ``external``
  (multipliers set from outside, used by the trainer and the environment).

Importing this package imports neither torch nor PettingZoo; its modules do.
See docs/rl.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Policy": "bidscape.rl.policy",
    "ObservationBuilder": "bidscape.rl.policy",
    "load_policy": "bidscape.rl.policy",
    "save_policy": "bidscape.rl.policy",
    "PPOConfig": "bidscape.rl.train",
    "train": "bidscape.rl.train",
    "evaluate": "bidscape.rl.train",
    "MarketEnv": "bidscape.rl.env",
}


def register_strategies() -> None:
    """Register ``external`` and ``rl_policy`` unless ``bidscape.bidders`` already did."""
    from bidscape.bidders import STRATEGIES
    from bidscape.bidders.external import External
    from bidscape.bidders.rl_policy import RLPolicy

    for strategy in (External, RLPolicy):
        if strategy.name not in STRATEGIES:
            STRATEGIES.register(strategy.name, strategy)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bidscape.rl' has no attribute '{name}'")


__all__ = ["register_strategies", *_EXPORTS]

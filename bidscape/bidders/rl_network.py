"""What a learning bidder sees, and the network that maps it to a bid multiplier.

Observation: six numbers per agent, built for the whole cohort at once before each round
(``ObservationBuilder``, numpy only; row ``i`` is agent ``i`` of the population):

====================  ==========================================================  ===========
feature               definition                                                  range
====================  ==========================================================  ===========
``budget_left``       remaining budget / budget (1 without a budget)              [0, 1]
``time_left``         rounds still to play, this one included / rounds            (0, 1]
``win_rate``          EMA of the agent's wins per round / the cohort's mean of    [0, 4]
                      that EMA (1 = wins as often as its cohort; 1 before the
                      first round)
``price_ratio``       EMA of spend / EMA of value won: the share of the value it  [0, 4]
                      won that the agent paid (0 before its first win)
``spend_rate``        bias-corrected EMA of spend per round / (budget / rounds)   [0, 4]
                      (1 = spending at the even pace; 0 without a budget)
``last_multiplier``   the multiplier of the previous round (1 before the first)   [low, high]
====================  ==========================================================  ===========

The EMAs weigh the newest round by ``ema_decay`` (0.3). All features are free of the
scenario's units (values, budgets, auctions per round), so a policy trained in one
scenario runs in any other. The win rate is relative to the cohort because a strategy
does not know how many auctions its agents take part in; the cohort mean is its yardstick.

Action: the bid multiplier, ``low + (high - low) * sigmoid(z)`` with ``z ~ N(mu(obs), std)``
(a squashed Gaussian: always inside ``[low, high]``, default ``[0, 1.5]``). ``mu`` comes from
an MLP (two tanh layers, ``hidden`` units); ``std`` is one learned number. Deterministic
play uses ``z = mu`` (the median multiplier). A second MLP of the same shape, the critic,
estimates the return (sum of the remaining rounds' utility) for training; running a policy
needs only the actor.

Saved weights (``save_policy``) are one ``torch.save`` file: ``{"state_dict": ...,
"metadata": {...}}``, the metadata plain JSON-able values: observation spec, action range,
network shape, hyperparameters, training scenario. ``load_policy`` reads them back with
``weights_only=True`` (no pickled code runs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from bidscape.errors import InputError, Problem

FEATURES = ("budget_left", "time_left", "win_rate", "price_ratio", "spend_rate", "last_multiplier")
FEATURE_HIGH = (1.0, 1.0, 4.0, 4.0, 4.0)  # the last one is the action's upper bound
EMA_DECAY = 0.3
FORMAT = "bidscape-rl-policy"
FORMAT_VERSION = 1


def observation_bounds(action_low: float, action_high: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 lower and upper bounds of one observation row."""
    low = np.zeros(len(FEATURES), np.float32)
    low[-1] = action_low
    high = np.array([*FEATURE_HIGH, action_high], np.float32)
    return low, high


class ObservationBuilder:
    """The observations of one cohort (a population's agents), round after round.

    ``build(round, remaining_budget, last_multiplier)`` before a round gives float32[n, 6];
    ``update(spend, wins, value)`` after it folds the round's outcomes into the averages.
    """

    def __init__(self, budget: np.ndarray, rounds: int, action_low: float, action_high: float,
                 ema_decay: float = EMA_DECAY):
        self.budget = np.asarray(budget, dtype=np.float64)
        self.rounds = rounds
        self.decay = ema_decay
        self.low, self.high = observation_bounds(action_low, action_high)
        n = self.budget.shape[0]
        self.ema = np.zeros((3, n))  # wins, spend, value per round
        self.weight = 0.0  # 1 - (1 - decay)^rounds_seen: divides out the EMAs' start at 0
        has_budget = np.isfinite(self.budget)
        self.unlimited = ~has_budget
        self.rate = np.where(has_budget, self.budget / rounds, np.inf)  # even spend per round

    def update(self, spend: np.ndarray, wins: np.ndarray, value: np.ndarray) -> None:
        keep = 1.0 - self.decay
        self.ema *= keep
        self.ema[0] += self.decay * wins
        self.ema[1] += self.decay * spend
        self.ema[2] += self.decay * value
        self.weight = 1.0 - keep * (1.0 - self.weight)

    def build(self, round_index: int, remaining_budget: np.ndarray, last_multiplier: np.ndarray) -> np.ndarray:
        wins, spend, value = self.ema
        obs = np.empty((self.budget.shape[0], len(FEATURES)))
        with np.errstate(divide="ignore", invalid="ignore"):
            obs[:, 0] = np.where(self.unlimited, 1.0,
                                 np.where(self.budget > 0, remaining_budget / self.budget, 0.0))
            obs[:, 1] = (self.rounds - round_index) / self.rounds
            mean_wins = wins.mean() if wins.size else 0.0
            obs[:, 2] = wins / mean_wins if mean_wins > 0 else 1.0
            obs[:, 3] = np.where(value > 0, spend / value, np.where(spend > 0, np.inf, 0.0))
            pace = spend / self.weight if self.weight > 0 else np.zeros_like(spend)
            obs[:, 4] = np.where(self.rate > 0, pace / self.rate, np.where(pace > 0, np.inf, 0.0))
        obs[:, 5] = last_multiplier
        obs = obs.astype(np.float32)  # clip after the cast so float32 rounding stays in bounds
        return np.clip(obs, self.low, self.high, out=obs)


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, outputs))


class Policy(nn.Module):
    """Actor (squashed-Gaussian multiplier) and critic (return estimate), both small MLPs."""

    def __init__(self, hidden: int = 64, action_low: float = 0.0, action_high: float = 1.5,
                 initial_multiplier: float = 1.0, initial_log_std: float = -0.5, ema_decay: float = EMA_DECAY):
        super().__init__()
        if not action_low < initial_multiplier < action_high:
            raise ValueError(f"initial multiplier {initial_multiplier} must lie strictly inside "
                             f"({action_low}, {action_high})")
        self.hidden = hidden
        self.action_low = float(action_low)
        self.action_high = float(action_high)
        self.ema_decay = float(ema_decay)  # of the observations it was trained on
        self.actor = _mlp(len(FEATURES), hidden, 1)
        self.critic = _mlp(len(FEATURES), hidden, 1)
        self.log_std = nn.Parameter(torch.tensor([float(initial_log_std)]))
        # start close to one multiplier for every observation: tiny last-layer weights,
        # a bias at the logit of ``initial_multiplier``
        share = (initial_multiplier - action_low) / (action_high - action_low)
        with torch.no_grad():
            self.actor[-1].weight.mul_(0.01)
            self.actor[-1].bias.fill_(math.log(share / (1.0 - share)))

    def config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "action_low": self.action_low, "action_high": self.action_high}

    def observation_builder(self, budget: np.ndarray, rounds: int) -> ObservationBuilder:
        """A builder of the observations this policy expects, for a cohort with these budgets."""
        return ObservationBuilder(budget, rounds, self.action_low, self.action_high, self.ema_decay)

    def squash(self, z: torch.Tensor) -> torch.Tensor:
        return self.action_low + (self.action_high - self.action_low) * torch.sigmoid(z)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """The Gaussian over ``z`` (pre-squash) for each row of ``obs``."""
        mean = self.actor(obs).squeeze(-1)
        std = self.log_std.clamp(-5.0, 1.0).exp().expand_as(mean)
        return torch.distributions.Normal(mean, std)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Multipliers, the sampled ``z`` and their log-probabilities, for a batch of observations.

        Noise comes from ``generator`` only, so a seeded generator gives the same actions.
        """
        dist = self.distribution(obs)
        if deterministic:
            z = dist.mean
        else:
            noise = torch.randn(dist.mean.shape, generator=generator, dtype=dist.mean.dtype)
            z = dist.mean + dist.stddev * noise
        return self.squash(z), z, dist.log_prob(z)


def save_policy(path: str | Path, policy: Policy, metadata: dict[str, Any]) -> Path:
    """Write the weights and ``metadata`` (JSON-able values) to ``path``; folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "network": policy.config(), **metadata}
    torch.save({"state_dict": policy.state_dict(), "metadata": meta}, path)
    return path


def load_policy(path: str | Path, where: str = "weights") -> tuple[Policy, dict[str, Any]]:
    """The policy in ``path`` (in eval mode) and its metadata; bad files are InputErrors at ``where``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(Problem(where, f"weights file '{path}' does not exist",
                                 "train one with `bidscape train-rl SCENARIO --population NAME --out "
                                 f"{path}`, or check the path (relative paths start at the working folder)"))
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        metadata = saved["metadata"]
        if metadata.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        if metadata.get("version") != FORMAT_VERSION:
            raise ValueError(f"format version {metadata.get('version')}, this bidscape reads {FORMAT_VERSION}")
        if list(metadata["observation"]["features"]) != list(FEATURES):
            raise ValueError(f"observation features {metadata['observation']['features']} differ from "
                             f"this bidscape's {list(FEATURES)}")
        network = metadata["network"]
        policy = Policy(network["hidden"], network["action_low"], network["action_high"],
                        initial_multiplier=(network["action_low"] + network["action_high"]) / 2,
                        ema_decay=metadata["observation"]["ema_decay"])
        policy.load_state_dict(saved["state_dict"])
    except InputError:
        raise
    except Exception as error:  # unreadable, truncated, or not ours
        raise InputError(Problem(where, f"cannot load policy weights from '{path}' ({type(error).__name__}: "
                                 f"{error})", "use a file written by `bidscape train-rl` or "
                                 "bidscape.rl.policy.save_policy")) from None
    policy.eval()
    return policy, metadata

"""Training a cohort's shared bidding policy with PPO on the vectorised market.

Algorithm: PPO (clipped surrogate objective, Schulman et al. 2017) with a learned critic
and generalised advantage estimation (GAE, lambda = 0.95, no discount within a run).

- An episode is one run of the scenario (``Simulation``, fresh market seed per episode)
  in which the cohort (one population) bids through the ``external`` strategy, every other
  population as the scenario says. Each of the cohort's ``n`` agents is one trajectory of
  ``rounds`` steps, so an episode gives ``n x rounds`` samples.
- Each round: the cohort's observations (``ObservationBuilder``) go through the policy in one
  gradient-free forward pass; multipliers are sampled with a seeded torch generator, the
  round is played, and each agent's reward is its utility that round, ``value - spend``.
- After each episode: advantages by GAE over the rounds, then ``epochs`` passes of
  minibatch PPO updates (Adam) on the episode's samples. Rewards are divided by one
  number fixed after the first episode (the spread of the returns then), so the
  hyperparameters do not depend on the scenario's units; advantages are normalised per
  update.

Determinism: under ``deterministic_torch`` (one torch thread, deterministic algorithms,
the global torch seed set from ``config.seed`` -- by default the scenario's ``run.seed`` --
all restored afterwards) and with every random draw from generators seeded by that seed,
the same scenario and config give bit-identical weights.

>>> from bidscape import Scenario                                                 # doctest: +SKIP
>>> result = train(Scenario.from_toml("data/scenarios/rl.toml"), "learners",
...                PPOConfig(episodes=30, seed=1), progress=True)                  # doctest: +SKIP
>>> result.save("weights/rl.pt")                                                   # doctest: +SKIP
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch

from bidscape.loop.simulation import Simulation
from bidscape.errors import InputError, Problem, did_you_mean
from bidscape.rl import register_strategies
from bidscape.rl.policy import FEATURES, Policy, observation_bounds, save_policy
from bidscape.scenario import Scenario


@dataclass(frozen=True)
class PPOConfig:
    episodes: int = 50
    seed: Optional[int] = None  # None: the scenario's run.seed
    hidden: int = 64  # units in each of the two hidden layers (actor and critic)
    learning_rate: float = 3e-3  # Adam
    epochs: int = 4  # passes over each episode's samples
    minibatch: int = 2048  # samples per gradient step
    clip: float = 0.2  # PPO ratio clip
    gamma: float = 1.0  # discount per round (1: utility counts the same in every round)
    lam: float = 0.95  # GAE lambda
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    action_low: float = 0.0
    action_high: float = 1.5
    initial_multiplier: float = 1.0  # the untrained policy bids about this
    initial_log_std: float = -0.5  # exploration noise of z at the start (learned afterwards)
    ema_decay: float = 0.3  # observation averages: weight of the newest round

    def __post_init__(self) -> None:
        problems = []
        if self.episodes < 1:
            problems.append(Problem("episodes", f"{self.episodes} episodes", "train for at least 1"))
        if not 0 <= self.action_low < self.action_high:
            problems.append(Problem("action range", f"[{self.action_low}, {self.action_high}] is not a range "
                                    "of multipliers", "use 0 <= low < high, e.g. 0 and 1.5"))
        elif not self.action_low < self.initial_multiplier < self.action_high:
            problems.append(Problem("initial_multiplier", f"{self.initial_multiplier} is not inside the action "
                                    f"range ({self.action_low}, {self.action_high})", "pick a value inside it"))
        if min(self.hidden, self.epochs, self.minibatch) < 1 or self.learning_rate <= 0:
            problems.append(Problem("hyperparameters", "hidden, epochs, minibatch and learning_rate must be "
                                    "positive", "use e.g. the defaults of PPOConfig"))
        if problems:
            raise InputError(problems, "training settings")


@dataclass(frozen=True)
class EpisodeStats:
    episode: int
    seed: int  # the run.seed of the episode's market
    mean_utility: float  # per agent and round, in the scenario's units
    mean_multiplier: float
    std: float  # exploration noise (std of z)
    policy_loss: float
    value_loss: float
    agent_steps: int  # agents x rounds
    seconds: float  # playing and learning


@dataclass
class TrainResult:
    policy: Policy
    metadata: dict[str, Any]
    history: list[EpisodeStats] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        return save_policy(path, self.policy, self.metadata)


@dataclass
class Rollout:
    """One episode of the cohort: tensors [rounds, agents] (``obs`` [rounds, agents, features])."""

    obs: torch.Tensor
    z: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor
    reward: torch.Tensor  # utility, in the scenario's units
    multiplier: torch.Tensor


# ---- the market as an RL environment for a whole cohort ----

def cohort_scenario(scenario: Scenario, population: str, multiplier: float = 1.0) -> tuple[Scenario, int]:
    """``scenario`` with ``population`` bidding through ``external``; and that population's index."""
    register_strategies()
    names = [p.name for p in scenario.populations]
    if population not in names:
        raise InputError(Problem("population", f"no population named '{population}' in scenario "
                                 f"'{scenario.run.name}'",
                                 f"{did_you_mean(population, names)}use one of: {', '.join(names)}"))
    updated = scenario.with_updates({f"populations.{population}.strategy": "external",
                                     f"populations.{population}.params": {"multiplier": multiplier}},
                                    source=f"scenario '{scenario.run.name}' with '{population}' learning")
    return updated, names.index(population)


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    return scenario.model_copy(update={"run": scenario.run.model_copy(update={"seed": seed})})


def episode_seed(seed: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def play_episode(scenario: Scenario, cohort: int, policy: Policy, generator: torch.Generator,
                 deterministic: bool = False) -> Rollout:
    """Run ``scenario`` once with the cohort (population ``cohort``, strategy ``external``) on ``policy``."""
    simulation = Simulation(scenario)
    strategy = simulation.strategies[cohort]
    agents = strategy.agents
    builder = policy.observation_builder(agents.budget, agents.rounds)
    rounds, n = agents.rounds, agents.size
    obs = torch.empty((rounds, n, len(FEATURES)))
    z, log_prob, value, reward, multiplier = (torch.empty((rounds, n)) for _ in range(5))
    with torch.no_grad():
        for t in range(rounds):
            obs[t] = torch.from_numpy(builder.build(t, agents.remaining_budget, agents.multiplier))
            multiplier[t], z[t], log_prob[t] = policy.act(obs[t], generator, deterministic)
            value[t] = policy.value(obs[t])
            strategy.set_multipliers(multiplier[t].numpy())
            simulation.step()
            outcome = strategy.last_feedback
            reward[t] = torch.from_numpy(outcome.value - outcome.spend)
            builder.update(outcome.spend, outcome.wins, outcome.value)
    return Rollout(obs, z, log_prob, value, reward, multiplier)


# ---- PPO ----

def advantages(reward: torch.Tensor, value: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """GAE over rounds (dim 0); the run ends after the last round (nothing to bootstrap)."""
    result = torch.zeros_like(reward)
    running = torch.zeros_like(reward[0])
    for t in reversed(range(reward.shape[0])):
        next_value = value[t + 1] if t + 1 < reward.shape[0] else torch.zeros_like(value[t])
        delta = reward[t] + gamma * next_value - value[t]
        running = delta + gamma * lam * running
        result[t] = running
    return result


def ppo_update(policy: Policy, optimiser: torch.optim.Optimizer, rollout: Rollout, reward_scale: float,
               config: PPOConfig, generator: torch.Generator) -> tuple[float, float]:
    """``config.epochs`` passes of clipped-surrogate minibatch steps; mean policy and value losses."""
    advantage = advantages(rollout.reward / reward_scale, rollout.value, config.gamma, config.lam)
    returns = (advantage + rollout.value).reshape(-1)
    advantage = advantage.reshape(-1)
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    obs = rollout.obs.reshape(-1, len(FEATURES))
    z, old_log_prob = rollout.z.reshape(-1), rollout.log_prob.reshape(-1)
    n = obs.shape[0]
    size = min(config.minibatch, n)
    policy_losses, value_losses = [], []
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):  # whole minibatches only
            rows = order[start:start + size]
            dist = policy.distribution(obs[rows])
            ratio = (dist.log_prob(z[rows]) - old_log_prob[rows]).exp()
            a = advantage[rows]
            policy_loss = -torch.min(ratio * a, ratio.clamp(1 - config.clip, 1 + config.clip) * a).mean()
            value_loss = (policy.value(obs[rows]) - returns[rows]).pow(2).mean()
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * dist.entropy().mean()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimiser.step()
            policy_losses.append(policy_loss.item())
            value_losses.append(value_loss.item())
    return float(np.mean(policy_losses)), float(np.mean(value_losses))


@contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """One thread, deterministic kernels, global seed; all restored on exit."""
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


def train(scenario: Scenario, population: str, config: PPOConfig = PPOConfig(), progress: bool = False,
          on_episode: Optional[Callable[[EpisodeStats], None]] = None) -> TrainResult:
    """Train the policy shared by ``population``'s agents in ``scenario`` for ``config.episodes`` runs."""
    if config.seed is None:
        config = replace(config, seed=scenario.run.seed)
    training, cohort = cohort_scenario(scenario, population, config.initial_multiplier)
    history: list[EpisodeStats] = []
    with deterministic_torch(config.seed), _progress(config.episodes, progress) as show:
        policy = Policy(config.hidden, config.action_low, config.action_high, config.initial_multiplier,
                        config.initial_log_std, config.ema_decay)
        optimiser = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(config.seed)
        reward_scale = 0.0
        for episode in range(config.episodes):
            start = perf_counter()
            seed = episode_seed(config.seed, episode)
            rollout = play_episode(with_seed(training, seed), cohort, policy, generator)
            if episode == 0:  # fixed from here on: the spread of the first episode's returns
                returns = rollout.reward.flip(0).cumsum(0).flip(0)
                reward_scale = float(returns.std()) or 1.0
            policy_loss, value_loss = ppo_update(policy, optimiser, rollout, reward_scale, config, generator)
            stats = EpisodeStats(episode, seed, float(rollout.reward.mean()), float(rollout.multiplier.mean()),
                                 float(policy.log_std.detach().exp()), policy_loss, value_loss, rollout.reward.numel(),
                                 perf_counter() - start)
            history.append(stats)
            show(stats)
            if on_episode is not None:
                on_episode(stats)
    policy.eval()
    low, high = observation_bounds(config.action_low, config.action_high)
    agents = training.populations[cohort].size
    metadata = {
        "algorithm": "ppo",
        "observation": {"features": list(FEATURES), "ema_decay": config.ema_decay,
                        "low": low.tolist(), "high": high.tolist()},
        "action": {"name": "multiplier", "low": config.action_low, "high": config.action_high,
                   "distribution": "low + (high - low) * sigmoid(z), z ~ Normal(actor(obs), exp(log_std))"},
        "hyperparameters": asdict(config),
        "training": {
            "scenario": scenario.run.name, "population": population, "agents": agents,
            "rounds": training.run.rounds, "episodes": config.episodes, "seed": config.seed,
            "reward_scale": reward_scale, "agent_steps": sum(s.agent_steps for s in history),
            "seconds": sum(s.seconds for s in history),
            "mean_utility_first_episode": history[0].mean_utility,
            "mean_utility_last_episode": history[-1].mean_utility,
        },
    }
    from bidscape import __version__

    metadata["bidscape_version"] = __version__
    return TrainResult(policy, metadata, history)


def evaluate(scenario: Scenario, population: str, policy: Policy, seed: Optional[int] = None,
             deterministic: bool = True) -> dict[str, float]:
    """One run of ``scenario`` with ``population`` on ``policy``: its mean utility per agent and round,
    and its mean multiplier. ``seed`` replaces ``run.seed`` (and seeds the action noise)."""
    training, cohort = cohort_scenario(scenario, population)
    seed = scenario.run.seed if seed is None else seed
    with deterministic_torch(seed):
        rollout = play_episode(with_seed(training, seed), cohort, policy, torch.Generator().manual_seed(seed),
                               deterministic)
    return {"mean_utility": float(rollout.reward.double().mean()),
            "mean_multiplier": float(rollout.multiplier.double().mean()),
            "agent_steps": rollout.reward.numel()}


@contextmanager
def _progress(episodes: int, enabled: bool) -> Iterator[Callable[[EpisodeStats], None]]:
    if not enabled:
        yield lambda stats: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=160)
    bar = Progress(
        TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
        TextColumn("[green]utility/agent-round {task.fields[utility]}"),
        TextColumn("multiplier {task.fields[multiplier]}"),
        TextColumn("[cyan]{task.fields[rate]} agent-steps/s"), TimeElapsedColumn(), TextColumn("eta"),
        TimeRemainingColumn(), console=console, transient=False,
    )
    steps = seconds = 0.0
    with bar:
        task = bar.add_task("episodes", total=episodes, utility="-", multiplier="-", rate="-")

        def show(stats: EpisodeStats) -> None:
            nonlocal steps, seconds
            steps += stats.agent_steps
            seconds += stats.seconds
            bar.update(task, advance=1, utility=f"{stats.mean_utility:.4g}",
                       multiplier=f"{stats.mean_multiplier:.3f}", rate=f"{steps / seconds:,.0f}")

        yield show

"""``bidscape train-rl``: train a population's shared bidding policy and save its weights.

``train`` is a plain typer command function; ``bidscape.cli`` mounts it. Importing this
module does not import torch (the command does, and says how to install it if missing).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bidscape.errors import InputError, Problem

console = Console()
if not console.is_terminal:  # piped or captured: keep tables on one line each
    console = Console(width=120)


def train(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO.toml", help="Scenario to train in."),
    population: str = typer.Option(..., "--population", "-p",
                                   help="The learning cohort: a population of the scenario (its agents share "
                                        "one policy)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the weights, e.g. weights/rl.pt."),
    episodes: int = typer.Option(50, min=1, help="Training runs of the scenario."),
    seed: Optional[int] = typer.Option(None, min=0, help="Training seed (default: the scenario's run.seed)."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY.PATH=VALUE",
                                                  help="Override a scenario field (repeatable)."),
    low: float = typer.Option(0.0, help="Lowest bid multiplier the policy may choose."),
    high: float = typer.Option(1.5, help="Highest bid multiplier the policy may choose."),
    hidden: int = typer.Option(64, min=1, help="Units per hidden layer."),
    learning_rate: float = typer.Option(3e-3, help="Adam step size."),
    minibatch: int = typer.Option(2048, min=1, help="Samples (agent-rounds) per gradient step; raise it "
                                                     "for large cohorts."),
    overwrite: bool = typer.Option(False, help="Replace an existing weights file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a shared bid-multiplier policy for one population with PPO; save torch weights."""
    if importlib.util.find_spec("torch") is None:
        raise InputError(Problem("train-rl", "training needs torch, which is not installed",
                                 'run pip install "bidscape[rl]"'))
    if out.exists() and not overwrite:
        raise InputError(Problem("--out", f"'{out}' already exists", "pass --overwrite, or choose another path"))
    from bidscape.rl.policy import Policy
    from bidscape.rl.train import PPOConfig, deterministic_torch, evaluate
    from bidscape.rl.train import train as run_training
    from bidscape.scenario import Scenario

    scenario = Scenario.from_toml(scenario_file, overrides)
    seed = scenario.run.seed if seed is None else seed
    config = PPOConfig(episodes=episodes, seed=seed, hidden=hidden, learning_rate=learning_rate, minibatch=minibatch,
                       action_low=low, action_high=high, initial_multiplier=_inside(1.0, low, high))
    names = [p.name for p in scenario.populations]
    if population not in names:
        from bidscape.errors import did_you_mean

        raise InputError(Problem("--population", f"no population named '{population}' in {scenario_file}",
                                 f"{did_you_mean(population, names)}use one of: {', '.join(names)}"))
    size = scenario.populations[names.index(population)].size
    console.print(f"[bold]train-rl[/]: PPO, population '{escape(population)}' ({size:,} agents) of "
                  f"'{escape(scenario.run.name)}', {episodes} episodes x {scenario.run.rounds} rounds, seed {seed}")
    result = run_training(scenario, population, config, progress=not quiet)
    path = result.save(out)

    # one held-out run (a seed no episode used), untrained vs trained, both deterministic
    held_out = seed + 10**6
    with deterministic_torch(seed):  # the very policy training started from
        untrained = Policy(hidden, low, high, config.initial_multiplier, config.initial_log_std, config.ema_decay)
    before = evaluate(scenario, population, untrained, seed=held_out)
    after = evaluate(scenario, population, result.policy, seed=held_out)
    history = result.history
    table = Table(title="training", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("", "utility / agent-round", "mean multiplier"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("first episode (sampled)", f"{history[0].mean_utility:.4g}", f"{history[0].mean_multiplier:.3f}")
    table.add_row("last episode (sampled)", f"{history[-1].mean_utility:.4g}", f"{history[-1].mean_multiplier:.3f}")
    table.add_row(f"untrained, run seed {held_out}", f"{before['mean_utility']:.4g}",
                  f"{before['mean_multiplier']:.3f}")
    table.add_row(f"trained, run seed {held_out}", f"{after['mean_utility']:.4g}", f"{after['mean_multiplier']:.3f}")
    console.print(table)
    steps = result.metadata["training"]["agent_steps"]
    seconds = result.metadata["training"]["seconds"]
    console.print(f"{steps:,} agent-steps in {seconds:.1f} s ({steps / seconds:,.0f} agent-steps/s)")
    console.print(f"\nwrote [bold]{escape(str(path))}[/] (torch state dict + metadata)")
    console.print("use it in a scenario:  strategy = \"rl_policy\"  "
                  f"params = {{ weights = \"{escape(str(path))}\", deterministic = true }}")
    console.print(f"or:  bidscape run {escape(str(scenario_file))} --set populations.{escape(population)}."
                  f"strategy=rl_policy --set 'populations.{escape(population)}.params="
                  f"{{ weights = \"{escape(str(path))}\" }}'")


def _inside(value: float, low: float, high: float) -> float:
    """``value`` if strictly inside (low, high), else the middle of the range."""
    return value if low < value < high else (low + high) / 2

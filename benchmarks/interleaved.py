"""Interleaved A/B of whole rounds: an older checkout against this one, alternating processes.

On a noisy machine two separate benchmark runs can differ by 2x with no code change, so a
speed claim compares the two versions side by side: each run times every case once with the
baseline's bidscape and once with this tree's, in fresh processes, alternating, and the table
shows every figure of both sides.

Run from the repository root, with a checkout of the commit to compare against:

    git worktree add /tmp/base HEAD~3
    python benchmarks/interleaved.py --baseline /tmp/base                      # all cases, 1e6 agents
    python benchmarks/interleaved.py --baseline /tmp/base --cases vcg --runs 5 --agents 1e4

A case is one ``Simulation.step()`` (best of ``--repeats`` rounds after a warm-up round, so
compilation is excluded; one thread) of a market of truthful bidders with lognormal(0, 0.5)
values and budgets uniform on [1e3, 2e3], K bidders per auction, reserve 0.1:

- ``second_price``, ``first_price``: single-item auctions;
- ``gsp``, ``vcg``: 3 slots with click-through rates 0.3, 0.2, 0.1;
- ``modifiers``: first price where half the agents have personal reserves uniform on [0, 0.5]
  and the other half throttle (``throttling``): bid modifiers on;
- ``segments``: ``data/scenarios/segments.toml`` (traffic segments, targeting, common values) with
  its agents split evenly over its populations and the first one bidding per segment
  (``segment_pacing``): the per-segment bid multipliers on.

Both sides run this file; only ``PYTHONPATH`` differs, and each process reports the
``bidscape`` it imported, so a side that silently imported the other tree's code is refused.
Each tree keeps its own numba cache; compiling falls in the untimed warm-up round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("second_price", "first_price", "gsp", "vcg", "modifiers", "segments")
VALUES = {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}
BUDGET = {"dist": "uniform", "low": 1e3, "high": 2e3}


def scenario(case: str, agents: int, auctions: int, bidders: int, rounds: int) -> dict:
    if case == "segments":
        return _segments(agents, auctions, bidders, rounds)
    mechanism = "first_price" if case == "modifiers" else case
    population = {"name": "bidders", "size": agents, "strategy": "truthful", "values": VALUES, "budget": BUDGET}
    populations = [population]
    if case == "modifiers":
        half = max(agents // 2, 1)
        populations = [dict(population, size=half, reserve={"dist": "uniform", "low": 0.0, "high": 0.5}),
                       dict(population, name="throttled", size=max(agents - half, 1), strategy="throttling")]
    return {"run": {"name": "interleaved", "seed": 3, "rounds": rounds, "auctions_per_round": auctions,
                    "record_agents": "none", "auction_sample_rate": 0.0},
            "mechanism": {"type": mechanism, "reserve": 0.1,
                          "slot_ctrs": [0.3, 0.2, 0.1] if mechanism in ("gsp", "vcg") else [1.0]},
            "market": {"bidders_per_auction": bidders}, "populations": populations}


def _segments(agents: int, auctions: int, bidders: int, rounds: int) -> dict:
    import tomllib  # the scenario file of the tree under test (the worker runs in it)

    raw = tomllib.loads(Path("data/scenarios/segments.toml").read_text())
    raw.pop("events", None)
    raw["run"].update(name="interleaved", seed=3, rounds=rounds, auctions_per_round=auctions,
                      record_agents="none", auction_sample_rate=0.0)
    raw.setdefault("market", {})["bidders_per_auction"] = bidders
    populations = raw["populations"]
    for i, population in enumerate(populations):
        population["size"] = max(agents // len(populations) + (i < agents % len(populations)), 1)
    populations[0].update(strategy="segment_pacing", params={})
    return raw


def worker(case: str, agents: int, auctions: int, bidders: int, repeats: int) -> None:
    """Time one case with whatever ``bidscape`` this process imports; print JSON."""
    import bidscape
    from bidscape.loop.simulation import Simulation
    from bidscape.scenario import Scenario

    simulation = Simulation(Scenario.from_dict(scenario(case, agents, auctions, bidders, repeats + 1)), threads=1)
    simulation.step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        simulation.step()
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"ms": best * 1e3, "bidscape": str(Path(bidscape.__file__).resolve().parents[1])}))


def time_side(tree: Path, args: argparse.Namespace, case: str) -> float:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", case, "--agents", str(args.agents),
               "--auctions", str(args.auctions), "--bidders", str(args.bidders), "--repeats", str(args.repeats)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {case} run with {tree} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["bidscape"]) != tree:
        raise SystemExit(f"the run meant for {tree} imported bidscape from {result['bidscape']}: "
                         f"is {tree} a checkout of this repository?")
    return result["ms"]


def count(text: str) -> int:
    return int(float(text))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the commit to compare against")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--agents", type=count, default=1_000_000)
    parser.add_argument("--auctions", type=count, default=1_000_000)
    parser.add_argument("--bidders", type=count, default=8)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per process; the best counts")
    parser.add_argument("--runs", type=int, default=3, help="alternating pairs of processes per case")
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        if args.baseline is None:
            parser.error("--baseline is required: a checkout of the commit to compare against "
                         "(e.g. git worktree add /tmp/base HEAD~1)")
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "bidscape" / "__init__.py").is_file():
            parser.error(f"--baseline {args.baseline}: no bidscape/ package there; pass a checkout of this repository")
    if min(args.agents, args.auctions, args.bidders, args.repeats, args.runs) < 1:
        parser.error("--agents, --auctions, --bidders, --repeats and --runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.agents, args.auctions, args.bidders, args.repeats)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    times: dict[str, dict[str, list[float]]] = {case: {"baseline": [], "this tree": []} for case in args.cases}
    for run in range(args.runs):
        for case in args.cases:
            for side, tree in (("baseline", args.baseline), ("this tree", ROOT)):
                console.print(f"run {run + 1}/{args.runs}: {case}, {side}", style="dim")
                times[case][side].append(time_side(tree, args, case))
    table = Table(title=f"ms per round, best of {args.repeats}, one thread: {args.agents:.0e} agents, "
                        f"{args.auctions:.0e} auctions, K={args.bidders}, runs alternating")
    for column in ("case", "baseline", "this tree", "median ratio"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case, sides in times.items():
        ratio = statistics.median(sides["this tree"]) / statistics.median(sides["baseline"])
        table.add_row(case, ", ".join(f"{t:.0f}" for t in sides["baseline"]),
                      ", ".join(f"{t:.0f}" for t in sides["this tree"]), f"{ratio:.2f}")
    console.print(table)
    console.print("median ratio < 1: this tree is faster. Read the spread of each side before the ratio.")


if __name__ == "__main__":
    # one thread everywhere, set before numpy loads (the workers inherit it); not on import, so that
    # the tests can load this module without changing their own process
    os.environ.update({name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "MKL_NUM_THREADS")})
    main()

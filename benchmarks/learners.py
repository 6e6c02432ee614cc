"""What learning costs per round: 1e6 bandit agents against the same market with fixed multipliers.

Run from the repository root:

    python benchmarks/learners.py                  # A = 1e6 agents, 10 arms, N = 1e6 auctions, K = 8
    python benchmarks/learners.py --agents 1e5 --auctions 2e5 --json learners.json

For each strategy it times one full round (``Simulation.step()``, best of ``--repeats``
after a warm-up round, so compilation is excluded) of a first-price market in which every
agent uses that strategy, and reports it against ``constant_shade`` (fixed multipliers)
measured in the same run. ``exp3`` and ``ucb1`` are timed twice: bandit feedback only
(``track_regret = false``) and with the counterfactual replay that records regret;
``hedge`` always replays (full information).

Target (issue 4): a round with 1e6 bandit agents on a 10-arm grid costs at most 2x a
round with fixed multipliers. One thread, as the kernels run.
"""

from __future__ import annotations

import os

os.environ.update({name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")})

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bidscape.loop.simulation import Simulation  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402

TARGET = 2.0
VARIANTS = [
    ("constant_shade", {"multiplier": 0.8}, "fixed multipliers (baseline)"),
    ("exp3", {"track_regret": False}, "bandit feedback"),
    ("exp3", {"track_regret": True}, "bandit feedback + regret"),
    ("ucb1", {"track_regret": False}, "bandit feedback"),
    ("ucb1", {"track_regret": True}, "bandit feedback + regret"),
    ("hedge", {}, "full information"),
]


def round_seconds(strategy: str, params: dict, agents: int, auctions: int, bidders: int, arms: int,
                  repeats: int) -> float:
    if strategy != "constant_shade":
        params = {"low": 0.1, "high": 1.0, "arms": arms, **params}
    simulation = Simulation(Scenario.from_dict({
        "run": {"seed": 1, "rounds": repeats + 1, "auctions_per_round": auctions, "record_agents": "none"},
        "mechanism": {"type": "first_price"},
        "market": {"bidders_per_auction": bidders},
        "populations": [{"name": "all", "size": agents, "strategy": strategy, "params": params,
                         "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
                         "budget": {"dist": "uniform", "low": 1e3, "high": 2e3}}],
    }), threads=1)
    simulation.step()  # warm-up: compilation and first touches
    best = float("inf")
    while not simulation.finished:
        start = time.perf_counter()
        simulation.step()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=float, default=1e6)
    parser.add_argument("--auctions", type=float, default=1e6)
    parser.add_argument("--bidders", type=int, default=8)
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    agents, auctions = int(args.agents), int(args.auctions)
    rows = []
    baseline = None
    for strategy, params, what in VARIANTS:
        seconds = round_seconds(strategy, params, agents, auctions, args.bidders, args.arms, args.repeats)
        baseline = baseline or seconds
        rows.append({"strategy": strategy, "feedback": what, "seconds": seconds, "ratio": seconds / baseline})
    table = Table(title=f"one round: {agents:.0e} agents, {auctions:.0e} auctions x {args.bidders} bidders, "
                        f"{args.arms} arms (target: bandit rounds <= {TARGET}x fixed)")
    for column in ("strategy", "feedback", "ms / round", "x fixed"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["strategy"], row["feedback"], f"{row['seconds'] * 1e3:.0f}", f"{row['ratio']:.2f}")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"agents": agents, "auctions": auctions, "bidders": args.bidders, "arms": args.arms,
                       "target": TARGET, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

"""What impressions with context cost: a round with 8 segments, targeting and common values
against the same round without ``[traffic]``, timed in the same run.

Run from the repository root:

    python benchmarks/context.py                 # 1e6 agents, 1e6 auctions, K = 8, 1 and 2 threads
    python benchmarks/context.py --quick         # 1e5 agents, 2e5 auctions
    python benchmarks/context.py --memory 1e7    # also peak memory at 1e7 agents with segments

Both markets hold the same 8 populations of truthful bidders with budgets (second price).
With context, 8 segments split the traffic (shares 0.30 .. 0.04), each population targets
the segments of its half of the list plus one more, values differ by segment, and every
segment has a lognormal common value. Each figure is the best of ``--repeats`` rounds after
a warm-up round (compilation excluded). Targets (issue 14): with context <= 1.25x without,
at 1e6 agents, K = 8, on one and two threads; peak memory at 1e7 agents < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from throughput import best_time, peak_rss_bytes  # noqa: E402

from bidscape.loop.simulation import Simulation  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402

TARGET = 1.25
MEMORY_TARGET = 1e9
SHARES = [0.30, 0.20, 0.14, 0.10, 0.09, 0.08, 0.05, 0.04]
NAMES = [f"segment-{k}" for k in range(len(SHARES))]


def scenario(agents: int, auctions: int, rounds: int, context: bool) -> Scenario:
    populations = []
    for p in range(8):
        population = {"name": f"p{p}", "size": agents // 8, "strategy": "truthful",
                      "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
                      "budget": {"dist": "uniform", "low": 50.0, "high": 150.0}}
        if context:
            half = NAMES[:4] if p % 2 == 0 else NAMES[4:]
            population["targets"] = sorted(set(half) | {NAMES[p]})
            population["segment_value"] = {NAMES[(p + 1) % 8]: 1.5, NAMES[(p + 3) % 8]: 0.7}
        populations.append(population)
    raw = {
        "run": {"seed": 1, "rounds": rounds, "auctions_per_round": auctions, "record_agents": "none",
                "auction_sample_rate": 0.0},
        "mechanism": {"type": "second_price"},
        "market": {"bidders_per_auction": 8},
        "populations": populations,
    }
    if context:
        raw["traffic"] = {"segments": [
            {"name": name, "share": share, "common_value": {"dist": "lognormal", "mean": -0.02, "sigma": 0.2}}
            for name, share in zip(NAMES, SHARES)]}
    return Scenario.from_dict(raw)


def round_seconds(agents: int, auctions: int, repeats: int, context: bool, threads: int) -> float:
    simulation = Simulation(scenario(agents, auctions, repeats + 1, context), threads=threads)
    try:
        return best_time(simulation.step, repeats)
    finally:
        simulation.close()


def memory_child(agents: int, auctions: int) -> None:
    simulation = Simulation(scenario(agents, auctions, 1, True), threads=1)
    simulation.step()
    simulation.close()
    print(json.dumps({"agents": agents, "peak_bytes": peak_rss_bytes()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=float, default=1e6)
    parser.add_argument("--auctions", type=float, default=1e6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="the second thread count timed (default 2)")
    parser.add_argument("--quick", action="store_true", help="1e5 agents, 2e5 auctions")
    parser.add_argument("--memory", type=float, help="also measure peak memory at this many agents")
    parser.add_argument("--memory-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    agents, auctions = (int(1e5), int(2e5)) if args.quick else (int(args.agents), int(args.auctions))
    if args.memory_child:
        memory_child(int(args.memory_child), auctions)
        return
    table = Table(title=f"one round: {agents:.0e} agents, {auctions:.0e} auctions x 8 bidders, second price "
                        f"(target: with context <= {TARGET}x without)")
    for column in ("threads", "without context ms", "8 segments ms", "x without", "target met"):
        table.add_column(column)
    rows = []
    for threads in sorted({1, args.threads}):
        # interleaved, so that the machine's drift hits both alike
        plain = round_seconds(agents, auctions, args.repeats, False, threads)
        with_context = round_seconds(agents, auctions, args.repeats, True, threads)
        plain = min(plain, round_seconds(agents, auctions, args.repeats, False, threads))
        ratio = with_context / plain
        rows.append({"threads": threads, "plain_s": plain, "context_s": with_context, "ratio": ratio})
        table.add_row(str(threads), f"{plain * 1e3:.0f}", f"{with_context * 1e3:.0f}", f"{ratio:.2f}",
                      "yes" if ratio <= TARGET else "no")
    console = Console()
    console.print(table)
    if args.memory:
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(args.memory),
                   "--auctions", str(auctions)]
        done = subprocess.run(command, env={**os.environ, "NUMBA_NUM_THREADS": "1"}, capture_output=True,
                              text=True, check=True)
        memory = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(memory)
        console.print(f"peak memory with 8 segments at {memory['agents']:.0e} agents: "
                      f"{memory['peak_bytes'] / 1e6:.0f} MB (target < {MEMORY_TARGET / 1e6:.0f} MB)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

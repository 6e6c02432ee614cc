"""What capped click probabilities cost position auctions: rounds with quality x ctr above 1 and below.

Run from the repository root:

    python benchmarks/capped_vcg.py                # GSP and VCG, 2, 3, 4 and 8 slots
    python benchmarks/capped_vcg.py --slots 3 --auctions 1e6

For each mechanism and slot count it times ``Simulation.step`` (best of ``--repeats``
rounds after a warm-up round, one thread) of a market of 1e5 truthful agents, K = 8
bidders per auction, lognormal(0, 0.5) values, reserve 0.1, slot CTRs spread evenly from
0.5 down to 0.1, and qualities uniform on [0.5, Q], twice:

- ``Q = 1.8``: quality x ctr <= 0.9, never capped: the kernels compile the capped paths out;
- ``Q = 4``: quality x ctr up to 2, so most auctions have a bidder with a capped click
  probability. VCG then solves the efficient assignment and prices it
  (``bidscape.engine.capped``), and every position mechanism computes the efficient-welfare
  benchmark the same way; the "capped share" column counts those auctions.

Rounds on a shared machine are noisy (a few percent, more under load): compare the two
columns of one row, measured side by side.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # before numba loads

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bidscape.loop.simulation import Simulation  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402


def scenario(mechanism: str, slots: int, quality_high: float, auctions: int) -> Scenario:
    return Scenario.from_dict({
        "run": {"seed": 1, "rounds": 100, "auctions_per_round": auctions, "record_agents": "none",
                "auction_sample_rate": 0.0},
        "mechanism": {"type": mechanism, "slot_ctrs": list(np.linspace(0.5, 0.1, slots)), "reserve": 0.1},
        "market": {"bidders_per_auction": 8},
        "populations": [{"name": "advertisers", "size": 100_000, "strategy": "truthful",
                         "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
                         "quality": {"dist": "uniform", "low": 0.5, "high": quality_high}}]})


def auctions_per_second(s: Scenario, repeats: int) -> float:
    simulation = Simulation(s)
    simulation.step()  # compiles, warms the caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        simulation.step()
        best = min(best, time.perf_counter() - start)
    return s.run.auctions_per_round / best


def capped_share(quality_high: float, draws: int = 200_000) -> float:
    """About the share of auctions with a bidder of quality x top ctr > 1 (8 i.i.d. qualities)."""
    rng = np.random.default_rng(0)
    top = rng.uniform(0.5, quality_high, (draws, 8)).max(axis=1) * 0.5
    return float(np.mean(top > 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[2, 3, 4, 8])
    parser.add_argument("--mechanisms", nargs="+", default=["gsp", "vcg"])
    parser.add_argument("--auctions", type=float, default=2e5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'mechanism':9s} {'slots':>5s} {'uncapped M auctions/s':>22s} {'capped M auctions/s':>20s} "
          f"{'capped share':>12s} {'slowdown':>9s}")
    for mechanism in args.mechanisms:
        for slots in args.slots:
            plain = auctions_per_second(scenario(mechanism, slots, 1.8, int(args.auctions)), args.repeats)
            capped = auctions_per_second(scenario(mechanism, slots, 4.0, int(args.auctions)), args.repeats)
            print(f"{mechanism:9s} {slots:5d} {plain / 1e6:22.3f} {capped / 1e6:20.3f} "
                  f"{capped_share(4.0):12.2f} {plain / capped:8.1f}x", flush=True)


if __name__ == "__main__":
    main()

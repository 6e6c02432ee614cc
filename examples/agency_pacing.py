"""An agency pacing its clients jointly against the same clients pacing independently.

The market of data/scenarios/agency_pacing.toml (budgets that bind, second price), with
agencies of 4 and of 50 clients. For each seed, three arms play the same auctions:

- joint pacing: ``pacing = "dual"``, each client's own dual multiplier, the agency bidding
  only for its client with the highest paced bid (``bidscape.bidders.agency``);
- independent pacing: the same clients as ``adaptive_pacing`` bidders (``coordinate = false``);
- fixed multipliers: the agency as it was before pacing, coordinated, each client bidding its
  value until its budget runs out.

It prints the clients' total utility, the gain of joint over independent pacing with a 95%
interval over the seeds, and the share of clients who ended below their independent-pacing
utility.

    python examples/agency_pacing.py            # 10 seeds
    python examples/agency_pacing.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import polars as pl

import bidscape
from bidscape.analysis.agency import compare_independent
from bidscape.loop.simulation import Simulation

SCENARIO = Path(__file__).resolve().parent.parent / "data" / "scenarios" / "agency_pacing.toml"
T_975 = {2: 4.303, 5: 2.571, 9: 2.262}  # Student t quantile 0.975 by degrees of freedom (seeds - 1)


def clients_utility(scenario: bidscape.Scenario) -> np.ndarray:
    simulation = Simulation(scenario)
    part = simulation.state.population_slice(0)
    total = np.zeros(part.stop - part.start)
    while not simulation.finished:
        simulation.step()
        total += simulation.state.value[part] - simulation.state.spend[part]
    return total


def meets_own_agency(scenario: bidscape.Scenario, size: int) -> float:
    """Share of a client's auctions with another client of its agency among the other bidders."""
    agents = sum(p.size for p in scenario.populations)
    others = scenario.market.bidders_per_auction - 1
    return 1 - math.comb(agents - size, others) / math.comb(agents - 1, others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="write the per-seed table here as CSV")
    args = parser.parse_args()

    base = bidscape.Scenario.from_toml(SCENARIO).with_updates({"run.record_agents": "none"})
    if args.small:
        base = base.with_updates({"run.rounds": 10})
    seeds = range(1, 4 if args.small else 11)
    rows = []
    for size in (4, 50):
        for seed in seeds:
            scenario = base.with_updates({"run.seed": seed, "populations.clients.params.clients_per_agency": size})
            table = compare_independent(scenario, "clients")
            fixed = clients_utility(scenario.with_updates({"populations.clients.params.pacing": "none"}))
            rows.append({"clients_per_agency": size, "seed": seed,
                         "joint": table["utility_agency"].sum(), "independent": table["utility_independent"].sum(),
                         "fixed": fixed.sum(), "worse_off": float((table["gain"] < 0).mean())})
    result = pl.DataFrame(rows).with_columns(gain=pl.col("joint") / pl.col("independent") - 1,
                                             fixed_gain=pl.col("fixed") / pl.col("independent") - 1)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        result.write_csv(args.out / "agency_pacing.csv")

    t = T_975[len(seeds) - 1]
    print(f"clients' total utility, {len(seeds)} seeds (same auctions in every arm), mean and 95% interval:")
    for (size,), part in result.group_by(["clients_per_agency"], maintain_order=True):
        gain = part["gain"].to_numpy()
        half = t * gain.std(ddof=1) / np.sqrt(gain.size)
        print(f"\nagencies of {size} clients (a client meets its own agency in "
              f"{meets_own_agency(base, size):.0%} of its auctions):")
        print(f"  independent pacing {part['independent'].mean():9.1f}")
        print(f"  joint pacing       {part['joint'].mean():9.1f}   gain {gain.mean():+.2%} "
              f"[{gain.mean() - half:+.2%}, {gain.mean() + half:+.2%}]")
        print(f"  fixed multipliers  {part['fixed'].mean():9.1f}   gain {part['fixed_gain'].mean():+.2%}")
        print(f"  clients below their independent-pacing utility with joint pacing: {part['worse_off'].mean():.0%}")


if __name__ == "__main__":
    main()

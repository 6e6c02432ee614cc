"""Budget pacing on and off: what pacing buys the advertisers who use it, and what it costs the exchange.

The "pacers" of data/scenarios/pacing.toml spread their budgets over the day with adaptive
pacing; in the treatment they bid their value until their budget runs out. Both arms run
over the same seeds (the same auctions), and the comparison gives every headline metric and
the pacers' own outcomes with 95% intervals over the paired seeds.

    python examples/pacing_on_off.py            # 24 rounds x 250,000 auctions, 6 seeds
    python examples/pacing_on_off.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

import bidscape
from bidscape import analysis
from bidscape.analysis.compare import compare
from bidscape.analysis.report import fmt
from bidscape.sweep import SweepSpec, run_sweep

SCENARIO = Path(__file__).resolve().parent.parent / "data" / "scenarios" / "pacing.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: a temporary one]")
    args = parser.parse_args()

    base = bidscape.Scenario.from_toml(SCENARIO).with_updates({"run.record_agents": "none"})
    if args.small:
        base = base.with_updates({"run.rounds": 8, "run.auctions_per_round": 20_000,
                                  "populations.pacers.size": 1_000, "populations.spenders.size": 1_000})
    seeds = list(range(1, 4 if args.small else 7))
    arms = {"pacing-on": {}, "pacing-off": {"populations.pacers.strategy": "truthful",
                                            "populations.pacers.params": {}}}
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-pacing-"))
    run_sweep(SweepSpec.from_scenario(base, arms, seeds, "pacing-on-off"), out, progress=not args.small)

    result = compare(out / "pacing-on", out / "pacing-off", ["revenue", "efficiency", "liquid_welfare",
                                                                 "bidder_utility", "budget_utilisation"])
    print(f"study: {out}\n\nmarket, pacing off minus pacing on ({len(result.seeds)} paired seeds):")
    for r in result.table.iter_rows(named=True):
        print(f"  {r['metric']:>18}: {fmt(r['baseline']):>10} -> {fmt(r['treatment']):>10}   "
              f"{fmt(r['relative'], True):>8}  [{fmt(r['relative_ci_low'], True)}, {fmt(r['relative_ci_high'], True)}]")

    pacers = {arm: analysis.populations(out / arm).filter(pl.col("population") == "pacers")
              for arm in ("pacing-on", "pacing-off")}
    print("\nthe pacers themselves (mean over seeds):")
    for column in ("utility", "value", "spend", "budget_utilisation", "return_on_spend"):
        on, off = (pacers[arm][column].mean() for arm in ("pacing-on", "pacing-off"))
        print(f"  {column:>18}: pacing on {fmt(on):>10}   off {fmt(off):>10}")
    spent = {arm: analysis.populations(out / arm, by=("round", "population"))
             .filter((pl.col("population") == "pacers") & (pl.col("cumulative_spend") >= 0.9 * pl.col("budget")))
             .group_by("seed").agg(pl.col("round").min()).get_column("round").mean() + 1
             for arm in ("pacing-on", "pacing-off")}
    print(f"\n90% of the pacers' budget was spent after {spent['pacing-on']:.1f} rounds with pacing, "
          f"{spent['pacing-off']:.1f} without (of {base.run.rounds}): without pacing the budget goes to the "
          "first auctions of the day, whatever they are worth.")


if __name__ == "__main__":
    main()

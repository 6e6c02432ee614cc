"""An exchange switches from second-price to first-price auctions halfway through the run.

What happens to revenue, and to bidders who keep bidding their value instead of shading?
With 8 bidders and values uniform on [0, 1], bidding 7/8 of one's value is the symmetric
first-price equilibrium, and revenue equivalence says revenue stays 7/9 per auction when
everyone plays it. Here half of the bidders ("naive") never shade: in first price they pay
their full value whenever they win, so their utility drops to zero, and they lift revenue.

    python examples/second_to_first_price.py            # 20 rounds x 200,000 auctions
    python examples/second_to_first_price.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

import bidscape
from bidscape import analysis

SCENARIO = Path(__file__).resolve().parent.parent / "data" / "scenarios" / "second_to_first_price.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick run (CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: a temporary one]")
    args = parser.parse_args()

    scenario = bidscape.Scenario.from_toml(SCENARIO)
    if args.small:
        scenario = scenario.with_updates({"run.auctions_per_round": 20_000, "populations.naive.size": 500,
                                          "populations.shaders.size": 500})
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-switch-")) / "run"
    run = bidscape.run(scenario, out=out)
    switch = scenario.events[0].at_round

    market = analysis.market(run).with_columns(phase=pl.when(pl.col("round") < switch)
                                               .then(pl.lit("second price")).otherwise(pl.lit("first price")))
    revenue = market.group_by("phase").agg((pl.col("revenue").sum() / pl.col("auctions").sum()).alias("per_auction"),
                                           pl.col("efficiency").mean())
    pops = analysis.populations(run, by=("round", "population")).with_columns(
        phase=pl.when(pl.col("round") < switch).then(pl.lit("second price")).otherwise(pl.lit("first price")))
    utility = (pops.group_by("phase", "population")
               .agg((pl.col("utility").sum() / pl.col("wins").sum()).alias("utility_per_win"),
                    (pl.col("wins").sum() / pl.col("participations").sum()).alias("win_rate"))
               .sort("population", "phase", descending=[False, True]))

    print(f"run: {run.path}\n")
    print("revenue per auction (theory with everyone in equilibrium: 7/9 = 0.778 in both formats)")
    for row in revenue.sort("phase", descending=True).iter_rows(named=True):
        print(f"  {row['phase']:>12}: {row['per_auction']:.4f}   efficiency {row['efficiency']:.3f}")
    print("\nbidders' utility per win and win rate")
    for row in utility.iter_rows(named=True):
        print(f"  {row['population']:>8} in {row['phase']:>12}: utility/win {row['utility_per_win']:.4f}, "
              f"win rate {row['win_rate']:.3f}")
    naive_fp = utility.filter((pl.col("population") == "naive") & (pl.col("phase") == "first price"))
    print(f"\nNaive bidders keep bidding their value: in first price they win as often as before (twice as "
          f"often as the shaders) but keep {naive_fp['utility_per_win'].item():.4f} per win: they pay what the "
          "impression is worth to them.")


if __name__ == "__main__":
    main()

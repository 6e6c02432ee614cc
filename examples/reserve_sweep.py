"""A reserve-price sweep: revenue against the reserve, with 95% intervals over seeds.

Two bidders with values uniform on [0, 1] in second-price auctions. Theory: revenue per
auction is 1/3 + r^2 - 4 r^3 / 3, highest at Myerson's reserve r = 0.5 (5/12 = 0.417).
The sweep runs every reserve over the same seeds (common random numbers) on a process
pool, resumably, into a sweep folder that `bidscape dashboard` and `bidscape compare` read.

    python examples/reserve_sweep.py                # 9 reserves x 8 seeds
    python examples/reserve_sweep.py --small        # a few seconds
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import polars as pl
from scipy import stats

import bidscape
from bidscape import analysis
from bidscape.sweep import SweepSpec, run_sweep

SCENARIO = Path(__file__).resolve().parent.parent / "data" / "scenarios" / "reserve_price.toml"


def theory(r: float) -> float:
    return 1 / 3 + r ** 2 - 4 * r ** 3 / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick sweep (CI)")
    parser.add_argument("--out", type=Path, default=None, help="sweep folder [default: a temporary one]")
    parser.add_argument("--workers", type=int, default=None, help="processes [default: one per core]")
    args = parser.parse_args()

    reserves = [0.0, 0.25, 0.5, 0.75] if args.small else [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    seeds = list(range(1, 4 if args.small else 9))
    base = bidscape.Scenario.from_toml(SCENARIO).with_updates({
        "events": [], "run.record_agents": "none", "run.rounds": 4 if args.small else 10,
        "run.auctions_per_round": 5_000 if args.small else 100_000})
    variants = {f"reserve={r:g}": {"mechanism.reserve": r} for r in reserves}
    spec = SweepSpec.from_scenario(base, variants, seeds, "reserve-sweep")
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-reserve-")) / "sweep"
    result = run_sweep(spec, out, workers=args.workers, progress=not args.small)

    index = result.index.select("variant", "seed", "mechanism.reserve")
    per_run = analysis.headline(out).join(index, left_on=["group", "seed"], right_on=["variant", "seed"])
    per_run = per_run.with_columns((pl.col("revenue") / (base.run.rounds * base.run.auctions_per_round))
                                   .alias("per_auction"))
    table = (per_run.group_by("mechanism.reserve")
             .agg(pl.col("per_auction").mean().alias("mean"), pl.col("per_auction").std().alias("sd"),
                  pl.len().alias("n"), pl.col("sold_share").mean())
             .sort("mechanism.reserve"))
    print(f"sweep: {out} ({result.complete} runs)\n")
    print(" reserve   revenue/auction   95% interval (over seeds)   theory   sold share")
    for row in table.iter_rows(named=True):
        half = stats.t.ppf(0.975, row["n"] - 1) * row["sd"] / math.sqrt(row["n"])
        r = row["mechanism.reserve"]
        print(f"  {r:5.2f}       {row['mean']:.4f}        [{row['mean'] - half:.4f}, {row['mean'] + half:.4f}]"
              f"         {theory(r):.4f}     {row['sold_share']:.3f}")
    best = table.sort("mean", descending=True).row(0, named=True)["mechanism.reserve"]
    print(f"\nbest reserve in the sweep: {best:g} (Myerson: 0.5)")


if __name__ == "__main__":
    main()

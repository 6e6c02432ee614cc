"""A large advertiser narrows its targeting to one segment: who gains, and what the exchange loses.

Two segments of equal traffic, "news" and "sports". Three populations: a large "brand"
advertiser (adaptive pacing on a budget) that values sports impressions at half its news
value, and two smaller truthful advertisers, one per segment. In the broad arm the brand
bids on both segments; in the narrowed arm it targets news only (``targets = ["news"]``).
Both arms play the same auctions (same seed). The table gives revenue per segment and each
population's welfare (value won minus spend). An auction's ``bidders_per_auction`` seats are
drawn from the agents eligible for its segment, so whoever leaves a segment leaves its seats
to the others.

    python examples/narrowing_targeting.py            # 12 rounds x 100,000 auctions
    python examples/narrowing_targeting.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

import bidscape
from bidscape import analysis

LOGNORMAL = {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}
BIDDERS = 4
ARMS = {"broad": ["news", "sports"], "narrowed": ["news"]}


def scenario(brand_targets: list[str], rounds: int, auctions: int, size: int) -> bidscape.Scenario:
    scale = rounds * auctions / size  # budgets that bind at any size: about 10% of an agent's share of the run
    return bidscape.Scenario.from_dict({
        "run": {"name": "narrowing", "seed": 3, "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": "none"},
        "mechanism": {"type": "second_price", "reserve": 0.1},
        "market": {"bidders_per_auction": BIDDERS},
        "traffic": {"segments": [{"name": "news", "share": 0.5}, {"name": "sports", "share": 0.5}]},
        "populations": [
            {"name": "brand", "size": 2 * size, "strategy": "adaptive_pacing", "values": LOGNORMAL,
             "budget": {"dist": "uniform", "low": 0.05 * scale, "high": 0.15 * scale},
             "params": {"step": 0.5, "replan": True},
             "targets": brand_targets, "segment_value": {"sports": 0.5}},
            {"name": "news_local", "size": size, "strategy": "truthful", "values": LOGNORMAL, "targets": ["news"]},
            {"name": "sports_local", "size": size, "strategy": "truthful", "values": LOGNORMAL,
             "targets": ["sports"]},
        ],
    })


def moves(arms: dict[str, float]) -> str:
    """'goes up by 12.3%' or 'goes down by 4.5%', from the broad arm to the narrowed one."""
    change = arms["narrowed"] / arms["broad"] - 1
    return f"goes {'up' if change > 0 else 'down'} by {abs(change):.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: a temporary one]")
    args = parser.parse_args()
    rounds, auctions, size = (6, 20_000, 1_000) if args.small else (12, 100_000, 5_000)
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-narrowing-"))

    revenue, welfare = {}, {}
    for arm, targets in ARMS.items():
        run = bidscape.run(scenario(targets, rounds, auctions, size), out=out / arm)
        revenue[arm] = {r["segment"]: r for r in analysis.segment_metrics(run).iter_rows(named=True)}
        pops = analysis.populations(run).with_columns((pl.col("value") - pl.col("spend")).alias("welfare"))
        welfare[arm] = {r["population"]: r for r in pops.iter_rows(named=True)}

    print(f"runs: {out}\n\n{rounds} rounds x {auctions:,} auctions; the brand targets both segments (broad) "
          "or news only (narrowed)\n")
    print(f"{'':>26} {'broad':>10} {'narrowed':>10} {'change':>8}")

    def line(label: str, broad: float, narrowed: float, digits: int = 0) -> None:
        change = f"{narrowed / broad - 1:+.1%}" if broad else ""
        print(f"{label:>26} {broad:>10,.{digits}f} {narrowed:>10,.{digits}f} {change:>8}")

    for segment in ("news", "sports"):
        line(f"revenue/auction {segment}", revenue["broad"][segment]["revenue_per_auction"],
             revenue["narrowed"][segment]["revenue_per_auction"], 4)
    totals = {arm: sum(r["revenue"] for r in revenue[arm].values()) for arm in ARMS}
    line("revenue, total", totals["broad"], totals["narrowed"])
    for population in ("brand", "news_local", "sports_local"):
        line(f"welfare {population}", welfare["broad"][population]["welfare"],
             welfare["narrowed"][population]["welfare"])
    for population in ("brand",):
        line("brand spend / budget", welfare["broad"][population]["budget_utilisation"],
             welfare["narrowed"][population]["budget_utilisation"], 3)
        line("brand value / spend", welfare["broad"][population]["return_on_spend"],
             welfare["narrowed"][population]["return_on_spend"], 3)
    advertisers = {arm: sum(r["welfare"] for r in welfare[arm].values()) for arm in ARMS}
    line("welfare, all advertisers", advertisers["broad"], advertisers["narrowed"])

    brand = {arm: welfare[arm]["brand"]["welfare"] for arm in ARMS}
    sports = {arm: revenue[arm]["sports"]["revenue_per_auction"] for arm in ARMS}
    local = {arm: welfare[arm]["sports_local"]["welfare"] for arm in ARMS}
    print(f"\nNarrowing to news: the brand's own welfare {moves(brand)}, sports revenue per auction "
          f"{moves(sports)}, the sports advertisers' welfare {moves(local)}; the exchange's total revenue "
          f"{moves(totals)} and all advertisers' welfare {moves(advertisers)}. Each auction's "
          f"{BIDDERS} seats go to agents eligible for its segment, so the brand leaving sports hands its seats "
          "(where it bid half its news value, less its pacing) to full-value sports bidders.")


if __name__ == "__main__":
    main()

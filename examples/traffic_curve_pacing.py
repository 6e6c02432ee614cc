"""Budget pacing under a daily traffic curve: who spends in the peak, who runs dry.

Traffic follows a 12-round day, [traffic] ``curve = [0.4, 0.3, 0.3, 0.5, 0.8, 1.0, 1.2, 1.3,
1.2, 1.1, 1.0, 1.0]``, over 24 rounds (two days). "pacers" on a budget for the two days
compete with "others", who bid their value without budget. The same pacers (same seed, same
auctions) use in turn: adaptive pacing aiming at budget / rounds every round, adaptive pacing
with ``replan = true`` (remaining budget / rounds left), PID pacing with ``rounds_per_day =
12`` (a spend plan learned from the first day's prices), and no pacing (bid the value until the
budget is gone). Prices are lowest where traffic is highest, so a pacer should spend with
the curve.

    python examples/traffic_curve_pacing.py            # 24 rounds x 100,000 auctions (average)
    python examples/traffic_curve_pacing.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

import bidscape
from bidscape import analysis

CURVE = [0.4, 0.3, 0.3, 0.5, 0.8, 1.0, 1.2, 1.3, 1.2, 1.1, 1.0, 1.0]
DAY, ROUNDS = len(CURVE), 24
PEAK = [h for h, x in enumerate(CURVE) if x >= 1.2]  # the day's busiest rounds
TROUGH = [h for h, x in enumerate(CURVE) if x <= 0.4]  # and its quietest
STRATEGIES = {
    "adaptive, fixed rate": {"strategy": "adaptive_pacing", "params": {"step": 0.5}},
    "adaptive, replan": {"strategy": "adaptive_pacing", "params": {"step": 0.5, "replan": True}},
    "pid, daily plan": {"strategy": "pid_pacing", "params": {"rounds_per_day": DAY}},
    "no pacing": {"strategy": "truthful", "params": {}},
}
LOGNORMAL = {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}


def scenario(pacers: dict, auctions: int, size: int) -> bidscape.Scenario:
    share = ROUNDS * auctions / (2 * size)  # budgets in proportion to the auctions per agent: they bind at any size
    return bidscape.Scenario.from_dict({
        "run": {"name": "traffic-curve-pacing", "seed": 12, "rounds": ROUNDS, "auctions_per_round": auctions,
                "record_agents": "none"},
        "mechanism": {"type": "second_price", "reserve": 0.05},
        "market": {"bidders_per_auction": 4},
        "traffic": {"curve": CURVE, "segments": [{"name": "all", "share": 1.0}]},
        "populations": [
            {"name": "pacers", "size": size, "values": LOGNORMAL, **pacers,
             "budget": {"dist": "uniform", "low": 0.05 * share, "high": 0.15 * share}},
            {"name": "others", "size": size, "strategy": "truthful", "values": LOGNORMAL},
        ],
    })


def outcome(run: bidscape.Run) -> dict:
    rounds = analysis.populations(run, by=("round", "population"), populations=["pacers"]).sort("round")
    hour = pl.col("round") % DAY
    spend = rounds["spend"].sum()
    left = dict(zip(rounds["round"], rounds["budget_remaining"] / rounds["budget"]))
    dry = rounds.filter(pl.col("budget_remaining") < 0.01 * pl.col("budget"))["round"]
    auctions = analysis.market(run).with_columns(hour.alias("hour"))
    per_auction = {name: rounds.filter(hour.is_in(hours))["spend"].sum()
                   / auctions.filter(pl.col("hour").is_in(hours))["auctions"].sum()
                   for name, hours in (("peak", PEAK), ("trough", TROUGH))}
    total = analysis.populations(run, populations=["pacers"]).row(0, named=True)
    return {"spent": total["budget_utilisation"], "value": total["value"], "utility": total["utility"],
            "peak": rounds.filter(hour.is_in(PEAK))["spend"].sum() / spend,
            "trough": rounds.filter(hour.is_in(TROUGH))["spend"].sum() / spend,
            "peak_per_auction": per_auction["peak"], "trough_per_auction": per_auction["trough"],
            "left_day1": left[DAY - 1], "dry": int(dry.min()) if dry.len() else None}  # rounds from 0, as PEAK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: a temporary one]")
    args = parser.parse_args()
    auctions, size = (20_000, 1_000) if args.small else (100_000, 5_000)
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-traffic-pacing-"))

    results = {name: outcome(bidscape.run(scenario(pacers, auctions, size), out=out / name.replace(", ", "-")
                                          .replace(" ", "-")))
               for name, pacers in STRATEGIES.items()}
    volume = {name: sum(CURVE[h] for h in hours) / sum(CURVE) for name, hours in (("peak", PEAK), ("trough", TROUGH))}
    print(f"runs: {out}\n\n{ROUNDS} rounds (two days of {DAY}), {auctions:,} auctions per round on average; "
          f"peak rounds {PEAK} carry {volume['peak']:.0%} of a day's traffic, trough rounds {TROUGH} "
          f"{volume['trough']:.0%}\n")
    print(f"{'pacers':>22} {'budget':>7} {'spend in':>9} {'spend in':>9} {'spend/auction':>14} "
          f"{'value':>9} {'utility':>9} {'budget left':>12} {'budget ran':>11}")
    print(f"{'':>22} {'spent':>7} {'peak':>9} {'trough':>9} {'peak/trough':>14} "
          f"{'won':>9} {'':>9} {'after day 1':>12} {'dry after':>11}")
    for name, r in results.items():
        dry = "never" if r["dry"] is None else f"round {r['dry']}"
        print(f"{name:>22} {r['spent']:>7.1%} {r['peak']:>9.1%} {r['trough']:>9.1%} "
              f"{r['peak_per_auction'] / r['trough_per_auction']:>14.2f} {r['value']:>9,.0f} {r['utility']:>9,.0f} "
              f"{r['left_day1']:>12.1%} {dry:>11}")

    best = max(results, key=lambda n: results[n]["utility"])
    follows = max(results, key=lambda n: results[n]["peak"])
    ran_dry = [f"{n} (round {r['dry']})" for n, r in results.items() if r["dry"] is not None and r["dry"] < ROUNDS - 1]
    even = len(PEAK) / DAY  # what spending the same every round puts in the peak
    also = "also " if follows == best else f"'{follows}' "
    print(f"\n'{best}' gives the pacers the most utility ({results[best]['utility']:,.0f}, value won "
          f"{results[best]['value']:,.0f}) and {also}puts the largest share of spend in the peak rounds "
          f"({results[follows]['peak']:.1%}; even spend per round would put {even:.0%} there, the traffic "
          f"{volume['peak']:.0%}). "
          + (f"Budgets ran out before the last round with: {', '.join(ran_dry)}."
             if ran_dry else "No pacer's budget ran out before the last round."))


if __name__ == "__main__":
    main()

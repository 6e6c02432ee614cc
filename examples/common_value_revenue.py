"""A common value in every auction: revenue keeps its mean and gains spread.

Four truthful bidders per second-price auction, private values U[0, 1], all multiplied by
one common draw c per auction (a [traffic] segment's ``common_value``: lognormal with
``mean = -sigma^2 / 2``, so E[c] = 1). The second highest of four U[0, 1] values has mean
(n-1)/(n+1) = 3/5 and second moment 2/5, so revenue per auction stays 3/5 E[c] = 0.6 for every
sigma, welfare 4/5, while its standard deviation across auctions is sqrt(0.4 e^(sigma^2) - 0.36):
the market is as rich on average and much less predictable auction to auction.

    python examples/common_value_revenue.py            # 4 runs x 200,000 auctions
    python examples/common_value_revenue.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import bidscape
from bidscape import analysis

SIGMAS = (0.0, 0.25, 0.5, 1.0)
BIDDERS = 4


def scenario(sigma: float, auctions: int) -> bidscape.Scenario:
    segment = {"name": "all", "share": 1.0}
    if sigma > 0:  # sigma 0 is c = 1: no common value at all
        segment["common_value"] = {"dist": "lognormal", "mean": -sigma ** 2 / 2, "sigma": sigma}
    return bidscape.Scenario.from_dict({
        "run": {"name": f"common-value-{sigma:g}", "seed": 7, "rounds": 1, "auctions_per_round": auctions,
                "record_agents": "none", "auction_sample_rate": 1.0},
        "mechanism": {"type": "second_price"},
        "market": {"bidders_per_auction": BIDDERS},
        "traffic": {"segments": [segment]},
        "populations": [{"name": "bidders", "size": 1_000, "strategy": "truthful",
                         "values": {"dist": "uniform", "low": 0.0, "high": 1.0}}],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: a temporary one]")
    args = parser.parse_args()
    auctions = 40_000 if args.small else 200_000
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-common-value-"))

    theory = (BIDDERS - 1) / (BIDDERS + 1)  # x E[c] = 1
    print(f"runs: {out}\n\n{BIDDERS} truthful bidders, second price, values c x U[0,1], E[c] = 1, "
          f"{auctions:,} auctions each; theory: revenue/auction {theory:.4f}, "
          f"welfare/auction {BIDDERS / (BIDDERS + 1):.4f}")
    print(f"\n{'sigma':>6} {'revenue/auction':>16} {'theory':>7} {'+-2se':>7} {'welfare/auction':>16} "
          f"{'efficiency':>10} {'sd of revenue':>14} {'theory sd':>10}")
    found = []
    for sigma in SIGMAS:
        run = bidscape.run(scenario(sigma, auctions), out=out / f"sigma-{sigma:g}")
        segment = analysis.segment_metrics(run).row(0, named=True)
        prices = run.auctions["price"].to_numpy()  # the sample holds every auction (rate 1)
        sd = float(prices.std(ddof=1))
        se = sd / math.sqrt(prices.size)
        theory_sd = math.sqrt(0.4 * math.exp(sigma ** 2) - 0.36)
        welfare = segment["welfare"] / segment["auctions"]
        print(f"{sigma:>6g} {segment['revenue_per_auction']:>16.4f} {theory:>7.4f} {2 * se:>7.4f} "
              f"{welfare:>16.4f} {segment['efficiency']:>10.4f} {sd:>14.4f} {theory_sd:>10.4f}")
        found.append((sigma, segment["revenue_per_auction"], sd, se))

    worst = max(abs(revenue - theory) for _, revenue, _, _ in found)
    worst_z = max(abs(revenue - theory) / se for _, revenue, _, se in found)
    (s0, _, sd0, _), (s1, _, sd1, _) = found[0], found[-1]
    print(f"\nRevenue per auction stays within {worst:.4f} of (n-1)/(n+1) E[c] = {theory:.2f} for every sigma "
          f"(at most {worst_z:.1f} standard errors; the runs share their private values, so their gaps move "
          "together), "
          f"while its standard deviation across auctions grows {sd1 / sd0:.1f}-fold, from {sd0:.3f} "
          f"(sigma {s0:g}) to {sd1:.3f} (sigma {s1:g}): a common value moves risk, not the mean.")


if __name__ == "__main__":
    main()

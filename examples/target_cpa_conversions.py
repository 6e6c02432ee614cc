"""Target-CPA autobidders on values per conversion: the textbook bid cpa x pCVR against
``target_cpa``, which bids up to its cost-per-conversion target, in VCG and GSP.

200 advertisers value a conversion at 1 (``values`` constant 1, ``value_per = "conversion"``) and
convert 5% of their clicks (``conversion_rate = 0.05``), so the value they win is their expected
conversions (docs/context.md, "Conversions"). They compete for 3 slots against 800 truthful
advertisers with values per click U[0, 0.5]. The textbook bid ``cpa x 0.05`` per click never
pays more than ``cpa`` per conversion, and so leaves conversions it could afford; ``target_cpa``
(dual descent) raises its bids until the cost per conversion is at target.

    python examples/target_cpa_conversions.py            # 40 rounds x 20,000 auctions per run
    python examples/target_cpa_conversions.py --small    # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bidscape

CPA = 4.0
BIDDERS = {"textbook": {"strategy": "constant_shade", "params": {"multiplier": CPA}},  # bid = cpa x 0.05
           "target_cpa": {"strategy": "target_cpa", "params": {"cpa": CPA}}}


def scenario(mechanism: str, bidder: str, rounds: int, auctions: int) -> bidscape.Scenario:
    return bidscape.Scenario.from_dict({
        "run": {"name": f"{mechanism}-{bidder}", "seed": 3, "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": "none", "auction_sample_rate": 0.0},
        "mechanism": {"type": mechanism, "slot_ctrs": [0.3, 0.2, 0.1]},
        "market": {"bidders_per_auction": 5},
        "populations": [
            {"name": "advertisers", "size": 200, "values": {"dist": "constant", "value": 1.0},
             "value_per": "conversion", "conversion_rate": 0.05} | BIDDERS[bidder],
            {"name": "others", "size": 800, "strategy": "truthful",
             "values": {"dist": "uniform", "low": 0.0, "high": 0.5}},
        ],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="output folder [default: a temporary one]")
    args = parser.parse_args()
    rounds, auctions = (10, 5_000) if args.small else (40, 20_000)
    out = args.out or Path(tempfile.mkdtemp(prefix="bidscape-target-cpa-"))
    print(f"runs: {out}\n\ncpa target {CPA:g}, conversion rate 0.05, {rounds} rounds x {auctions:,} auctions\n")
    print(f"{'mechanism':>9} {'bidder':>10} {'conversions':>12} {'spend':>10} {'cost/conversion':>16}")
    rows = {}
    for mechanism in ("vcg", "gsp"):
        for bidder in BIDDERS:
            run = bidscape.run(scenario(mechanism, bidder, rounds, auctions), out=out / f"{mechanism}-{bidder}")
            row = rows[mechanism, bidder] = run.summary["populations"][0]
            print(f"{mechanism:>9} {bidder:>10} {row['conversions']:>12.1f} {row['spend']:>10.1f} "
                  f"{row['cost_per_conversion']:>16.4f}")
    for mechanism in ("vcg", "gsp"):
        text, auto = rows[mechanism, "textbook"], rows[mechanism, "target_cpa"]
        print(f"\n{mechanism}: target_cpa converts {auto['conversions'] / text['conversions'] - 1:.0%} more than the "
              f"textbook bid at {auto['cost_per_conversion']:.3f} per conversion "
              f"(textbook: {text['cost_per_conversion']:.3f}; target {CPA:g})")


if __name__ == "__main__":
    main()

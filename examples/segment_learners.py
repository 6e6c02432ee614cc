"""Strategies that see the segment: shading learned per segment, and one budget paced per segment.

1. Learners with values U[0, 1] bid in first-price auctions against one truthful rival per
   auction, whose value is U[0, 1] in segment "strong" and U[0, 0.25] in "weak". The best fixed
   multiplier is 0.5 against the strong rival and 0.3 against the weak one (docs/context.md
   gives the closed forms). Hedge with ``contexts = "segment"`` learns one multiplier per segment;
   without, it must pick one for both.
2. Advertisers with one budget each bid in second-price auctions of two segments (70% / 30% of
   traffic). ``adaptive_pacing`` lets the traffic decide where the budget goes;
   ``segment_pacing`` with ``split = {a = 0.4, b = 0.6}`` steers 60% of it to the smaller
   segment, and pays for that in value per unit spent.

    python examples/segment_learners.py            # 100 rounds, about 20 seconds
    python examples/segment_learners.py --small    # 12 rounds (the duals have not settled yet)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bidscape
from bidscape.loop.simulation import Simulation

GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
LEARNERS = 200


def shading_market(contexts: str, rounds: int) -> bidscape.Scenario:
    rivals = [{"name": f"{name}-rivals", "size": 100 * LEARNERS, "strategy": "truthful", "targets": [name],
               "values": {"dist": "uniform", "low": 0.0, "high": high}} for name, high in (("strong", 1.0),
                                                                                      ("weak", 0.25))]
    return bidscape.Scenario.from_dict({
        "run": {"name": f"shading-{contexts}", "seed": 3, "rounds": rounds, "auctions_per_round": 40_000,
                "record_agents": "population"},
        "mechanism": {"type": "first_price"},
        "market": {"bidders_per_auction": 2},
        "traffic": {"segments": [{"name": "strong", "share": 0.5}, {"name": "weak", "share": 0.5}]},
        "populations": [{"name": "learners", "size": LEARNERS, "strategy": "hedge",
                         "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
                         "params": {"grid": GRID, "contexts": contexts}}, *rivals],
    })


def pacing_market(strategy: str, rounds: int) -> bidscape.Scenario:
    params = {"step": 0.3, "replan": True}
    if strategy == "segment_pacing":
        params["split"] = {"a": 0.4, "b": 0.6}
    return bidscape.Scenario.from_dict({
        "run": {"name": strategy, "seed": 5, "rounds": rounds, "auctions_per_round": 20_000,
                "record_agents": "population"},
        "mechanism": {"type": "second_price"},
        "market": {"bidders_per_auction": 4},
        "traffic": {"segments": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.3}]},
        "populations": [
            {"name": "pacers", "size": 2_000, "strategy": strategy, "params": params,
             "values": {"dist": "uniform", "low": 0.0, "high": 1.0}, "budget": {"dist": "constant", "value": 30.0}},
            {"name": "others", "size": 2_000, "strategy": "truthful",
             "values": {"dist": "uniform", "low": 0.0, "high": 1.0}}],
    })


def play(scenario: bidscape.Scenario, per_segment: bool) -> tuple[Simulation, np.ndarray]:
    """Run the market; with ``per_segment``, sum the first population's spend and value per segment."""
    sim = Simulation(scenario)
    size = scenario.populations[0].size
    totals = np.zeros((2, 2))  # [spend, value] x segment
    while not sim.finished:
        sim.step()
        if per_segment:
            totals += sim.state.segment_outcomes[:size, :, [0, 2]].sum(axis=0).T
    return sim, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick study (CI)")
    parser.add_argument("--out", type=Path, default=None, help="unused (the study keeps no run folders)")
    args = parser.parse_args()
    rounds = 12 if args.small else 100
    print(f"runs in memory (no run folders); {rounds} rounds each")

    print("\n1. First price against a strong (U[0,1]) and a weak (U[0,0.25]) rival; best fixed multipliers "
          "0.5 and 0.3")
    print(f"{'hedge':>22} {'strong':>7} {'weak':>7} {'utility/learner':>16} {'best fixed in hindsight':>24}")
    utility = {}
    for contexts in ("none", "segment"):
        sim, _ = play(shading_market(contexts, rounds), per_segment=False)
        learner = sim.strategies[0]
        if contexts == "segment":
            strong, weak = sim.state.segment_multiplier[:LEARNERS].mean(axis=0)
        else:
            strong = weak = float(np.take(learner.grid, learner.arm).mean())
        utility[contexts] = float(learner.cumulative_utility.sum() / LEARNERS)
        # the replay's utility of every arm (per segment with contexts): the best fixed choice per row
        hindsight = float(learner.cumulative_counterfactual.max(axis=1).sum() / LEARNERS)
        print(f"{'contexts = ' + repr(contexts):>22} {strong:7.2f} {weak:7.2f} {utility[contexts]:16.2f} "
              f"{hindsight:24.2f}")
    gain = utility["segment"] / utility["none"] - 1
    print(f"Shading per segment: after {rounds} rounds hedge with contexts = 'segment' earns {gain:+.1%} utility "
          "over one multiplier for both segments (the best fixed choices differ by about 3% in theory)")

    print("\n2. One budget of 30 per advertiser, second price, traffic 70% a / 30% b")
    print(f"{'strategy':>16} {'spend a':>8} {'spend b':>8} {'share b':>8} {'value/spend':>12} {'budget used':>12}")
    for strategy in ("adaptive_pacing", "segment_pacing"):
        sim, totals = play(pacing_market(strategy, rounds), per_segment=strategy == "segment_pacing")
        budget = sim.state.budget[:2_000]
        spent = budget - sim.state.remaining_budget[:2_000]
        value = sim.value_won[:2_000].sum()
        if strategy == "segment_pacing":
            spend_a, spend_b = totals[0]
            share = f"{spend_b / (spend_a + spend_b):8.1%}"
            a, b = f"{spend_a / 2_000:8.2f}", f"{spend_b / 2_000:8.2f}"
        else:
            a = b = f"{'-':>8}"
            share = f"{'-':>8}"
        print(f"{strategy:>16} {a} {b} {share} {value / spent.sum():12.3f} {spent.sum() / budget.sum():12.1%}")
    print("segment_pacing steers its budget to the split it was given, never above the budget")


if __name__ == "__main__":
    main()

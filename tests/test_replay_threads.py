"""The counterfactual replay on two threads (split by agents) gives exactly what one thread gives.

Each thread draws every auction and replays half of the learners, so every learner's row adds
its auctions in arrival order whichever thread holds it. Checked where the split could go wrong:
learners in several populations around the split, more than ``SCAN_DEDUP_MAX`` bidders (the
draws then mark agents in an array, one per thread), rows per segment, and all-pay losers.
"""

from __future__ import annotations

import numpy as np
import pytest

from bidscape import Scenario
from bidscape.engine.draws import SCAN_DEDUP_MAX
from bidscape.loop.simulation import Simulation

LOGNORMAL = {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}


def market(mechanism: str, bidders: int, segments: bool) -> dict:
    grid = {"low": 0.2, "high": 1.0, "arms": 7}
    contexts = {"contexts": "segment"} if segments else {}
    raw = {
        "run": {"seed": 11, "rounds": 3, "auctions_per_round": 3000, "record_agents": "none"},
        "mechanism": {"type": mechanism, "reserve": 0.2},
        "market": {"bidders_per_auction": bidders},
        "populations": [
            {"name": "rivals", "size": 150, "strategy": "truthful", "values": LOGNORMAL},
            {"name": "hedgers", "size": 120, "strategy": "hedge", "values": LOGNORMAL, "params": {**grid, **contexts},
             "budget": {"dist": "uniform", "low": 5.0, "high": 20.0}},
            {"name": "pacers", "size": 90, "strategy": "adaptive_pacing", "values": LOGNORMAL,
             "budget": {"dist": "uniform", "low": 5.0, "high": 20.0}},
            {"name": "bandits", "size": 110, "strategy": "exp3", "values": LOGNORMAL, "params": {**grid, **contexts}},
        ],
    }
    if segments:
        raw["traffic"] = {"segments": [{"name": "news", "share": 0.6}, {"name": "sports", "share": 0.4}]}
    return raw


def counterfactuals(raw: dict, threads: int) -> list[np.ndarray]:
    """Each round's counterfactual utilities and participations of both learning populations."""
    sim = Simulation(Scenario.from_dict(raw), threads=threads)
    seen = []
    try:
        while not sim.finished:
            sim.step()
            for p in (1, 3):
                utility, taken = sim._counterfactuals.of(p)
                seen += [utility.copy(), taken.copy()]
            seen.append(sim.state.multiplier.copy())
    finally:
        sim.close()
    return seen


@pytest.mark.parametrize("mechanism, bidders, segments", [
    ("first_price", 6, False),
    ("second_price", SCAN_DEDUP_MAX + 4, False),
    ("first_price", 5, True),
    ("all_pay", 6, False),
])
def test_two_threads_replay_exactly_as_one(mechanism, bidders, segments):
    raw = market(mechanism, bidders, segments)
    if mechanism == "all_pay":  # per-segment learners are refused in all-pay auctions
        assert not segments
    one, two = counterfactuals(raw, 1), counterfactuals(raw, 2)
    assert len(one) == len(two) == 3 * 5
    assert any(np.any(array != 0.0) for array in one[:4])  # something was replayed
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()

"""Click-through rates per segment and their prediction: clicks follow the true CTR, position auctions
rank and price by the predicted one, and prediction noise costs efficiency.

Tolerances: 4 standard errors. Click rates are binomial (se = sqrt(p (1 - p) / impressions));
efficiency is taken per round, and rounds are independent, so its se is the sample sd over
rounds / sqrt(rounds).
"""

import copy
import math

import numpy as np
import polars as pl
import pytest

import bidscape
from bidscape import Scenario
from bidscape.loop.simulation import Simulation

Z = 4.0


def position_market(noise=None, ctr=0.1, rounds=1, auctions=20_000, mechanism="vcg", populations=None):
    mech = {"type": mechanism, "slot_ctrs": [1.0, 0.6, 0.3]}
    if noise is not None:
        mech["ctr_prediction"] = {"noise": noise}
    return {
        "run": {"seed": 9, "rounds": rounds, "auctions_per_round": auctions, "record_agents": "none",
                "auction_sample_rate": 0.0},
        "mechanism": mech,
        "market": {"bidders_per_auction": 6},
        "traffic": {"segments": [{"name": "only", "share": 1.0, "ctr": ctr}]},
        "populations": populations or [
            {"name": "a", "size": 300, "strategy": "truthful", "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
             "quality": {"dist": "uniform", "low": 0.2, "high": 1.0}},
            {"name": "b", "size": 300, "strategy": "truthful", "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
             "quality": {"dist": "uniform", "low": 0.2, "high": 1.0}, "ctr_multiplier": 2.0},
        ],
    }


def test_clicks_happen_with_the_true_ctr_in_each_slot(tmp_path):
    """One population of quality 1: a filled slot k is clicked with probability ctr x slot_ctrs[k], noise or not."""
    one = [{"name": "a", "size": 300, "strategy": "truthful", "values": {"dist": "uniform", "low": 0.0, "high": 1.0}}]
    for noise in (None, 0.8):
        market = bidscape.run(Scenario.from_dict(position_market(noise, ctr=0.2, populations=one, auctions=40_000)),
                              out=tmp_path / str(noise)).market
        impressions = np.array(market["slot_impressions"][0])
        clicks = np.array(market["slot_clicks"][0])
        for k, slot_ctr in enumerate([1.0, 0.6, 0.3]):
            p = 0.2 * slot_ctr
            rate = clicks[k] / impressions[k]
            assert abs(rate - p) < Z * math.sqrt(p * (1 - p) / impressions[k]), (noise, k, rate, p)


def per_round_efficiency(noise, tmp_path) -> np.ndarray:
    scenario = Scenario.from_dict(position_market(noise, ctr=0.5, rounds=12, auctions=8_000))
    market = bidscape.run(scenario, out=tmp_path / f"noise-{noise}").market.sort("round")
    return (market["welfare"] / market["max_welfare"]).to_numpy()


def test_truthful_vcg_with_perfect_prediction_is_efficient_and_noise_costs_efficiency(tmp_path):
    perfect = per_round_efficiency(0.0, tmp_path)
    mean, se = perfect.mean(), perfect.std(ddof=1) / math.sqrt(perfect.size)
    assert abs(mean - 1.0) < Z * se, f"efficiency {mean:.4f} (se {se:.4f}) with perfect CTR prediction"
    previous = mean
    for noise in (0.5, 1.5):
        noisy = per_round_efficiency(noise, tmp_path)
        m, s = noisy.mean(), noisy.std(ddof=1) / math.sqrt(noisy.size)
        assert m + Z * math.hypot(s, se) < previous, f"noise {noise}: efficiency {m:.4f} not below {previous:.4f}"
        previous = m


def test_ctr_multiplier_raises_a_populations_click_rate(tmp_path):
    """Population b's CTR multiplier is 2: per impression of equal quality, twice a's clicks."""
    scenario = Scenario.from_dict(position_market(0.0, auctions=40_000, populations=[
        {"name": "a", "size": 300, "strategy": "truthful", "values": {"dist": "uniform", "low": 0.0, "high": 1.0}},
        {"name": "b", "size": 300, "strategy": "truthful", "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
         "ctr_multiplier": 2.0}]))
    populations = bidscape.run(scenario, out=tmp_path / "run").populations.sort("population")
    # clicks per win: slot mixes differ (b ranks higher), so compare with each population's own slot mix bound
    wins, clicks = populations["wins"].to_numpy(), populations["clicks"].to_numpy()
    rate_a, rate_b = clicks / wins
    assert 0.1 * 0.3 <= rate_a <= 0.1 and 0.2 * 0.3 <= rate_b <= 0.2
    assert rate_b > 1.5 * rate_a


def test_prediction_noise_is_reproducible_across_threads_and_batches(monkeypatch):
    from bidscape.engine import pipeline
    from bidscape.loop import simulation

    raw = position_market(0.7, rounds=2, auctions=12_000, mechanism="gsp")
    raw["populations"][0]["budget"] = {"dist": "uniform", "low": 1.0, "high": 2.0}
    raw["populations"][0]["strategy"] = "adaptive_pacing"

    def play(threads):
        sim = Simulation(Scenario.from_dict(copy.deepcopy(raw)), threads=threads)
        results = [(r.revenue, r.welfare, r.max_welfare, r.sold) for r in (sim.step(), sim.step())]
        return results, sim.state.remaining_budget.copy()

    one = play(1)
    monkeypatch.setattr(pipeline, "CHUNK", 1000)
    monkeypatch.setattr(simulation, "BATCH_AUCTIONS", 5000)
    two = play(2)
    assert one[0] == two[0] and np.array_equal(one[1], two[1])


def test_without_ctr_fields_segments_run_as_before(tmp_path):
    """A position market with a segment but no CTR fields clicks with quality x slot_ctrs, as without segments."""
    plain = position_market(None, ctr=None)
    del plain["traffic"]["segments"][0]["ctr"]
    for population in plain["populations"]:
        population.pop("ctr_multiplier", None)
    with_segment = bidscape.run(Scenario.from_dict(copy.deepcopy(plain)), out=tmp_path / "segment").market
    del plain["traffic"]
    without = bidscape.run(Scenario.from_dict(plain), out=tmp_path / "plain").market
    # different draws (a segment order and common value stream exist), same model: slot click rates agree
    for market in (with_segment, without):
        assert market["clicks"][0] > 0
    a = np.array(with_segment["slot_clicks"][0]) / np.array(with_segment["slot_impressions"][0])
    b = np.array(without["slot_clicks"][0]) / np.array(without["slot_impressions"][0])
    assert np.allclose(a, b, atol=0.02)

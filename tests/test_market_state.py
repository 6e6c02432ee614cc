"""The market state's layout: multipliers live in the bid rows, and the outcome state has a clicks
column only while some channel runs a position auction (an event may add it mid-run)."""

import numpy as np
import polars as pl

import bidscape
from bidscape import Scenario
from bidscape.engine.kernel import MULTIPLIER, OUTCOME_COLUMNS
from bidscape.loop.simulation import Simulation

UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}


def market(mechanism="second_price", events=(), strategy="constant_shade", params=None):
    return {"run": {"seed": 1, "rounds": 4, "auctions_per_round": 2_000, "record_agents": "agent"},
            "mechanism": {"type": mechanism} | ({"slot_ctrs": [0.5, 0.3]} if mechanism == "gsp" else {}),
            "market": {"bidders_per_auction": 4}, "events": list(events),
            "populations": [{"name": "p", "size": 200, "strategy": strategy, "values": UNIFORM,
                             "value_scale": {"dist": "uniform", "low": 0.5, "high": 2.0},
                             "params": params or {"multiplier": 0.7}}]}


def test_strategies_write_the_multiplier_column_of_the_bid_rows(tmp_path):
    sim = Simulation(Scenario.from_dict(market()), threads=1)
    sim.step()
    view = sim.strategies[0].agents.multiplier
    assert np.shares_memory(view, sim.state.bid_state)
    np.testing.assert_array_equal(sim.state.bid_state[:, MULTIPLIER], 0.7)
    # a bid is multiplier x value scale x value: with a value of 1, a first-price winner pays 0.7 x its
    # value scale and wins its value scale, so every agent's spend is 0.7 x its value won
    raw = market("first_price")
    raw["populations"][0]["values"] = {"dist": "constant", "value": 1.0}
    agents = bidscape.run(Scenario.from_dict(raw), out=tmp_path / "run").agents.filter(pl.col("wins") > 0)
    assert agents.height > 50
    np.testing.assert_allclose(agents["spend"], 0.7 * agents["value"], rtol=1e-12)


def test_no_clicks_column_without_position_auctions_until_an_event_adds_one(tmp_path):
    switch = {"at_round": 2, "set": {"mechanism.type": "gsp", "mechanism.slot_ctrs": [0.5, 0.3]}}
    sim = Simulation(Scenario.from_dict(market(events=[switch])), threads=1)
    assert sim.state.channel_outcomes.shape[2] == OUTCOME_COLUMNS - 1
    assert not sim.state.clicks.any()
    sim.step(), sim.step()
    sim.step()
    assert sim.state.channel_outcomes.shape[2] == OUTCOME_COLUMNS
    assert sim.state.clicks.sum() > 0
    run = bidscape.run(Scenario.from_dict(market(events=[switch])), out=tmp_path / "run")
    clicks = run.market.sort("round")["clicks"].to_list()
    assert clicks[:2] == [None, None] and all(c > 0 for c in clicks[2:])
    per_round = run.agents.group_by("round").agg(pl.col("clicks").sum(), pl.col("clicks").null_count().alias("n"))
    assert per_round.sort("round")["n"].to_list()[:2] == [200, 200]  # null before the switch


def test_position_auctions_have_the_clicks_column_from_the_start():
    sim = Simulation(Scenario.from_dict(market("gsp")), threads=1)
    assert sim.state.channel_outcomes.shape[2] == OUTCOME_COLUMNS

"""The market state's layout: multipliers live in the bid rows, and the outcome state has a clicks
column only while some channel runs a position auction (an event may add it mid-run)."""

import numpy as np
import polars as pl

import bidscape
from bidscape import Scenario
from bidscape.bidders import STRATEGIES
from bidscape.engine.kernel import MULTIPLIER, OUTCOME_COLUMNS
from bidscape.engine.modifiers import NO_MODIFIERS, BidModifiers, Modifier, coordinate, modified_bid, own_reserve
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


def test_bid_modifiers_exist_only_where_a_scenario_uses_them():
    """Every per-auction bid modifier travels in one structure; a market that uses none passes an
    all-None structure, which the kernels compile to the plain bid (the golden test holds the bytes)."""
    plain = Simulation(Scenario.from_dict(market()), threads=1)
    assert plain.state.kernel_market(0).modifiers == NO_MODIFIERS

    raw = market()
    raw["populations"][0]["budget"] = {"dist": "uniform", "low": 5.0, "high": 10.0}
    raw["populations"] += [{"name": "t", "size": 100, "strategy": "throttling", "values": UNIFORM,
                            "budget": {"dist": "constant", "value": 5.0}, "reserve": UNIFORM}]
    throttled = Simulation(Scenario.from_dict(raw), threads=1)
    mods = throttled.state.kernel_market(0).modifiers
    assert mods.participation is throttled.state.participation and mods.personal is throttled.state.reserve
    assert mods.cap is None and mods.group is None and mods.segments is None
    assert Modifier.PARTICIPATION in STRATEGIES.get("throttling").modifiers
    assert throttled.strategies[1].agents.participation is not None
    assert mods.replayed() == BidModifiers(personal=mods.personal, participation=mods.participation)


def test_bid_modifiers_apply_in_order_cap_then_personal_reserve_then_throttle():
    cap, personal, participation = np.array([0.5, 2.0]), np.array([0.6, 0.0]), np.array([1.0, 0.0])
    key = np.uint64(12345)
    assert modified_bid(NO_MODIFIERS, 0, 1.0, key) == 1.0
    assert modified_bid(BidModifiers(cap=cap), 0, 1.0, key) == 0.5  # the channel budget bounds the bid
    assert modified_bid(BidModifiers(personal=personal), 0, 1.0, key) == 1.0
    assert modified_bid(BidModifiers(cap=cap, personal=personal), 0, 1.0, key) == 0.0  # 0.5 < reserve 0.6
    assert modified_bid(BidModifiers(participation=participation), 0, 1.0, key) == 1.0  # p = 1: always in
    assert modified_bid(BidModifiers(participation=participation), 1, 1.0, key) == 0.0  # p = 0: never
    assert own_reserve(BidModifiers(personal=personal), 0) == 0.6 and own_reserve(NO_MODIFIERS, 0) == 0.0
    bids = np.array([0.3, 0.9, 0.9, 0.4])
    coordinate(BidModifiers(group=np.array([0, 0, 0, -1])), np.arange(4), 0, 4, bids)
    np.testing.assert_array_equal(bids, [0.0, 0.9, 0.0, 0.4])  # the group's highest, earliest among ties

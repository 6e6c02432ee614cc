"""The jitted kernels equal the plain-Python reference exactly, on random small instances."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidscape.engine import kernel
from bidscape.engine.reference import reference_round, reference_totals
from bidscape.engine.rng import (auction_key, draw_u64, mix64, py_auction_key, py_draw_u64, py_mix64,
                                 py_round_key, round_key)
from bidscape.markets.distributions import Constant, LogNormal, Uniform
from bidscape.mechanisms import MECHANISMS

DISTRIBUTIONS = st.one_of(
    st.builds(lambda v: Constant(dist="constant", value=v), st.sampled_from([0.0, 0.5, 1.0])),
    st.builds(lambda lo, w: Uniform(dist="uniform", low=lo, high=lo + w),
              st.floats(0, 2), st.floats(0, 2)),
    st.builds(lambda m, s: LogNormal(dist="lognormal", mean=m, sigma=s),
              st.floats(-1, 1), st.floats(0, 1.5)),
)
BID_FACTORS = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 3))
BUDGETS = st.one_of(st.sampled_from([0.0, math.inf]), st.floats(0, 5))


@st.composite
def instances(draw):
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    n_agents = sum(sizes)
    return {
        "mechanism": draw(st.sampled_from(["first_price", "second_price"])),
        "run_key": draw(st.integers(0, 2**64 - 1)),
        "round": draw(st.integers(0, 50)),
        "first_auction": draw(st.integers(0, 10**6)),
        "n_auctions": draw(st.integers(1, 60)),
        "bidders": draw(st.one_of(st.just("all"), st.integers(1, n_agents))),
        "population_start": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        "tables": np.stack([draw(DISTRIBUTIONS).quantile_table(64) for _ in sizes]),
        "bid_factor": np.array(draw(st.lists(BID_FACTORS, min_size=n_agents, max_size=n_agents))),
        "budget": np.array(draw(st.lists(BUDGETS, min_size=n_agents, max_size=n_agents))),
        "value_scale": np.array(draw(st.lists(st.floats(0, 3), min_size=n_agents, max_size=n_agents))),
        "reserve": draw(st.one_of(st.sampled_from([0.0, 0.5]), st.floats(0, 3))),
    }


def run_kernel(case):
    n = case["n_auctions"]
    n_agents = case["bid_factor"].shape[0]
    bid_state = np.stack([case["bid_factor"], case["budget"]], axis=1)
    out = (np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    mechanism = MECHANISMS.get(case["mechanism"])
    key = np.uint64(round_key(np.uint64(case["run_key"]), case["round"]))
    if case["bidders"] == "all":
        kernel.clear_all(*mechanism.price_weights, key, case["first_auction"], n, bid_state,
                         case["population_start"], case["tables"], case["reserve"], *out)
    else:
        marked = np.zeros(n_agents, np.uint8)
        kernel.clear_sampled(*mechanism.price_weights, key, case["first_auction"], n, case["bidders"], bid_state,
                             case["population_start"], case["tables"], case["reserve"], marked, *out)
        assert not marked.any(), "the dedup marks must be cleared after each auction"
    outcome_state = np.zeros((n_agents, 4))
    outcome_state[:, kernel.VALUE_SCALE] = case["value_scale"]
    totals = kernel.accumulate_outcomes(out[0], out[1], out[4], outcome_state, 0, 0.0, 0.0)
    return out, bid_state[:, kernel.REMAINING], outcome_state, totals


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_kernel_equals_reference(case):
    out, remaining, outcome_state, totals = run_kernel(case)
    reference_remaining = list(case["budget"])
    outcomes = reference_round(
        MECHANISMS.get(case["mechanism"]), case["run_key"], case["round"], case["first_auction"],
        case["n_auctions"], case["bidders"], list(case["bid_factor"]), reference_remaining,
        list(case["population_start"]), [list(t) for t in case["tables"]], case["reserve"])
    winner, price, top_bid, second_bid, winner_value = out
    assert winner.tolist() == [o.winner for o in outcomes]
    assert price.tolist() == [o.price for o in outcomes]
    assert top_bid.tolist() == [o.top_bid for o in outcomes]
    assert second_bid.tolist() == [o.second_bid for o in outcomes]
    assert winner_value.tolist() == [o.winner_value for o in outcomes]
    assert remaining.tolist() == reference_remaining
    spend, wins, value, market = reference_totals(outcomes, list(case["value_scale"]), len(remaining))
    assert outcome_state[:, kernel.SPEND].tolist() == spend
    assert outcome_state[:, kernel.WINS].tolist() == wins
    assert outcome_state[:, kernel.VALUE].tolist() == value
    assert totals == market
    # budget feasibility, auction by auction
    assert np.all(remaining >= 0)
    assert np.all(price <= top_bid)


def test_many_bidders_use_the_mark_path_and_match_reference():
    """Above SCAN_DEDUP_MAX bidders, duplicates are found with marks; same draws as the scan."""
    n_agents, bidders = 40, kernel.SCAN_DEDUP_MAX + 9
    rng = np.random.default_rng(3)
    case = {
        "mechanism": "second_price", "run_key": 99, "round": 1, "first_auction": 0, "n_auctions": 50,
        "bidders": bidders, "population_start": np.array([0, n_agents], np.int64),
        "tables": Uniform(dist="uniform", low=0, high=1).quantile_table(64)[None, :],
        "bid_factor": rng.uniform(0, 1, n_agents), "budget": rng.uniform(0, 2, n_agents),
        "value_scale": np.ones(n_agents), "reserve": 0.1,
    }
    out, remaining, _, _ = run_kernel(case)
    reference_remaining = list(case["budget"])
    outcomes = reference_round(MECHANISMS.get("second_price"), 99, 1, 0, 50, bidders, list(case["bid_factor"]),
                               reference_remaining, [0, n_agents], [list(case["tables"][0])], 0.1)
    assert out[0].tolist() == [o.winner for o in outcomes]
    assert remaining.tolist() == reference_remaining


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.integers(0, 3), st.integers(0, 10**6))
@settings(max_examples=200, deadline=None)
def test_hash_twins_agree(key, auction, stream, index):
    assert int(mix64(np.uint64(key))) == py_mix64(key)
    k = py_auction_key(py_round_key(key, 7), auction)
    assert int(auction_key(np.uint64(round_key(np.uint64(key), 7)), auction)) == k
    assert int(draw_u64(np.uint64(k), stream, index)) == py_draw_u64(k, stream, index)


def test_ties_are_broken_uniformly_at_random():
    """Equal bids: each tied bidder wins about 1/n of the time, in both participation modes."""
    n_agents, n = 4, 40_000
    for bidders in ("all", 4):
        case = {
            "mechanism": "second_price", "run_key": 5, "round": 0, "first_auction": 0, "n_auctions": n,
            "bidders": bidders, "population_start": np.array([0, n_agents], np.int64),
            "tables": Constant(dist="constant", value=1.0).quantile_table(8)[None, :],
            "bid_factor": np.ones(n_agents), "budget": np.full(n_agents, np.inf),
            "value_scale": np.ones(n_agents), "reserve": 0.0,
        }
        winner = run_kernel(case)[0][0]
        share = np.bincount(winner, minlength=n_agents) / n
        standard_error = math.sqrt(0.25 * 0.75 / n)
        assert np.all(np.abs(share - 0.25) < 4 * standard_error), (bidders, share)


@pytest.mark.parametrize("name", ["first_price", "second_price"])
def test_price_rules_match_their_reference(name):
    mechanism = MECHANISMS.get(name)
    rng = np.random.default_rng(0)
    for top, second, reserve in rng.uniform(0, 2, (200, 3)):
        second = min(second, top)
        if top < reserve:
            continue
        top_weight, second_weight = mechanism.price_weights
        fast = max(top_weight * top + second_weight * second, reserve)
        assert fast == mechanism.reference_price(top, second, reserve)
        assert 0 <= fast <= top

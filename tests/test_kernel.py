"""The jitted kernels equal the plain-Python reference exactly, on random small instances.

``bidscape.check_mechanism`` generates the instances (populations, channels, budgets,
quality scores, personal reserves, channel budgets, floors, slots, pricing) and checks
the shared invariants; here it runs over every registered mechanism, which is how CI
holds each of them to the reference.
"""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bidscape
from bidscape.engine import draws, kernel, rng
from bidscape.engine.rng import (auction_key, draw_u64, mix64, py_auction_key, py_draw_u64, py_mix64,
                                 py_round_key, round_key)
from bidscape.markets.distributions import Constant, Uniform
from bidscape.games.double_auction import call_market, continuous
from bidscape.mechanisms import MECHANISMS, MechanismSettings, PositionAuction, SingleItemAuction
from bidscape.mechanisms import gsp
from bidscape.mechanisms.conformance import Instance, check_instance, run_kernel, run_reference


@pytest.mark.parametrize("name", list(MECHANISMS))
def test_every_registered_mechanism_passes_check_mechanism(name):
    bidscape.check_mechanism(name, instances=300, seed=1).raise_for_failures()


def test_check_mechanism_catches_broken_rules():
    lying = SingleItemAuction(name="lying", summary="", top_weight=0.0, second_weight=1.0,
                              reference_price=lambda top, second, third: top)
    assert not bidscape.check_mechanism(lying, instances=20).ok
    off_by_a_bit = PositionAuction(name="off", summary="", vcg=False,
                                   reference_price_per_click=lambda *a: gsp._reference(*a) * (1 + 1e-9))
    assert not bidscape.check_mechanism(off_by_a_bit, instances=20).ok
    with pytest.raises(ValueError, match="sum to at most 1"):
        SingleItemAuction(name="greedy", summary="", top_weight=1.0, second_weight=0.5,
                          reference_price=lambda *a: 0.0)


def one_population(n_agents, bidders, value=None, n=50, reserve=0.0, budget=math.inf, rng=None):
    rng = rng or np.random.default_rng(3)
    bid_state = np.zeros((n_agents, kernel.BID_COLUMNS))
    bid_state[:, kernel.MULTIPLIER] = rng.uniform(0, 1, n_agents) if value is None else 1.0
    bid_state[:, kernel.REMAINING] = budget if value is not None else rng.uniform(0, 2, n_agents)
    bid_state[:, kernel.QUALITY] = 1.0
    table = (Uniform(dist="uniform", low=0, high=1) if value is None
             else Constant(dist="constant", value=value)).quantile_table(64)
    return Instance(MechanismSettings(reserve=reserve), bidders, np.array([[0, n_agents, 0]], np.int64),
                    bid_state, None, np.ones(n_agents), table[None, :], 99, 0, n)


def test_many_bidders_use_the_mark_path_and_match_reference():
    """Above SCAN_DEDUP_MAX bidders, duplicates are found with marks; same draws as the scan."""
    instance = one_population(40, draws.SCAN_DEDUP_MAX + 9, reserve=0.1)
    for name in ("second_price", "gsp"):
        assert check_instance(MECHANISMS.get(name), instance) == []


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**40), st.integers(0, rng.STREAMS - 1), st.integers(0, 10**6))
@settings(max_examples=200, deadline=None)
def test_hash_twins_agree(key, auction, stream, index):
    assert int(mix64(np.uint64(key))) == py_mix64(key)
    k = py_auction_key(py_round_key(key, 7), auction)
    assert int(auction_key(np.uint64(round_key(np.uint64(key), 7)), auction)) == k
    assert int(draw_u64(np.uint64(k), stream, index)) == py_draw_u64(k, stream, index)


def registered_streams() -> dict[str, int]:
    """Every ``STREAM_*`` constant of the modules that draw from the hash, by qualified name."""
    return {f"{m.__name__}.{name}": value for m in (rng, continuous, call_market)
            for name, value in vars(m).items() if name.startswith("STREAM_")}


def assert_no_shared_draw(streams, key: int) -> None:
    """No two (stream, index) pairs give the same draw, in the jitted hash or its Python twin."""
    indices = list(range(2048)) + [2**61 - 1 - i for i in range(4)]  # the largest indices too
    seen: dict[int, tuple[int, int]] = {}
    for stream in sorted(set(streams)):
        for index in indices:
            z = py_draw_u64(key, stream, index)
            assert int(draw_u64(np.uint64(key), stream, index)) == z
            assert seen.setdefault(z, (stream, index)) == (stream, index), \
                f"stream {stream} index {index} draws the number of stream/index {seen[z]}"


@pytest.mark.parametrize("key", [0, 99, 2**64 - 1])
def test_random_streams_never_share_a_draw(key):
    """Each stream is its own sequence: the throttle draw of agent a is not the participant draw
    of attempt a + 1 (as it was with counter = 4 * index + stream and STREAM_THROTTLE = 4)."""
    streams = registered_streams()
    assert {"bidscape.engine.rng.STREAM_THROTTLE", "bidscape.engine.rng.STREAM_PARTICIPANT"} <= set(streams)
    assert_no_shared_draw(streams.values(), key)
    # by construction: every stream the counter layout has room for is disjoint from the others
    assert all(0 <= s < rng.STREAMS for s in streams.values()), streams
    assert_no_shared_draw(range(rng.STREAMS), key)


@pytest.mark.parametrize("name", ["second_price", "gsp"])
@pytest.mark.parametrize("bidders", ["all", 4])
def test_ties_are_broken_uniformly_at_random(name, bidders):
    """Equal bids: each tied bidder wins (the top slot) about 1/n of the time."""
    n_agents, n = 4, 40_000
    instance = one_population(n_agents, bidders, value=1.0, n=n)
    winner = np.array(run_kernel(MECHANISMS.get(name), instance).winner)[:, 0]
    share = np.bincount(winner, minlength=n_agents) / n
    standard_error = math.sqrt(0.25 * 0.75 / n)
    assert np.all(np.abs(share - 0.25) < 4 * standard_error), share


@pytest.mark.parametrize("name", ["first_price", "second_price", "third_price", "all_pay"])
def test_single_item_price_rules_match_their_reference(name):
    mechanism = MECHANISMS.get(name)
    rng = np.random.default_rng(0)
    for bids in rng.uniform(0, 2, (200, 3)):
        top, second, third = sorted(bids, reverse=True)
        fast = float(kernel.single_price(mechanism.rule(MechanismSettings()), top, second, third, 0.0))
        assert fast == mechanism.reference_price(top, second, third)
        assert 0 <= fast <= top


def test_soft_floor_charges_own_bid_between_the_floors():
    """Hard floor 0.2, soft floor 0.6: a top bid of 0.5 pays 0.5; a top bid of 0.9 pays max(second, 0.6)."""
    rule = MECHANISMS.get("second_price").rule(MechanismSettings(reserve=0.2, soft_floor=0.6))
    assert kernel.single_price(rule, 0.5, 0.3, 0.0, 0.0) == 0.5
    assert kernel.single_price(rule, 0.9, 0.3, 0.0, 0.0) == 0.6
    assert kernel.single_price(rule, 0.9, 0.7, 0.0, 0.0) == 0.7
    assert kernel.single_price(rule, 0.9, 0.3, 0.0, 0.8) == 0.8  # a personal reserve above both


def test_personal_reserves_exclude_low_bids_and_set_the_winners_floor():
    instance = one_population(6, "all", value=1.0, n=30)
    instance.bid_state[:, kernel.MULTIPLIER] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    instance.reserve = np.array([0.95, 0.0, 0.75, 0.0, 0.0, 0.0])  # agent 0 cannot win
    result = run_kernel(MECHANISMS.get("second_price"), instance)
    assert {w[0] for w in result.winner} == {1}
    assert {p[0] for p in result.price} == {0.6}  # agent 2's bid 0.7 is below its reserve: out
    instance.reserve[1] = 0.7
    assert {p[0] for p in run_kernel(MECHANISMS.get("second_price"), instance).price} == {0.7}
    assert check_instance(MECHANISMS.get("second_price"), instance) == []


def test_channel_budget_caps_spend_in_the_channel():
    instance = replace(one_population(5, 3, value=1.0, n=200, budget=10.0), cap=np.full(5, 0.5))
    result = run_kernel(MECHANISMS.get("first_price"), instance)
    assert max(result.spend) <= 0.5 + 1e-12
    assert min(result.cap) >= 0 and all(r >= 9.5 - 1e-12 for r in result.remaining)
    assert result == run_reference(MECHANISMS.get("first_price"), instance)


def test_check_mechanism_catches_an_inefficient_vcg_under_capped_clicks(monkeypatch):
    """With the capped path off, VCG ranks by bid x quality (as it once did under quality x ctr > 1):
    check_mechanism's instances reach such qualities, and its efficiency invariant reports the waste."""
    monkeypatch.setattr(PositionAuction, "_capped_workspace", lambda self, *args: None)
    failures = bidscape.check_mechanism("vcg", instances=60).failures
    assert any("VCG assignment" in f and "the best assignment" in f for f in failures)

"""The jitted round kernels for single-item auctions with exact budgets.

State layout (struct of arrays, one row per agent, agents of all populations concatenated):

- ``bid_state[A, 2]``: ``[bid_factor, remaining_budget]``, the only state the clearing loop
  reads per bid (16 bytes, one cache line), with ``bid_factor = multiplier * value_scale``.
- ``outcome_state[A, 4]``: ``[value_scale, spend, wins, value]`` of the current round,
  touched only for winners, in a second pass.

A bid is ``min(bid_factor * v, remaining_budget)`` where ``v`` is the bidder's base value
for the auction (drawn from its population's quantile table); its value is
``value_scale * v``. Auctions are cleared one by one in arrival order, and the winner's
remaining budget is charged before the next auction, so no bid exceeds the remaining
budget and no bidder spends more than its budget (exact mode).

Single-item mechanisms meet the kernel as two price weights: the winner pays
``max(top_weight * top_bid + second_weight * second_bid, reserve)``, with weights >= 0
summing to at most 1 so that no price exceeds the winning bid (first price: 1, 0; second
price: 0, 1). Plain numbers rather than a compiled callback: a function-pointer call
per auction measured 30% slower here (it stops LLVM keeping the loop's state in
registers), and numba cannot cache a kernel specialised on a Python function.

Ties: with sampled participants, the highest bid in the lowest slot wins. Slots hold a
uniformly random ordering of the drawn participants (and their values are i.i.d.
across slots), so this is a uniform random tie-break. With ``all`` agents taking part,
each tied bidder gets a hashed random priority and the highest priority wins.
"""

from __future__ import annotations

import numpy as np
from numba import int64, njit

from bidscape.engine.prefetch import prefetch_row
from bidscape.engine.rng import (
    STREAM_PARTICIPANT,
    STREAM_SAMPLE,
    STREAM_TIE,
    STREAM_VALUE,
    auction_key,
    draw_u64,
    to_unit,
)

BID_FACTOR, REMAINING = 0, 1
VALUE_SCALE, SPEND, WINS, VALUE = 0, 1, 2, 3

LOOKAHEAD = 8  # auctions drawn (and prefetched) ahead of the one being cleared
RING = 16  # slots of the participant ring buffer, > LOOKAHEAD
SCAN_DEDUP_MAX = 16  # above this many bidders, duplicates are found with a mark array


@njit(cache=True, inline="always")
def population_of(agent, population_start):
    p = 0
    for q in range(1, population_start.shape[0] - 1):
        p += agent >= population_start[q]
    return p


@njit(cache=True, inline="always")
def draw_value(key_of_auction, slot, population, value_tables):
    intervals = value_tables.shape[1] - 1
    x = to_unit(draw_u64(key_of_auction, STREAM_VALUE, slot)) * intervals
    k = int64(x)
    low = value_tables[population, k]
    return low + (x - k) * (value_tables[population, k + 1] - low)


@njit(cache=True, inline="always")
def _draw_participants(key_of_auction, n_agents, bidders, ring, offset, marked, bid_state):
    """Fill ``ring[offset:offset+bidders]`` with distinct agents and prefetch their rows.

    Slot ``j`` tries draws ``j, j + bidders, j + 2 * bidders, ...`` of the participant
    stream until it hits an agent not yet in the auction.
    """
    use_marks = bidders > SCAN_DEDUP_MAX
    for j in range(bidders):
        attempt = j
        while True:
            agent = int64(to_unit(draw_u64(key_of_auction, STREAM_PARTICIPANT, attempt)) * n_agents)
            if use_marks:
                duplicate = marked[agent] != 0
            else:
                duplicate = False
                for q in range(j):
                    duplicate |= ring[offset + q] == agent
            if not duplicate:
                break
            attempt += bidders
        ring[offset + j] = agent
        if use_marks:
            marked[agent] = 1
        prefetch_row(bid_state, agent)
    if use_marks:
        for j in range(bidders):
            marked[ring[offset + j]] = 0


@njit(cache=True, inline="always")
def _settle(top_weight, second_weight, r, agent, top, second, winner_base_value, reserve, bid_state,
            winner, price, top_bid, second_bid, winner_value):
    top_bid[r] = top
    second_bid[r] = second
    if agent >= 0 and top >= reserve:
        paid = max(top_weight * top + second_weight * second, reserve)
        bid_state[agent, REMAINING] -= paid
        winner[r] = agent
        price[r] = paid
        winner_value[r] = winner_base_value
    else:
        winner[r] = -1
        price[r] = 0.0
        winner_value[r] = 0.0


@njit(cache=True)
def clear_sampled(top_weight, second_weight, key_of_round, first_auction, n_auctions, bidders, bid_state,
                  population_start, value_tables, reserve, marked,
                  winner, price, top_bid, second_bid, winner_value):
    """Clear ``n_auctions`` auctions with ``bidders`` participants drawn uniformly each."""
    n_agents = bid_state.shape[0]
    ring = np.empty(RING * bidders, np.int64)
    for r in range(min(LOOKAHEAD, n_auctions)):
        _draw_participants(auction_key(key_of_round, first_auction + r), n_agents, bidders,
                           ring, (r % RING) * bidders, marked, bid_state)
    for r in range(n_auctions):
        ahead = r + LOOKAHEAD
        if ahead < n_auctions:
            _draw_participants(auction_key(key_of_round, first_auction + ahead), n_agents,
                               bidders, ring, (ahead % RING) * bidders, marked, bid_state)
        key = auction_key(key_of_round, first_auction + r)
        offset = (r % RING) * bidders
        top = 0.0
        second = 0.0
        best = -1
        best_value = 0.0
        for j in range(bidders):
            agent = ring[offset + j]
            v = draw_value(key, j, population_of(agent, population_start), value_tables)
            bid = min(bid_state[agent, BID_FACTOR] * v, bid_state[agent, REMAINING])
            # branchless top two: a tie with the top bid keeps the earlier slot
            higher = bid > top
            second = max(second, min(bid, top))
            best = j if higher else best
            best_value = v if higher else best_value
            top = max(top, bid)
        agent = ring[offset + best] if best >= 0 else -1
        _settle(top_weight, second_weight, r, agent, top, second, best_value, reserve, bid_state,
                winner, price, top_bid, second_bid, winner_value)


@njit(cache=True)
def clear_all(top_weight, second_weight, key_of_round, first_auction, n_auctions, bid_state,
              population_start, value_tables, reserve,
              winner, price, top_bid, second_bid, winner_value):
    """Clear ``n_auctions`` auctions in which every agent bids (slot = agent index)."""
    n_populations = population_start.shape[0] - 1
    for r in range(n_auctions):
        key = auction_key(key_of_round, first_auction + r)
        top = 0.0
        second = 0.0
        best = -1
        best_value = 0.0
        for p in range(n_populations):
            for agent in range(population_start[p], population_start[p + 1]):
                v = draw_value(key, agent, p, value_tables)
                bid = min(bid_state[agent, BID_FACTOR] * v, bid_state[agent, REMAINING])
                if bid > top:
                    second = top
                    top = bid
                    best = agent
                    best_value = v
                elif bid == top and bid > 0.0:
                    second = bid
                    if draw_u64(key, STREAM_TIE, agent) > draw_u64(key, STREAM_TIE, best):
                        best = agent
                        best_value = v
                elif bid > second:
                    second = bid
        _settle(top_weight, second_weight, r, best, top, second, best_value, reserve, bid_state,
                winner, price, top_bid, second_bid, winner_value)


@njit(cache=True)
def accumulate_outcomes(winner, price, winner_value, outcome_state, sold, revenue, welfare):
    """Add each sold auction to its winner's round totals and to the running market totals.

    Returns the updated ``(sold, revenue, welfare)``. Sums run in auction order across
    batches, so the totals do not depend on the batch size.
    """
    n = winner.shape[0]
    for r in range(n):
        if r + LOOKAHEAD < n and winner[r + LOOKAHEAD] >= 0:
            prefetch_row(outcome_state, winner[r + LOOKAHEAD])
        agent = winner[r]
        if agent >= 0:
            value = outcome_state[agent, VALUE_SCALE] * winner_value[r]
            outcome_state[agent, SPEND] += price[r]
            outcome_state[agent, WINS] += 1.0
            outcome_state[agent, VALUE] += value
            sold += 1
            revenue += price[r]
            welfare += value
    return sold, revenue, welfare


@njit(cache=True)
def sampled_auctions(key_of_round, first_auction, n_auctions, rate):
    """Indices (within the batch) of the auctions kept in the auction sample."""
    keep = np.empty(n_auctions, np.int64)
    n_kept = 0
    for r in range(n_auctions):
        key = auction_key(key_of_round, first_auction + r)
        if to_unit(draw_u64(key, STREAM_SAMPLE, 0)) < rate:
            keep[n_kept] = r
            n_kept += 1
    return keep[:n_kept]

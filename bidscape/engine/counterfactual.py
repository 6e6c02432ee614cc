"""Full-information feedback: what each learner would have got with every multiplier of its grid.

After a batch of single-item auctions is cleared, these kernels replay its auctions
(participants and values are hashes, so they come out the same) and, for every agent of
a learning population, add to ``utility[row, k]`` the utility it would have had in
that auction bidding ``grid[k] x value``, the other bids held fixed. The highest
competing bid is read off the cleared auction: the second bid if the agent won, the top
bid otherwise (when the auction went unsold both are below the reserve, and either gives
the same price). Its counterfactual bid wins when it is above that bid and at least the
reserve and its own reserve, and pays the mechanism's price (``single_price``: first or
second price, reserves, soft floors; all-pay bidders pay their bid win or lose).

Approximations, stated: a counterfactual bid is capped by the budget left at the end
of the batch rather than at the auction's time, and ties count as losses. Mechanisms
whose price depends on the third bid, and position auctions, are not replayed (the
engine then gives no counterfactuals, and regret is not recorded).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.kernel import (
    LOOKAHEAD,
    RESERVE,
    REMAINING,
    RING,
    RULE_RESERVE,
    draw_participants,
    draw_value,
    eligible_agents,
    single_price,
    takes_part,
)
from bidscape.engine.rng import auction_key


@njit(cache=True, inline="always")
def _add(rule, all_pay, agent, row, grid, arms, value, competing, bid_state, utility, taken):
    remaining = bid_state[agent, REMAINING]
    own_reserve = bid_state[agent, RESERVE]
    floor = max(rule[RULE_RESERVE], own_reserve)
    taken[row] += 1.0
    for k in range(arms):
        bid = min(grid[k] * value, remaining)
        if bid > competing and bid > 0.0 and bid >= floor:
            utility[row, k] += value - single_price(rule, bid, competing, 0.0, own_reserve)
        elif all_pay and bid > 0.0 and bid >= rule[RULE_RESERVE]:
            utility[row, k] -= bid


@njit(cache=True)
def counterfactual_sampled(rule, all_pay, key_of_round, first_auction, n_auctions, bidders, ranges, bid_state,
                           value_tables, marked, winner, top_bid, second_bid, value_scale, row_base, grid_of,
                           grids, arms, utility, taken, participation):
    """Replay a batch of sampled-bidder auctions for the agents of learning populations.

    Agent ``a`` of population ``p`` with ``grid_of[p] = g >= 0`` adds to row
    ``a - row_base[p]`` of ``utility`` (``float64[rows, K]``) the counterfactual utility
    of ``grids[g, :arms[g]]``, and 1 to ``taken`` (auctions it took part in).
    """
    n_eligible = eligible_agents(ranges)
    ring = np.empty(RING * bidders, np.int64)
    ring_population = np.empty(RING * bidders, np.int64)
    for r in range(min(LOOKAHEAD, n_auctions)):
        draw_participants(auction_key(key_of_round, first_auction + r), n_eligible, ranges, bidders,
                          ring, ring_population, (r % RING) * bidders, marked, bid_state)
    for r in range(n_auctions):
        ahead = r + LOOKAHEAD
        if ahead < n_auctions:
            draw_participants(auction_key(key_of_round, first_auction + ahead), n_eligible, ranges,
                              bidders, ring, ring_population, (ahead % RING) * bidders, marked, bid_state)
        key = auction_key(key_of_round, first_auction + r)
        offset = (r % RING) * bidders
        for j in range(bidders):
            p = ring_population[offset + j]
            g = grid_of[p]
            if g < 0:
                continue
            agent = ring[offset + j]
            if participation is not None and not takes_part(key, agent, participation):
                continue
            value = value_scale[agent] * draw_value(key, j, p, value_tables)
            competing = second_bid[r] if winner[r] == agent else top_bid[r]
            _add(rule, all_pay, agent, agent - row_base[p], grids[g], arms[g], value, competing, bid_state,
                 utility, taken)


@njit(cache=True)
def counterfactual_all(rule, all_pay, key_of_round, first_auction, n_auctions, ranges, bid_state, value_tables,
                       winner, top_bid, second_bid, value_scale, row_base, grid_of, grids, arms, utility, taken,
                       participation):
    """As ``counterfactual_sampled``, for auctions in which every agent of ``ranges`` bids."""
    for r in range(n_auctions):
        key = auction_key(key_of_round, first_auction + r)
        for q in range(ranges.shape[0]):
            p = ranges[q, 2]
            g = grid_of[p]
            if g < 0:
                continue
            for agent in range(ranges[q, 0], ranges[q, 0] + ranges[q, 1]):
                if participation is not None and not takes_part(key, agent, participation):
                    continue
                value = value_scale[agent] * draw_value(key, agent, p, value_tables)
                competing = second_bid[r] if winner[r] == agent else top_bid[r]
                _add(rule, all_pay, agent, agent - row_base[p], grids[g], arms[g], value, competing, bid_state,
                     utility, taken)

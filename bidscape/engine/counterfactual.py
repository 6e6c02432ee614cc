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

from bidscape.engine.draws import LOOKAHEAD, RING, draw_participants, draw_value, eligible_agents
from bidscape.engine.kernel import REMAINING, RULE_RESERVE, RULE_SOFT_FLOOR, SCALE, SECOND_W, TOP_W, takes_part
from bidscape.engine.prefetch import prefetch_item, prefetch_row
from bidscape.engine.rng import auction_key


@njit(cache=True, inline="always")
def _add(rule, all_pay, agent, row, grid, arms, value, competing, bid_state, personal, utility, taken):
    remaining = bid_state[agent, REMAINING]
    own_reserve = 0.0 if personal is None else personal[agent]
    reserve = rule[RULE_RESERVE]
    soft_floor = rule[RULE_SOFT_FLOOR]
    floor = max(reserve, own_reserve)
    # the price of a winning bid b is max(w1 b + w2 c, floors), or b below the soft floor
    fixed = rule[SECOND_W] * competing
    least = max(reserve, soft_floor, own_reserve)
    taken[row] += 1.0
    for k in range(arms):  # branchless, so that LLVM can vectorise over the arms
        bid = min(grid[k] * value, remaining)
        wins = (bid > competing) & (bid > 0.0) & (bid >= floor)
        price = max(rule[TOP_W] * bid + fixed, least)
        price = bid if bid < soft_floor else price
        lost = -bid if all_pay and (bid > 0.0) & (bid >= reserve) else 0.0
        utility[row, k] += (value - price) if wins else lost


@njit(cache=True, inline="always")
def _draw_ahead(key_of_round, auction, slot_offset, n_eligible, ranges, bidders, ring, ring_population, marked,
                bid_state, outcome_state, grid_of, row_base, utility):
    """Draw an auction's participants and prefetch the rows the replay will touch."""
    draw_participants(auction_key(key_of_round, auction), n_eligible, ranges, bidders, ring, ring_population,
                      slot_offset, marked, bid_state)
    last = utility.shape[1] - 1
    for j in range(bidders):
        p = ring_population[slot_offset + j]
        if grid_of[p] >= 0:
            agent = ring[slot_offset + j]
            prefetch_row(outcome_state, agent)
            prefetch_row(utility, agent - row_base[p])
            prefetch_item(utility, agent - row_base[p], last)


@njit(cache=True)
def counterfactual_sampled(rule, all_pay, key_of_round, first_auction, n_auctions, bidders, ranges, bid_state,
                           value_tables, marked, winner, top_bid, second_bid, outcome_state, row_base, grid_of,
                           grids, arms, utility, taken, participation, personal):
    """Replay a batch of sampled-bidder auctions for the agents of learning populations.

    Agent ``a`` of population ``p`` with ``grid_of[p] = g >= 0`` adds to row
    ``a - row_base[p]`` of ``utility`` (``float64[rows, K]``) the counterfactual utility
    of ``grids[g, :arms[g]]``, and 1 to ``taken`` (auctions it took part in).
    """
    n_eligible = eligible_agents(ranges)
    ring = np.empty(RING * bidders, np.int64)
    ring_population = np.empty(RING * bidders, np.int64)
    for r in range(min(LOOKAHEAD, n_auctions)):
        _draw_ahead(key_of_round, first_auction + r, (r % RING) * bidders, n_eligible, ranges, bidders, ring,
                    ring_population, marked, bid_state, outcome_state, grid_of, row_base, utility)
    for r in range(n_auctions):
        ahead = r + LOOKAHEAD
        if ahead < n_auctions:
            _draw_ahead(key_of_round, first_auction + ahead, (ahead % RING) * bidders, n_eligible, ranges, bidders,
                        ring, ring_population, marked, bid_state, outcome_state, grid_of, row_base, utility)
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
            value = bid_state[agent, SCALE] * draw_value(key, j, p, value_tables)
            competing = second_bid[r] if winner[r] == agent else top_bid[r]
            _add(rule, all_pay, agent, agent - row_base[p], grids[g], arms[g], value, competing, bid_state,
                 personal, utility, taken)


@njit(cache=True)
def counterfactual_all(rule, all_pay, key_of_round, first_auction, n_auctions, ranges, bid_state, value_tables,
                       winner, top_bid, second_bid, outcome_state, row_base, grid_of, grids, arms, utility, taken,
                       participation, personal):
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
                value = bid_state[agent, SCALE] * draw_value(key, agent, p, value_tables)
                competing = second_bid[r] if winner[r] == agent else top_bid[r]
                _add(rule, all_pay, agent, agent - row_base[p], grids[g], arms[g], value, competing, bid_state,
                     personal, utility, taken)

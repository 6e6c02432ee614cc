"""Full-information feedback: what each learner would have got with every multiplier of its grid.

After a batch of single-item auctions is cleared, these kernels replay its auctions
(participants and values are hashes, so they come out the same) and, for every agent of
a learning population, add to ``utility[row, k]`` the utility it would have had in
that auction bidding ``grid[k] x value``, the other bids held fixed. The highest
competing bid is read off the cleared auction: the second bid if the agent won, the top
bid otherwise (when the auction went unsold both are below the reserve, and either gives
the same price). Its counterfactual bid wins when it is above that bid and at least the
reserve and its own reserve, and pays the price the kernel would charge (``kernel.single_price``,
the one rule both use, here in its two halves ``price_floor`` and ``floored_price``: first or
second price, reserves, soft floors; all-pay bidders pay their bid win or lose).

Approximations, stated: a counterfactual bid is capped by the budget left at the end
of the batch rather than at the auction's time, and not by a channel budget (of the bid
modifiers the replay applies only throttling and personal reserves,
``BidModifiers.replayed``); ties count as losses. Mechanisms
whose price depends on the third bid, and position auctions, are not replayed (the
engine then gives no counterfactuals, and regret is not recorded).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.draws import BLOCK, draw_auctions, draw_value
from bidscape.engine.kernel import REMAINING, RULE_RESERVE, SCALE, floored_price, price_floor
from bidscape.engine.modifiers import own_reserve, takes_part, throttled
from bidscape.engine.prefetch import prefetch_item, prefetch_row
from bidscape.engine.rng import auction_key


@njit(cache=True, inline="always")
def _add(rule, all_pay, agent, row, grids, g, arms, peak, value, competing, bid_state, mods, utility):
    """Add one participation's counterfactual utility of every arm to ``utility[row, :arms]``, and 1 to
    its last column (auctions taken part in: in the row, so that no other cache line is touched).

    Measured about 2x faster than a loop over a view of the grid calling ``single_price``, with the
    same arithmetic: the grid is read as ``grids[g, k]`` (a view per participation costs reference
    counting), the rule as a tuple (it cannot alias ``utility``, so its loads leave the arm loop),
    and the agent's price floor once rather than per arm. ``peak`` is the grid's largest multiplier:
    when even it loses, the arms are skipped.
    """
    remaining = bid_state[agent, REMAINING]
    personal = own_reserve(mods, agent)
    rule = (rule[0], rule[1], rule[2], rule[3], rule[4])
    reserve = rule[RULE_RESERVE]
    floor = max(reserve, personal)  # a bid below it does not take part
    lowest = price_floor(rule, personal)  # the least a winner pays
    utility[row, utility.shape[1] - 1] += 1.0
    if not all_pay and not min(peak * value, remaining) > competing:
        return  # no arm wins, and losers pay nothing: every arm would add 0 (most participations)
    for k in range(arms):  # branchless, so that LLVM can vectorise over the arms
        bid = min(grids[g, k] * value, remaining)
        wins = (bid > competing) & (bid > 0.0) & (bid >= floor)
        price = floored_price(rule, bid, competing, 0.0, lowest)  # the kernel's own rule
        lost = -bid if all_pay and (bid > 0.0) & (bid >= reserve) else 0.0
        utility[row, k] += (value - price) if wins else lost


@njit(cache=True, nogil=True)
def counterfactual_sampled(rule, all_pay, key_of_round, first_auction, n_auctions, bidders, ranges, bid_state,
                           value_tables, marked, winner, top_bid, second_bid, row_base, grid_of,
                           grids, arms, peaks, utility, mods, context, stride, lo, hi):
    """Replay a batch of sampled-bidder auctions for the agents of learning populations.

    Agent ``a`` of population ``p`` with ``grid_of[p] = g >= 0`` adds to row
    ``a - row_base[p]`` of ``utility`` (``float64[rows, K + 1]``) the counterfactual utility
    of ``grids[g, :arms[g]]`` (whose largest is ``peaks[g]``), and 1 to its last column (auctions
    it took part in). Participants and values are drawn block by block as the clearing kernel
    drew them (``draws.draw_auctions``, impressions ``context`` included), and the rows a block
    touches are prefetched before it is replayed.

    ``stride = (per_agent, first_row)`` (None: compiled out) gives learners one set of arms per
    segment: population ``p`` with ``per_agent[p] = S > 1`` has ``S`` rows per agent from row
    ``first_row[p]`` on, and an auction of segment ``s`` adds to the agent's ``s``-th.

    ``mods`` are the clearing's bid modifiers (``bidscape.engine.modifiers``): the replay skips the
    auctions an agent was throttled out of and prices with its personal reserve.

    Only agents ``lo <= a < hi`` are replayed: two threads can share a batch by agents (each
    draws every auction, and ``marked`` must be its own), and each row still adds its
    auctions in arrival order, so the result does not depend on the split.
    """
    who = np.empty(BLOCK * bidders, np.int64)
    population = np.empty(BLOCK * bidders, np.int64)
    drawn = np.empty(BLOCK * bidders)
    for start in range(0, n_auctions, BLOCK):
        count = min(BLOCK, n_auctions - start)
        draw_auctions(key_of_round, first_auction + start, count, bidders, ranges, value_tables, bid_state, marked,
                      who, population, drawn, True, context)  # prefetches the bid rows
        _prefetch_rows(first_auction + start, count * bidders, bidders, who, population, grid_of, row_base, utility,
                       stride, context, lo, hi)
        for b in range(count):
            r = start + b
            held, top, second = winner[r], top_bid[r], second_bid[r]
            for j in range(bidders):
                i = b * bidders + j
                p = population[i]
                g = grid_of[p]
                agent = who[i]
                if g < 0 or agent < lo or agent >= hi:
                    continue
                if throttled(mods) and not takes_part(mods, auction_key(key_of_round, first_auction + r), agent):
                    continue
                value = bid_state[agent, SCALE] * drawn[i]
                competing = second if held == agent else top
                row = _row(agent - row_base[p], stride, p, context, first_auction + r)
                _add(rule, all_pay, agent, row, grids, g, arms[g], peaks[g], value, competing, bid_state, mods, utility)


@njit(cache=True, inline="always")
def _row(row, stride, p, context, r):
    """The learner's row for auction ``r`` of the round: its own, or its segment's (``stride``)."""
    if stride is None:
        return row
    per_agent, first_row = stride
    if per_agent[p] == 1:
        return row
    return first_row[p] + (row - first_row[p]) * per_agent[p] + context[0][r]


@njit(cache=True, inline="always")
def _prefetch_rows(first, slots, bidders, who, population, grid_of, row_base, utility, stride, context, lo, hi):
    """Prefetch the utility rows a freshly drawn block will touch (their first and last columns), in one
    pass: a prefetch per participation inside the replay loop cost about as much as it saved."""
    last = utility.shape[1] - 1
    for i in range(slots):
        p = population[i]
        agent = who[i]
        if grid_of[p] >= 0 and agent >= lo and agent < hi:
            row = _row(agent - row_base[p], stride, p, context, first + i // bidders)
            prefetch_row(utility, row)
            prefetch_item(utility, row, last)


@njit(cache=True)
def counterfactual_all(rule, all_pay, key_of_round, first_auction, n_auctions, ranges, bid_state, value_tables,
                       winner, top_bid, second_bid, row_base, grid_of, grids, arms, peaks, utility,
                       mods):
    """As ``counterfactual_sampled``, for auctions in which every agent of ``ranges`` bids."""
    for r in range(n_auctions):
        key = auction_key(key_of_round, first_auction + r)
        for q in range(ranges.shape[0]):
            p = ranges[q, 2]
            g = grid_of[p]
            if g < 0:
                continue
            for agent in range(ranges[q, 0], ranges[q, 0] + ranges[q, 1]):
                if not takes_part(mods, key, agent):
                    continue
                value = bid_state[agent, SCALE] * draw_value(key, agent, p, value_tables)
                competing = second_bid[r] if winner[r] == agent else top_bid[r]
                _add(rule, all_pay, agent, agent - row_base[p], grids, g, arms[g], peaks[g], value, competing,
                     bid_state, mods, utility)

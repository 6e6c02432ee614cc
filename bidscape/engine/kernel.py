"""The jitted round kernels for single-item auctions with exact budgets.

State layout (struct of arrays, one row per agent, agents of all populations concatenated):

- ``bid_state[A, 4]``: ``[multiplier, remaining_budget, value_scale, quality]``,
  everything the clearing loop reads per bidder in one 32-byte row (two rows per cache
  line: the hot state of 1e6 agents is 32 MB). Strategies write the multiplier column
  directly (``PopulationView.multiplier`` is a view of it), so the market keeps no
  separate array of multipliers. Quality is read by position auctions only.
- Everything that changes a bid auction by auction beyond that row (channel budgets,
  personal reserves, throttling, coordination groups, per-segment multipliers) comes as one
  optional structure, ``mods`` (``bidscape.engine.modifiers.BidModifiers``), whose unused
  fields are ``None`` and compile out.
- ``outcome_state[A, 4]`` (one per channel): ``[spend, wins, value, clicks]`` of the
  current round, touched only for winners, in a second pass.

A bid is ``min(multiplier * value_scale * v, remaining_budget)`` (in that order of
multiplication), then modified (``bid_of``), where ``v`` is the
bidder's base value for the auction (drawn from its population's quantile table); its
value is ``value_scale * v``. A bid below the bidder's personal reserve does not take
part. Auctions are cleared one by one in arrival order, and each payment is charged
before the next auction, so no bid exceeds the remaining budget and no bidder spends
more than its budget (exact mode).

Single-item rules meet the kernel as a small array of numbers (``SingleItemAuction.rule``):
the winner pays ``max(w1 * top + w2 * second + w3 * third, reserve, own reserve)``, or
its own bid when the top bid is below the soft floor; in an all-pay auction every
bidder at or above the reserve also pays its bid. Plain numbers rather than a compiled
callback: a function-pointer call per auction measured 30% slower here (it stops LLVM
keeping the loop's state in registers), and numba cannot cache a kernel specialised on a
Python function.

Participants are drawn from a channel's ``ranges`` (``int64[R, 3]``: first agent, count,
population), uniformly over the agents they cover, without repetition.

Efficient welfare: every kernel also writes, per auction, the highest value among the
drawn participants (``value_scale * v``, whatever their bids, budgets or throttling),
the welfare of the efficient allocation of the same auction, from which efficiency and
the price of anarchy follow (``bidscape.analysis``).

Ties: with sampled participants, the highest bid in the lowest slot wins. Slots hold a
uniformly random ordering of the drawn participants (and their values are i.i.d.
across slots), so this is a uniform random tie-break. With ``all`` agents taking part,
each tied bidder gets a hashed random priority and the highest priority wins.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.draws import BLOCK, LOOKAHEAD, draw_auctions, draw_value, eligible_agents
from bidscape.engine.modifiers import (charge_cap, coordinate, grouped, modified_bid, own_reserve, throttled,
                                       value_to_bid_on)
from bidscape.engine.prefetch import prefetch_row
from bidscape.engine.rng import STREAM_SAMPLE, STREAM_TIE, auction_key, draw_u64, to_unit

MULTIPLIER, REMAINING, SCALE, QUALITY = 0, 1, 2, 3
BID_COLUMNS = 4  # 32 bytes: two rows per cache line
SPEND, WINS, VALUE, CLICKS = 0, 1, 2, 3
OUTCOME_COLUMNS = 4

# single-item price rule (SingleItemAuction.rule)
TOP_W, SECOND_W, THIRD_W, RULE_RESERVE, RULE_SOFT_FLOOR = 0, 1, 2, 3, 4



@njit(cache=True, inline="always")
def bid_of(agent, v, bid_state, mods, key_of_auction):
    """The agent's bid for base value ``v`` (already scaled by its segment multiplier): 0 when below its
    personal reserve or throttled out (``bidscape.engine.modifiers``)."""
    bid = min(bid_state[agent, MULTIPLIER] * bid_state[agent, SCALE] * v, bid_state[agent, REMAINING])
    return modified_bid(mods, agent, bid, key_of_auction)


@njit(cache=True, inline="always")
def _rank_in(j, bid, v, top, second, third, best, best_value, third_bid):
    """Fold one bid into the running top two (three): a tie with the top keeps the earlier slot."""
    higher = bid > top
    if third_bid is not None:
        third = max(third, min(bid, second))
    second = max(second, min(bid, top))
    best = j if higher else best
    best_value = v if higher else best_value
    top = max(top, bid)
    return top, second, third, best, best_value


@njit(cache=True, inline="always")
def charge(agent, amount, bid_state, mods):
    bid_state[agent, REMAINING] -= amount
    charge_cap(mods, agent, amount)


@njit(cache=True, inline="always")
def single_price(rule, top, second, third, own_reserve):
    """What the winner of a single-item auction pays (``top`` is at or above the reserve).

    The one price rule of single-item auctions: the kernels price the winner with it, and the
    counterfactual replay (``bidscape.engine.counterfactual``) prices every grid bid with its
    two halves, the agent's ``price_floor`` once per auction and ``floored_price`` per bid.
    Branchless (a select, not a jump), so that the replay's loop over a grid vectorises.
    """
    return floored_price(rule, top, second, third, price_floor(rule, own_reserve))


@njit(cache=True, inline="always")
def price_floor(rule, own_reserve):
    """The least a winner pays: the reserve, the soft floor and its own reserve."""
    return max(rule[RULE_RESERVE], rule[RULE_SOFT_FLOOR], own_reserve)


@njit(cache=True, inline="always")
def floored_price(rule, top, second, third, floor):
    """``single_price`` given the winner's ``price_floor``."""
    paid = max(rule[TOP_W] * top + rule[SECOND_W] * second + rule[THIRD_W] * third, floor)
    return top if top < rule[RULE_SOFT_FLOOR] else paid  # between the hard and the soft floor: pay your bid


@njit(cache=True, inline="always")
def _settle(rule, r, agent, top, second, third, winner_base_value, bid_state, mods,
            winner, price, top_bid, second_bid, winner_value):
    top_bid[r] = top
    second_bid[r] = second
    if agent >= 0 and top > 0.0 and top >= rule[RULE_RESERVE]:
        paid = single_price(rule, top, second, third, own_reserve(mods, agent))
        charge(agent, paid, bid_state, mods)
        winner[r] = agent
        price[r] = paid
        winner_value[r] = winner_base_value
    else:
        winner[r] = -1
        price[r] = 0.0
        winner_value[r] = 0.0


@njit(cache=True, inline="always")
def _all_pay_losers(rule, agents, bids, offset, count, winner_agent, bid_state, mods, outcome_state):
    """In an all-pay auction every other bidder at or above the reserve pays its bid too."""
    paid = 0.0
    for j in range(count):
        agent = agents[offset + j]
        bid = bids[j]
        if agent != winner_agent and bid > 0.0 and bid >= rule[RULE_RESERVE]:
            charge(agent, bid, bid_state, mods)
            outcome_state[agent, SPEND] += bid
            paid += bid
    return paid


@njit(cache=True, nogil=True)
def clear_drawn(rule, key_of_round, first_auction, start, count, bidders, who, drawn, ahead, bid_state,
                winner, price, top_bid, second_bid, winner_value, others_paid, efficient, mods, third_bid, losers):
    """Clear auctions ``start .. start + count - 1`` of the batch, drawn into ``who`` and ``drawn``.

    Releases the GIL: ``clear_sampled`` calls it block by block, and the two-thread pipeline
    (``bidscape.engine.pipeline``) chunk by chunk while another thread draws the next chunk;
    then ``ahead`` > 0 prefetches the rows of the auction that many ahead, which were drawn
    on the other core. One compiled function serves both (compiling is most of the test suite).
    """
    bids = np.empty(bidders)
    values = np.empty(bidders)
    for b in range(count):
        if ahead > 0 and b + ahead < count:  # rows drawn on another thread are not in this core's cache
            for j in range(bidders):
                prefetch_row(bid_state, who[(b + ahead) * bidders + j])
        r = start + b
        offset = b * bidders
        key = auction_key(key_of_round, first_auction + r) if throttled(mods) else np.uint64(0)
        top = 0.0
        second = 0.0
        third = 0.0
        best = -1
        best_value = 0.0
        possible = 0.0
        for j in range(bidders):
            agent = who[offset + j]
            v = drawn[offset + j]
            bid = bid_of(agent, value_to_bid_on(mods, first_auction + r, agent, v), bid_state, mods, key)
            possible = max(possible, bid_state[agent, SCALE] * v)
            if losers is not None or grouped(mods):
                bids[j] = bid
            if grouped(mods):
                values[j] = v
            else:  # branchless top two (three)
                top, second, third, best, best_value = _rank_in(j, bid, v, top, second, third, best,
                                                                best_value, third_bid)
        if grouped(mods):
            coordinate(mods, who, offset, bidders, bids)
            for j in range(bidders):
                top, second, third, best, best_value = _rank_in(j, bids[j], values[j], top, second, third,
                                                                best, best_value, third_bid)
        efficient[r] = possible
        agent = who[offset + best] if best >= 0 else -1
        _settle(rule, r, agent, top, second, third, best_value, bid_state, mods,
                winner, price, top_bid, second_bid, winner_value)
        if losers is not None:
            others_paid[r] = _all_pay_losers(rule, who, bids, offset, bidders, winner[r], bid_state, mods, losers)
        else:
            others_paid[r] = 0.0


@njit(cache=True)
def clear_sampled(rule, key_of_round, first_auction, n_auctions, bidders, ranges, bid_state, value_tables, marked,
                  winner, price, top_bid, second_bid, winner_value, others_paid, efficient, mods, third_bid, losers,
                  context):
    """Clear ``n_auctions`` auctions with ``bidders`` participants drawn uniformly each.

    The last four arguments switch features on, and are ``None`` when off so that numba
    compiles them out of the loop (each costs 10-50% of the speed when left in):
    ``mods`` the per-auction bid modifiers (``bidscape.engine.modifiers.BidModifiers``, whose
    unused fields are ``None`` in turn), ``third_bid`` tracking the third bid, ``losers`` the
    outcome state that all-pay losers' payments go to, ``context`` the impressions of a market
    with segments (``bidscape.engine.context``), used by the draws.
    """
    who = np.empty(BLOCK * bidders, np.int64)
    population = np.empty(BLOCK * bidders, np.int64)
    drawn = np.empty(BLOCK * bidders)
    for start in range(0, n_auctions, BLOCK):
        count = min(BLOCK, n_auctions - start)
        draw_auctions(key_of_round, first_auction + start, count, bidders, ranges, value_tables, bid_state, marked,
                      who, population, drawn, True, context)
        clear_drawn(rule, key_of_round, first_auction, start, count, bidders, who, drawn, 0, bid_state, winner,
                    price, top_bid, second_bid, winner_value, others_paid, efficient, mods, third_bid, losers)


@njit(cache=True)
def clear_all(rule, key_of_round, first_auction, n_auctions, ranges, bid_state, value_tables,
              winner, price, top_bid, second_bid, winner_value, others_paid, efficient, mods, third_bid, losers):
    """Clear ``n_auctions`` auctions in which every agent of ``ranges`` bids (slot = agent index).

    The optional arguments are as in ``clear_sampled`` (groups and segments need sampled bidders).
    """
    all_pay = losers is not None
    n_eligible = eligible_agents(ranges)
    agents = np.empty(n_eligible if all_pay else 0, np.int64)
    bids = np.empty(n_eligible if all_pay else 0)
    for r in range(n_auctions):
        key = auction_key(key_of_round, first_auction + r)
        top = 0.0
        second = 0.0
        third = 0.0
        best = -1
        best_value = 0.0
        possible = 0.0
        j = 0
        for q in range(ranges.shape[0]):
            p = ranges[q, 2]
            for agent in range(ranges[q, 0], ranges[q, 0] + ranges[q, 1]):
                v = draw_value(key, agent, p, value_tables)
                bid = bid_of(agent, v, bid_state, mods, key)
                possible = max(possible, bid_state[agent, SCALE] * v)
                if all_pay:
                    agents[j] = agent
                    bids[j] = bid
                    j += 1
                if bid > top:
                    third = second
                    second = top
                    top = bid
                    best = agent
                    best_value = v
                elif bid == top and bid > 0.0:
                    third = second
                    second = bid
                    if draw_u64(key, STREAM_TIE, agent) > draw_u64(key, STREAM_TIE, best):
                        best = agent
                        best_value = v
                elif bid > second:
                    third = second
                    second = bid
                elif bid > third:
                    third = bid
        efficient[r] = possible
        _settle(rule, r, best, top, second, third, best_value, bid_state, mods,
                winner, price, top_bid, second_bid, winner_value)
        if losers is not None:
            others_paid[r] = _all_pay_losers(rule, agents, bids, 0, n_eligible, winner[r], bid_state, mods, losers)
        else:
            others_paid[r] = 0.0


@njit(cache=True)
def accumulate_outcomes(winner, price, winner_value, others_paid, efficient, bid_state, outcome_state, sold, revenue,
                        welfare, max_welfare):
    """Add each sold auction to its winner's round totals and to the running market totals.

    Returns the updated ``(sold, revenue, welfare, max_welfare)``. Sums run in auction order across
    batches, so the totals do not depend on the batch size. ``others_paid`` is what
    bidders other than the winner paid (all-pay auctions), already in their spend.
    """
    n = winner.shape[0]
    for r in range(n):
        if r + LOOKAHEAD < n and winner[r + LOOKAHEAD] >= 0:
            prefetch_row(outcome_state, winner[r + LOOKAHEAD])
        agent = winner[r]
        revenue += others_paid[r]
        max_welfare += efficient[r]
        if agent >= 0:
            value = bid_state[agent, SCALE] * winner_value[r]
            outcome_state[agent, SPEND] += price[r]
            outcome_state[agent, WINS] += 1.0
            outcome_state[agent, VALUE] += value
            sold += 1
            revenue += price[r]
            welfare += value
    return sold, revenue, welfare, max_welfare


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

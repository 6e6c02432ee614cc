"""Who takes part in an auction, and at what base value: the draws every sampled-bidder kernel shares.

Participants are drawn from a channel's ``ranges`` (``int64[R, 3]``: first agent, count,
population), uniformly over the agents they cover, without repetition; a participant's
base value comes from its population's quantile table (``value_tables[P, intervals + 1]``).
Every number is a hash of (round key, auction, stream, counter) (``bidscape.engine.rng``),
so a draw does not depend on when, in which block or on which thread it is made: kernels
draw a block of auctions ahead (``draw_block``, or ``draw_auctions`` on another thread) and
clear it after.
"""

from __future__ import annotations

from numba import int64, njit

from bidscape.engine.prefetch import prefetch_row
from bidscape.engine.rng import STREAM_COMMON, STREAM_PARTICIPANT, STREAM_VALUE, auction_key, draw_u64, to_unit

LOOKAHEAD = 8  # auctions whose rows are prefetched ahead of the one being cleared
SCAN_DEDUP_MAX = 16  # above this many bidders, duplicates are found with a mark array
BLOCK = 256  # auctions whose participants and values are drawn in one pass before they are cleared


@njit(cache=True, inline="always")
def draw_value(key_of_auction, slot, population, value_tables):
    intervals = value_tables.shape[1] - 1
    x = to_unit(draw_u64(key_of_auction, STREAM_VALUE, slot)) * intervals
    k = int64(x)
    low = value_tables[population, k]
    return low + (x - k) * (value_tables[population, k + 1] - low)


@njit(cache=True, inline="always")
def eligible_agents(ranges):
    total = 0
    for q in range(ranges.shape[0]):
        total += ranges[q, 1]
    return total


@njit(cache=True, inline="always")
def _agent_at(index, ranges):
    """The agent at position ``index`` of the concatenated ranges, and its population."""
    for q in range(ranges.shape[0] - 1):
        if index < ranges[q, 1]:
            return ranges[q, 0] + index, ranges[q, 2]
        index -= ranges[q, 1]
    last = ranges.shape[0] - 1
    return ranges[last, 0] + index, ranges[last, 2]


@njit(cache=True, inline="always")
def draw_participants(key_of_auction, n_eligible, ranges, bidders, ring, ring_population, offset,
                      marked, bid_state):
    """Fill ``ring[offset:offset+bidders]`` with distinct agents and prefetch their rows.

    Slot ``j`` tries draws ``j, j + bidders, j + 2 * bidders, ...`` of the participant
    stream until it hits an agent not yet in the auction.
    """
    use_marks = bidders > SCAN_DEDUP_MAX
    for j in range(bidders):
        attempt = j
        while True:
            index = int64(to_unit(draw_u64(key_of_auction, STREAM_PARTICIPANT, attempt)) * n_eligible)
            agent, population = _agent_at(index, ranges)
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
        ring_population[offset + j] = population
        if use_marks:
            marked[agent] = 1
        prefetch_row(bid_state, agent)
    if use_marks:
        for j in range(bidders):
            marked[ring[offset + j]] = 0


@njit(cache=True, inline="always")
def _first_attempts(key_of_auction, n_eligible, ranges, bidders, who, population, base):
    """Every slot's first draw; True when two slots drew the same agent (then redraw in order)."""
    for j in range(bidders):
        index = int64(to_unit(draw_u64(key_of_auction, STREAM_PARTICIPANT, j)) * n_eligible)
        who[base + j], population[base + j] = _agent_at(index, ranges)
    clash = False
    for j in range(1, bidders):
        for q in range(j):
            clash |= who[base + q] == who[base + j]
    return clash


@njit(cache=True, inline="always")
def draw_block(key_of_round, first, count, bidders, n_eligible, ranges, value_tables, bid_state, marked,
               who, population, values, prefetch, context):
    """Participants and base values of auctions ``first .. first + count - 1``, their rows prefetched.

    Slot ``j`` of auction ``b`` is ``who[b * bidders + j]`` (of ``population[...]``) with base
    value ``values[...]``. Drawing a block in one pass, apart from clearing it, keeps the
    hashing free of the clearing's dependencies, and the prefetched rows (32 bytes each, a
    block's worth fits in L2) arrive before the clearing pass reads them. Draws are those
    of ``draw_participants``: when no two slots' first draws clash (almost always), every
    slot keeps its first draw, which is what the slot-by-slot procedure gives too.

    ``context`` (``bidscape.engine.context``; None without segments) is the one place
    impressions enter: auction ``first + b`` of the round belongs to segment ``s``, its
    participants are drawn from the agents eligible there (``ranges`` of ``s``), and each
    base value is multiplied by the population's value factor in ``s`` and by the auction's
    common value factor. The clearing kernels downstream never see it. The two cases are
    separate loops: one loop with the segment lookup compiled out measured 30% slower.
    """
    if context is None:
        _draw_plain(key_of_round, first, count, bidders, n_eligible, ranges, value_tables, bid_state, marked,
                    who, population, values, prefetch)
    else:
        _draw_in_context(key_of_round, first, count, bidders, value_tables, bid_state, marked, who, population,
                         values, prefetch, context)


@njit(cache=True, inline="always")
def _draw_plain(key_of_round, first, count, bidders, n_eligible, ranges, value_tables, bid_state, marked,
                who, population, values, prefetch):
    for b in range(count):
        key = auction_key(key_of_round, first + b)
        base = b * bidders
        if bidders > SCAN_DEDUP_MAX or _first_attempts(key, n_eligible, ranges, bidders, who, population, base):
            draw_participants(key, n_eligible, ranges, bidders, who, population, base, marked, bid_state)
        for j in range(bidders):
            if prefetch:
                prefetch_row(bid_state, who[base + j])
            values[base + j] = draw_value(key, j, population[base + j], value_tables)


@njit(cache=True, inline="always")
def _draw_in_context(key_of_round, first, count, bidders, value_tables, bid_state, marked, who, population,
                     values, prefetch, context):
    segment_of, segment_ranges, segment_eligible, factor, common = context
    for b in range(count):
        key = auction_key(key_of_round, first + b)
        base = b * bidders
        s = segment_of[first + b]
        ranges = segment_ranges[s]
        if bidders > SCAN_DEDUP_MAX or _first_attempts(key, segment_eligible[s], ranges, bidders, who, population,
                                                       base):
            draw_participants(key, segment_eligible[s], ranges, bidders, who, population, base, marked, bid_state)
        c = draw_common(key, s, common)
        for j in range(bidders):
            if prefetch:
                prefetch_row(bid_state, who[base + j])
            p = population[base + j]
            values[base + j] = draw_value(key, j, p, value_tables) * (factor[s, p] * c)


@njit(cache=True, inline="always")
def draw_from_table(key_of_auction, stream, index, table):
    """A draw of ``stream`` (counter ``index``) from the quantile table ``table`` (a 1-d row)."""
    intervals = table.shape[0] - 1
    x = to_unit(draw_u64(key_of_auction, stream, index)) * intervals
    k = int64(x)
    low = table[k]
    return low + (x - k) * (table[k + 1] - low)


@njit(cache=True, inline="always")
def draw_common(key_of_auction, segment, common):
    """The auction's common value factor, from its segment's quantile table (a row of 1s: none)."""
    return draw_from_table(key_of_auction, STREAM_COMMON, 0, common[segment])


@njit(cache=True, nogil=True)
def draw_auctions(key_of_round, first, count, bidders, ranges, value_tables, bid_state, marked, who, population,
                  values, prefetch, context):
    """``draw_block`` as a kernel of its own, which releases the GIL: a second thread draws the next
    chunk of auctions while the first clears this one (``bidscape.engine.pipeline``).

    ``prefetch``: bring the participants' rows into this core's cache for a clearing pass that
    follows on the same thread. A drawing thread passes False: the rows would go to the wrong
    core, and the prefetches alone (one per bid, to memory) halve its speed.
    """
    draw_block(key_of_round, first, count, bidders, eligible_agents(ranges), ranges, value_tables, bid_state,
               marked, who, population, values, prefetch, context)

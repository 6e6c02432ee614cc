"""Impressions with context: the one tuple that tells the draws what each auction is.

A channel's round in a market with traffic segments (``[traffic]``) reaches the kernels as
``context = (segment_of, ranges, eligible, factor, common)``, the last argument of
``draws.draw_block`` and of every sampled kernel (``None`` without segments, so numba
compiles it out and runs without context pay nothing):

- ``segment_of``: ``uint8[n]``, the segment of each auction of the round, in arrival order
  (``segment_order``);
- ``ranges``: ``int64[S, R, 3]``, per segment the channel's agent ranges (first agent,
  count, population) with the count set to 0 where the population does not target it;
- ``eligible``: ``int64[S]``, the agents eligible per segment;
- ``factor``: ``float64[S, P]``, each population's value multiplier per segment;
- ``common``: ``float64[S, intervals + 1]``, each segment's quantile table of the common
  value factor (one draw per auction; a row of ones when the segment has none).

Strategies that bid differently per segment (``Strategy.uses_segments``: grid learners with
``contexts = "segment"``, ``segment_pacing``) add two optional pieces, both ``None`` otherwise:

- ``segments = (segment_of, lo, multiplier)``, a bid modifier of the clearing kernels
  (``bidscape.engine.modifiers.BidModifiers.segments``): agent ``a`` with
  ``0 <= a - lo < len(multiplier)`` bids on its base value times ``multiplier[a - lo, s]`` in
  an auction of segment ``s`` (``bid_value``); its value is unchanged;
- ``by_agent = (lo, outcomes)`` for ``segment_totals``: the winners' spend, wins and value per
  agent and segment (``outcomes[a - lo, s, :]``, columns ``AGENT_SEGMENT``), which strategies
  get as per-segment feedback.

Both cover one contiguous span of agents (the populations that use them), so a market pays for
them in memory and time only when such a strategy bids.

An agent's value in an auction of segment ``s`` is its private draw x its value scale x
``factor[s, p]`` x the auction's common value factor. The tables are a few hundred bytes:
they stay in cache, and the hot row of a bidder does not grow.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.rng import STREAM_SEGMENT, draw_u64, to_unit


@njit(cache=True)
def segment_order(key_of_round, counts):
    """``counts[s]`` auctions of each segment, in a random order drawn from the round's key.

    The counts are exact (``Traffic.segment_counts``); the order is a Fisher-Yates shuffle
    whose draws are hashes of the key, so it does not depend on batches or threads.
    """
    n = 0
    for s in range(counts.shape[0]):
        n += counts[s]
    order = np.empty(n, np.uint8)
    i = 0
    for s in range(counts.shape[0]):
        for _ in range(counts[s]):
            order[i] = s
            i += 1
    for i in range(n - 1, 0, -1):
        j = int(to_unit(draw_u64(key_of_round, STREAM_SEGMENT, i)) * (i + 1))
        held = order[i]
        order[i] = order[j]
        order[j] = held
    return order


SEGMENT_TOTALS = ("auctions", "sold", "clicks", "revenue", "welfare", "max_welfare")  # columns of ``totals``
AGENT_SEGMENT = ("spend", "wins", "value")  # columns of ``by_agent``'s outcomes
POPULATION_SEGMENT = ("sold", "spend", "value", "clicks")  # columns of ``by_population``'s table


@njit(cache=True, inline="always")
def bid_value(segments, r, agent, v):
    """The base value agent ``agent`` bids on in auction ``r`` of the round (``v`` itself without
    ``segments``: compiled out)."""
    if segments is None:
        return v
    segment_of, lo, multiplier = segments
    row = agent - lo
    return v * multiplier[row, segment_of[r]] if 0 <= row < multiplier.shape[0] else v


@njit(cache=True)
def segment_totals(segment_of, first, n, winner, price, value, clicks, efficient, others_paid, bid_state, scale_col,
                   totals, by_agent, by_population):
    """Add a cleared batch (auctions ``first ..`` of the round) to ``totals[S, 6]`` by segment
    (columns ``SEGMENT_TOTALS``), as the mechanism's own totals count them: a winner's welfare
    is its value scale x base value, x its clicks where outcomes are clicks (``clicks`` not None).
    ``by_agent`` (None: compiled out) gets each winner's spend, win and value by segment too, and
    ``by_population = (population_start, table[S, P, 4])`` its population's (columns
    ``POPULATION_SEGMENT``; ``population_start`` the first agent of each population, then the total)."""
    for r in range(n):
        s = segment_of[first + r]
        totals[s, 0] += 1.0
        totals[s, 3] += others_paid[r]
        totals[s, 5] += efficient[r]
        for k in range(winner.shape[1]):
            agent = winner[r, k]
            if agent >= 0:
                worth = bid_state[agent, scale_col] * value[r, k]
                if clicks is not None:
                    worth *= clicks[r, k]
                    totals[s, 2] += clicks[r, k]
                totals[s, 1] += 1.0
                totals[s, 3] += price[r, k]
                totals[s, 4] += worth
                if by_agent is not None:
                    _add_agent_segment(by_agent, agent, s, price[r, k], worth)
                if by_population is not None:
                    start, table = by_population
                    p = np.searchsorted(start, agent, side="right") - 1
                    table[s, p, 0] += 1.0
                    table[s, p, 1] += price[r, k]
                    table[s, p, 2] += worth
                    if clicks is not None:
                        table[s, p, 3] += clicks[r, k]


@njit(cache=True, inline="always")
def _add_agent_segment(by_agent, agent, s, paid, worth):
    lo, outcomes = by_agent
    row = agent - lo
    if 0 <= row < outcomes.shape[0]:
        outcomes[row, s, 0] += paid
        outcomes[row, s, 1] += 1.0
        outcomes[row, s, 2] += worth

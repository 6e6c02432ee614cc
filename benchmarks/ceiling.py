"""Bare ceiling rounds: how fast a round of auctions can go on this machine, to measure bidscape against.

DESIGN.md section 5 defines the ceiling round: the same hash random numbers as bidscape
(participants and values drawn per auction), a lognormal value table, a branchless top-k,
one 8-byte gather per bid (the bid factor), participants drawn with repetition, and spend
charged once at the end of the round, not auction by auction. It is what a round costs
with none of bidscape's guarantees (exact budgets, distinct participants, welfare
benchmarks, outcomes per agent), so ``bidscape / ceiling`` is the share of the machine's
speed bidscape keeps.

    from benchmarks.ceiling import ceiling_round_seconds
    ceiling_round_seconds("second_price", agents=10**6, bidders=8, auctions=10**6, threads=1)

``threads > 1`` splits the auctions of a round into equal chunks, one per thread
(``prange``), and charges spend at the end: the parallel ceiling.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from numba import int64, njit, prange

from bidscape.engine.prefetch import prefetch_row
from bidscape.engine.rng import STREAM_PARTICIPANT, STREAM_VALUE, auction_key, draw_u64, to_unit

AHEAD = 8  # auctions whose participants are drawn and prefetched before they are cleared


@njit(cache=True, inline="always")
def _value(key, j, table):
    intervals = table.shape[0] - 1
    x = to_unit(draw_u64(key, STREAM_VALUE, j)) * intervals
    k = int64(x)
    return table[k] + (x - k) * (table[k + 1] - table[k])


@njit(cache=True, inline="always")
def _draw(key_of_round, r, bidders, agents, ring, factor):
    key = auction_key(key_of_round, r)
    for j in range(bidders):
        a = int64(to_unit(draw_u64(key, STREAM_PARTICIPANT, j)) * agents)
        ring[(r % 16) * bidders + j] = a
        prefetch_row(factor, a)


@njit(cache=True, inline="always")
def _chunk(key_of_round, lo, hi, bidders, slots, factor, table, ctrs, winner, price):
    agents = factor.shape[0]
    ring = np.empty(16 * bidders, np.int64)
    top = np.zeros(slots + 1)
    who = np.empty(slots + 1, np.int64)
    for r in range(lo, min(lo + AHEAD, hi)):
        _draw(key_of_round, r, bidders, agents, ring, factor)
    for r in range(lo, hi):
        if r + AHEAD < hi:
            _draw(key_of_round, r + AHEAD, bidders, agents, ring, factor)
        key = auction_key(key_of_round, r)
        for s in range(slots + 1):
            top[s] = 0.0
            who[s] = -1
        for j in range(bidders):
            a = ring[(r % 16) * bidders + j]
            bid = factor[a, 0] * _value(key, j, table)
            for s in range(slots + 1):  # branchless insertion into the top slots + 1
                higher = bid > top[s]
                held, held_who = top[s], who[s]
                top[s] = bid if higher else held
                who[s] = a if higher else held_who
                bid = held if higher else bid
                a = held_who if higher else a
        for s in range(slots):
            winner[r, s] = who[s]
            # single item: second price; positions: GSP, the next bid per click times the ctr
            price[r, s] = top[s + 1] * ctrs[s]


@njit(cache=True, parallel=True)
def ceiling_round(key_of_round, auctions, bidders, slots, factor, table, ctrs, winner, price, spend, chunks):
    """One round: ``chunks`` equal chunks of auctions (in parallel when threads allow), spend charged at the end."""
    for c in prange(chunks):
        _chunk(key_of_round, auctions * c // chunks, auctions * (c + 1) // chunks, bidders, slots, factor, table,
               ctrs, winner, price)
    for r in range(auctions):
        for s in range(slots):
            if winner[r, s] >= 0:
                spend[winner[r, s]] += price[r, s]


def ceiling_round_seconds(mechanism: str, agents: int, bidders: int, auctions: int, threads: int = 1,
                          repeats: int = 3, seed: int = 0, slot_ctrs=(0.3, 0.2, 0.1)) -> float:
    """The best of ``repeats`` ceiling rounds, after a warm-up round; GSP/VCG use ``len(slot_ctrs)`` slots."""
    rng = np.random.default_rng(seed)
    factor = rng.uniform(0.5, 1.5, (agents, 1))
    table = np.quantile(rng.lognormal(0.0, 0.5, 200_000), np.linspace(0.0, 1.0, 257))
    ctrs = np.asarray(slot_ctrs if mechanism in ("gsp", "vcg") else (1.0,), np.float64)
    slots = ctrs.shape[0]
    winner = np.empty((auctions, slots), np.int64)
    price = np.empty((auctions, slots))
    spend = np.zeros(agents)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        best = float("inf")
        for i in range(repeats + 1):
            start = time.perf_counter()
            ceiling_round(np.uint64(seed * 1000 + i + 1), auctions, bidders, slots, factor, table, ctrs, winner,
                          price, spend, threads)
            if i:
                best = min(best, time.perf_counter() - start)
        return best
    finally:
        numba.set_num_threads(before)

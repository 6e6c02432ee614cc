"""Rankings of position auctions: who takes the slots, and the efficient top ``S`` for welfare.

Each is a few small arrays kept sorted, best first. With sampled bidders a bid goes after every
entry that scores at least as much, branchless (selects, not jumps): about two thirds of a
small auction's bidders enter the top S at some point, so a branch per bid would be
mispredicted often. When every agent bids (``insert``, ties broken by hashed priority) most
bids do not enter, and an early return is cheaper. Tried and measured slower: rankings of
S <= 4 as tuples held in registers (about 1.6x slower here: every bid rebuilds each tuple with selects).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def insert(score, priority, bid, value, who, rank_score, rank_priority, rank_bid, rank_value, rank_who):
    """Insert into the ranking (kept sorted, best first, ``S + 1`` long)."""
    last = rank_score.shape[0] - 1
    if score < rank_score[last] or (score == rank_score[last] and priority <= rank_priority[last]):
        return
    i = last
    while i > 0 and (score > rank_score[i - 1] or (score == rank_score[i - 1] and priority > rank_priority[i - 1])):
        rank_score[i] = rank_score[i - 1]
        rank_priority[i] = rank_priority[i - 1]
        rank_bid[i] = rank_bid[i - 1]
        rank_value[i] = rank_value[i - 1]
        rank_who[i] = rank_who[i - 1]
        i -= 1
    rank_score[i] = score
    rank_priority[i] = priority
    rank_bid[i] = bid
    rank_value[i] = value
    rank_who[i] = who


@njit(cache=True, inline="always")
def insert_possible(score, worth, top_score, top_worth):
    """Keep the ``S`` best ``score = q * value_scale * v`` (with ``worth = value_scale * v``), best first.

    A new entry goes after every entry at least as good and the rest move down one place.
    """
    moving = False
    for i in range(top_score.shape[0]):
        take = moving | (score > top_score[i])
        moving = take
        held_score, held_worth = top_score[i], top_worth[i]
        top_score[i] = score if take else held_score
        top_worth[i] = worth if take else held_worth
        score = held_score if take else score
        worth = held_worth if take else worth


@njit(cache=True, inline="always")
def insert_ranked(score, bid, value, agent, rank_score, rank_bid, rank_value, rank_who):
    """Insert a bid into the ranking (best first, ``S + 1`` long) after every entry scoring at least as much.

    Bids come in participant-slot order, so among equal scores the lower slot ranks first;
    a score of 0 (no bid, or below the reserve) never enters. Branchless, as ``insert_possible``.
    """
    moving = False
    for i in range(rank_score.shape[0]):
        take = moving | (score > rank_score[i])
        moving = take
        held_score, held_bid, held_value, held_who = rank_score[i], rank_bid[i], rank_value[i], rank_who[i]
        rank_score[i] = score if take else held_score
        rank_bid[i] = bid if take else held_bid
        rank_value[i] = value if take else held_value
        rank_who[i] = agent if take else held_who
        score = held_score if take else score
        bid = held_bid if take else bid
        value = held_value if take else value
        agent = held_who if take else agent


@njit(cache=True, inline="always")
def possible_welfare(ctrs, top_score, top_worth):
    """The expected welfare of the efficient slot assignment; resets the top-S arrays."""
    total = 0.0
    for s in range(ctrs.shape[0]):
        total += min(top_worth[s], top_score[s] * ctrs[s])  # = min(1, q * ctr) * value_scale * v
        top_score[s] = 0.0
        top_worth[s] = 0.0
    return total


@njit(cache=True, inline="always")
def reset(rank_score, rank_priority, rank_bid, rank_value, rank_who):
    for i in range(rank_score.shape[0]):
        rank_score[i] = 0.0
        rank_priority[i] = -(1 << 62)
        rank_bid[i] = 0.0
        rank_value[i] = 0.0
        rank_who[i] = -1




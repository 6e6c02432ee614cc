"""Position auctions where a click probability ``min(1, q * ctr)`` is capped at 1.

A bidder of quality ``q`` in a slot of click-through rate ``c`` is clicked with
probability ``min(1, q * c)``, so its expected value per impression at bid (or value)
``b`` is ``w(b, q, c) = b * min(1, q * c)``. While ``q * c <= 1`` this is the product
``(b * q) * c``, and ranking by ``b * q`` is the efficient assignment. Once some
``q * c > 1`` it may not be: a bidder clicked surely in a lower slot gains nothing from a
higher one. CTRs (0.8, 0.5), bidders (q, b) = (2, 1), (1, 0.9), (1, 0.3): the ranking
puts the first on top for ``1 + 0.45 = 1.45``, swapping the first two gives
``0.72 + 1 = 1.72``.

When is the ranking still efficient? Every assignment is worth at most
``sum (b * q) * c`` (as ``min(1, q c) <= q c``), whose maximum is the ranking's; so if no
ranked bidder is capped in its own slot, the ranking is efficient (``top_capped``). For
VCG prices the ranking must stay efficient for every lower bid of each winner, which
moves the bidders below it up one slot: so VCG keeps the ranking and its prices unless
a bidder ranked ``t <= S`` has ``q * ctrs[max(t - 1, 0)] > 1`` (``ranking_capped``). Only
then does it solve the assignment (``clear_capped``):

- Candidates: for each slot ``s``, the ``S + 1`` participants with the highest
  ``w(b, q, ctrs[s])`` (ties: the higher score ``b * q``, then the higher priority).
  Some efficient assignment uses only them, even with one bidder's bid lowered (any
  other participant in slot ``s`` has ``S`` better ones there, one of them idle: swap),
  so at most ``S * (S + 1)`` candidates remain, sorted by (score, priority), worst first.
- Assignment: a dynamic programme over the candidates in that order and the subsets of
  filled slots (``best[mask]``, ``m * 2**S * S`` steps), keeping an earlier choice on a
  tie (so a tie goes to the lower priority: a random order, as in the ranking); of the
  subsets, the highest value wins, then more filled slots, then the smaller mask (so the
  filled slots are the top ones). Unfilled slots only when candidates run out.
- Prices (Clarke pivot, with floors as the Myerson payment): the bidder assigned slot
  ``s`` with floor ``r`` (the larger of the reserve and its own) pays per impression
  ``P = W(r) - others``, where ``W(r)`` is the best welfare with its bid lowered to
  ``r`` (``r = 0``: without it) and ``others`` what the other winners get in the chosen
  assignment, summed in the order the programme adds them (so that ``P`` is 0, not a
  rounding residue, when the others' assignment does not change without it). Per click: ``P / min(1, q * ctrs[s])``, kept within
  ``[r, bid]`` against rounding. This is ``b x(b) - integral_r^b x(z) dz``, the payment that
  makes truthful bidding dominant; without caps it equals the ranking price. ``W(r)``
  restarts the programme from its state before that bidder's row (kept per row), so
  winners, who come last in the order, cost little.

The efficient welfare (``efficient_capped``, for efficiency and the price of anarchy,
any mechanism) is the same programme over values, with the ``S`` best per slot.

``reference_capped.py`` holds a plain-Python twin that must give the same numbers, and
``tests/test_position_theory.py`` a brute force over all assignments. Cost: see
``docs/mechanisms.md``; ``MAX_SLOTS`` bounds the ``2**S`` subsets.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_SLOTS = 8  # 2**S subsets per candidate: with 8 bidders, 8 slots cost ~0.1 ms an auction, 4 slots ~3 us


def workspace(participants: int, slots: int) -> tuple:
    """Scratch arrays for ``clear_capped`` and ``efficient_capped`` (reused across auctions)."""
    if slots > MAX_SLOTS:
        raise ValueError(f"at most {MAX_SLOTS} slots when click probabilities can be capped")
    keep = slots + 1
    most = slots * keep
    n = max(participants, 1)
    return (np.empty((slots, keep), np.int64),  # 0: per-slot best participants
            np.empty((slots, keep)),  # 1: their values w
            np.zeros(n, np.uint8),  # 2: marks (kept all zero between calls)
            np.empty(most, np.int64),  # 3: candidates (participant index), worst score first
            np.empty((most, slots)),  # 4: candidate x slot values w
            np.empty(1 << slots),  # 5: best[mask]
            np.empty((most, 1 << slots), np.int8),  # 6: the slot candidate k took for a mask, or -1
            np.empty(most, np.int64),  # 7: the slot of each candidate, or -1
            np.empty(slots),  # 8: a saved row of values
            np.empty(n, np.int64),  # 9: participants taking part (or all of them)
            np.empty(n),  # 10: participants' qualities
            np.empty(n),  # 11: scores (bid x quality; 0 for values)
            np.empty(n),  # 12: values value_scale x v
            np.empty(n, np.int64),  # 13: priorities for values (-index)
            np.empty((most + 1, 1 << slots)))  # 14: best[mask] before each candidate's row


@njit(cache=True, inline="always")
def _before(w, score, priority, w_other, score_other, priority_other):
    """The order of the per-slot lists: higher value, then higher score, then higher priority."""
    if w != w_other:
        return w > w_other
    if score != score_other:
        return score > score_other
    return priority > priority_other


@njit(cache=True)
def candidates(ctrs, amount, quality, score, priority, who, n, keep, ws):
    """Into ``ws[3]``: the participants ``who[:n]`` among the ``keep`` best of some slot, sorted
    by (score, priority), worst first; returns how many. ``amount`` is a bid or a value."""
    lists, values, marked, cand = ws[0], ws[1], ws[2], ws[3]
    m = 0
    for s in range(ctrs.shape[0]):
        count = 0
        for t in range(n):
            j = who[t]
            w = amount[j] * min(1.0, quality[j] * ctrs[s])
            if count == keep and not _before(w, score[j], priority[j], values[s, keep - 1],
                                             score[lists[s, keep - 1]], priority[lists[s, keep - 1]]):
                continue
            i = min(count, keep - 1)
            while i > 0 and _before(w, score[j], priority[j], values[s, i - 1], score[lists[s, i - 1]],
                                    priority[lists[s, i - 1]]):
                lists[s, i] = lists[s, i - 1]
                values[s, i] = values[s, i - 1]
                i -= 1
            lists[s, i] = j
            values[s, i] = w
            count = min(count + 1, keep)
        for i in range(count):
            j = lists[s, i]
            if marked[j] == 0:
                marked[j] = 1
                k = m
                while k > 0 and (score[j] < score[cand[k - 1]]
                                 or (score[j] == score[cand[k - 1]] and priority[j] < priority[cand[k - 1]])):
                    cand[k] = cand[k - 1]
                    k -= 1
                cand[k] = j
                m += 1
    for k in range(m):
        marked[cand[k]] = 0
    return m


@njit(cache=True)
def programme(weights, first, m, slots, best, choice, layers, record):
    """The dynamic programme over candidates ``first .. m-1`` and subsets of slots.

    ``best`` holds the state before candidate ``first`` (``start`` for none). With
    ``record``, ``layers[k]`` keeps the state before candidate ``k`` and ``choice[k, mask]``
    the slot candidate ``k`` took to improve ``best[mask]`` (-1: it did not).
    """
    full = 1 << slots
    for k in range(first, m):
        if record:
            choice[k, 0] = -1
            for mask in range(full):
                layers[k, mask] = best[mask]
        for mask in range(full - 1, 0, -1):  # downwards: best[mask ^ bit] is still without k
            value = best[mask]
            pick = -1
            for s in range(slots):  # branchless: which bits are set is unpredictable (3x at 8 slots)
                bit = 1 << s
                v = best[mask ^ bit] + weights[k, s]
                better = ((mask & bit) != 0) & (v > value)
                value = v if better else value
                pick = s if better else pick
            best[mask] = value
            if record:
                choice[k, mask] = pick


@njit(cache=True, inline="always")
def start(best):
    best[0] = 0.0
    for mask in range(1, best.shape[0]):
        best[mask] = -np.inf


@njit(cache=True)
def top(best, slots):
    """The best value and its subset: the highest value, then more slots filled, then the smaller mask."""
    value, chosen, most = -np.inf, 0, -1
    for mask in range(1 << slots):
        filled = 0
        for s in range(slots):
            filled += (mask >> s) & 1
        if best[mask] > value or (best[mask] == value and filled > most):
            value, chosen, most = best[mask], mask, filled
    return value, chosen


@njit(cache=True)
def clear_capped(ctrs, reserve, agents, bids, values, priority, n, bid_state, quality_col, personal,
                 soft_floor, ws, rank_score, rank_bid, rank_value, rank_who, ppc):
    """VCG's efficient assignment and prices for one auction whose ranking may not be efficient.

    Participants are ``agents[:n]`` with ``bids`` and base ``values``; a bid takes part when
    ``> 0`` and ``>= reserve``. Writes the slot occupants in slot order into ``rank_*``
    (``S + 1`` long; then the bid of the best bidder left out) and each slot's price per
    click into ``ppc``.
    """
    slots = ctrs.shape[0]
    taking = ws[9]
    count = 0
    for j in range(n):
        if bids[j] > 0.0 and bids[j] >= reserve:
            taking[count] = j
            count += 1
    quality, score = ws[10], ws[11]
    for t in range(count):
        j = taking[t]
        quality[j] = bid_state[agents[j], quality_col]
        score[j] = bids[j] * quality[j]
    m = candidates(ctrs, bids, quality, score, priority, taking, count, slots + 1, ws)
    cand, weights, best, choice, slot_of, row, layers = ws[3], ws[4], ws[5], ws[6], ws[7], ws[8], ws[14]
    for k in range(m):
        j = cand[k]
        for s in range(slots):
            weights[k, s] = bids[j] * min(1.0, quality[j] * ctrs[s])
    start(best)
    programme(weights, 0, m, slots, best, choice, layers, True)
    _, mask = top(best, slots)
    for k in range(m - 1, -1, -1):  # walk the recorded choices back
        s = choice[k, mask] if mask != 0 else -1
        slot_of[k] = s
        if s >= 0:
            mask ^= 1 << s
    for s in range(slots + 1):
        rank_who[s] = -1
        rank_bid[s] = 0.0
        rank_value[s] = 0.0
        rank_score[s] = 0.0
        if s < slots:
            ppc[s] = 0.0
    filled = 0
    for k in range(m):
        s = slot_of[k]
        if s < 0:
            continue
        j = cand[k]
        filled += 1
        floor = reserve if personal is None else max(reserve, personal[agents[j]])
        others = 0.0  # in the programme's order of addition
        for i in range(m):
            if i != k and slot_of[i] >= 0:
                others += weights[i, slot_of[i]]
        for t in range(slots):
            row[t] = weights[k, t]
            weights[k, t] = floor * min(1.0, quality[j] * ctrs[t])
        for mask in range(1 << slots):  # the state before row k, whose bid is now the floor
            best[mask] = layers[k, mask]
        programme(weights, k, m, slots, best, choice, layers, False)
        lowered, _ = top(best, slots)
        for t in range(slots):
            weights[k, t] = row[t]
        price = min(max((lowered - others) / min(1.0, quality[j] * ctrs[s]), floor), bids[j])
        if soft_floor is not None:
            price = bids[j] if bids[j] < soft_floor else max(price, soft_floor)
        ppc[s] = price
        rank_who[s] = agents[j]
        rank_bid[s] = bids[j]
        rank_value[s] = values[j]
        rank_score[s] = score[j]
    pick = -1  # the best bidder left out, by (score, priority): its bid is the last slot's next bid
    for t in range(count):
        j = taking[t]
        if not _assigned(j, cand, slot_of, m) and (
                pick < 0 or score[j] > score[pick] or (score[j] == score[pick] and priority[j] > priority[pick])):
            pick = j
    if pick >= 0:
        rank_bid[filled] = bids[pick]  # slots from `filled` on stay empty (rank_who -1)


@njit(cache=True, inline="always")
def _assigned(j, cand, slot_of, m):
    for k in range(m):
        if cand[k] == j and slot_of[k] >= 0:
            return True
    return False


@njit(cache=True)
def efficient_capped(ctrs, agents, values, n, bid_state, quality_col, scale_col, ws):
    """The welfare of the efficient assignment of the drawn ``agents[:n]`` (values
    ``value_scale * v``, bids aside)."""
    slots = ctrs.shape[0]
    who, quality, order, worth, priority = ws[9], ws[10], ws[11], ws[12], ws[13]
    for j in range(n):
        worth[j] = bid_state[agents[j], scale_col] * values[j]
        quality[j] = bid_state[agents[j], quality_col]
        order[j] = 0.0  # ties among equal values: the lower participant index first
        priority[j] = -j
        who[j] = j
    m = candidates(ctrs, worth, quality, order, priority, who, n, slots, ws)
    cand, weights = ws[3], ws[4]
    for k in range(m):
        for s in range(slots):
            weights[k, s] = worth[cand[k]] * min(1.0, quality[cand[k]] * ctrs[s])
    start(ws[5])
    programme(weights, 0, m, slots, ws[5], ws[6], ws[14], False)
    return top(ws[5], slots)[0]


@njit(cache=True, inline="always")
def top_capped(ctrs, top_score, top_worth):
    """Whether a bidder of the ranking by ``q * worth`` (score, worth) is capped in its own slot."""
    for s in range(ctrs.shape[0]):
        if top_score[s] * ctrs[s] > top_worth[s]:
            return True
    return False


@njit(cache=True, inline="always")
def ranking_capped(ctrs, rank_who, bid_state, quality_col):
    """Whether a bidder ranked ``t <= S`` (``rank_who``) is capped one slot up, ``max(t - 1, 0)``."""
    for t in range(rank_who.shape[0]):
        agent = rank_who[t]
        if agent >= 0 and bid_state[agent, quality_col] * ctrs[max(t - 1, 0)] > 1.0:
            return True
    return False

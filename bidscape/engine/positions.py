"""The jitted round kernels for position auctions (GSP and VCG) with exact budgets.

An auction sells ``S`` ad slots with click-through rates ``ctrs[0] >= ctrs[1] >= ...``.
Bids are per click; bidders are ranked by ``score = bid * quality`` and the ``s``-th
highest score gets slot ``s``. A bidder of quality ``q`` in slot ``s`` is clicked with
probability ``min(1, q * ctrs[s])`` (a hashed draw per slot). Bids below the global or
the bidder's personal reserve do not take part.

Price per click of the bidder in slot ``s`` (``next_score(t)`` is the ``t+1``-th
score, 0 when there is none; ``r`` is the larger of the global and its own reserve):

- GSP: ``max(next_score(s) / q, r)``, the least bid that keeps its slot.
- VCG: ``sum_{t >= s} (ctrs[t] - ctrs[t+1]) * max(next_score(t) / q, r) / ctrs[s]``
  (``ctrs[S] = 0``): its externality on the others, i.e. the Myerson payment of the
  ranking rule, so that bidding one's value is a dominant strategy. Without reserves
  and with quality 1 this is the textbook VCG price. This holds while the ranking is
  the efficient assignment for the capped probabilities; in an auction where a bidder
  ranked ``t <= S`` has ``q * ctrs[max(t - 1, 0)] > 1`` it may not be, and VCG assigns the
  slots efficiently and prices that assignment (``bidscape.engine.capped``).

With a soft floor, a bidder whose bid is below it pays its bid per click. Pricing
``"click"`` charges the price per click when a click is drawn; ``"impression"`` charges
its expectation ``price * click probability`` on every impression. Either way a
payment never exceeds the bid, hence the remaining budget.

Efficient welfare (per auction, into ``efficient``): the expected value of giving the
slots to the drawn participants in order of ``quality * value_scale * v``, i.e.
``sum_s min(1, q * ctrs[s]) * value_scale * v`` over the top ``S``, whatever their bids
and budgets; this is the efficient assignment unless one of them has
``q * ctrs[s] > 1`` in its slot ``s``, and ``bidscape.engine.capped.efficient_capped``
computes it then.

``capped`` (the scratch of ``bidscape.engine.capped.workspace``) is ``None`` when no
agent of the channel has ``q * ctrs[0] > 1``: numba then compiles the capped paths
out, and the kernels are those of the common case.

Ties rank the lower participant slot first (sampled participants are in random order),
or the higher hashed priority when all agents take part, as in single-item auctions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.capped import clear_capped, efficient_capped, ranking_capped, top_capped
from bidscape.engine.clicks import prediction_noise, ranked_qualities
from bidscape.engine.draws import BLOCK, LOOKAHEAD, draw_auctions, draw_value, eligible_agents
from bidscape.engine.kernel import CLICKS, QUALITY, SCALE, SPEND, VALUE, WINS, bid_of, charge
from bidscape.engine.modifiers import own_reserve, value_to_bid_on
from bidscape.engine.prefetch import prefetch_row
from bidscape.engine.ranking import insert, insert_possible, insert_ranked, possible_welfare, reset
from bidscape.engine.rng import STREAM_SAMPLE, STREAM_TIE, auction_key, draw_u64, to_unit

# position price rule (PositionAuction.rule)
RULE_IMPRESSION, RULE_RESERVE = 0, 1


@njit(cache=True, inline="always")
def price_per_click(rule, ctrs, s, quality, own_reserve, bid, rank_score, vcg, soft_floor):
    """What the bidder in slot ``s`` pays per click (see the module docstring).

    ``vcg`` and ``soft_floor`` are ``None`` for GSP and for no soft floor: numba then
    compiles the branches out (a branch here, even one never taken, measured 60 -> 28 M
    bids/s, as it stops LLVM from scheduling the slot loop as straight-line code).
    """
    floor = max(rule[RULE_RESERVE], own_reserve)
    if vcg is not None:  # here vcg[t] = ctrs[t] - ctrs[t + 1] (0 below the last slot)
        total = 0.0
        for t in range(s, ctrs.shape[0]):
            total += vcg[t] * max(rank_score[t + 1] / quality, floor)
        ppc = total / ctrs[s]
    else:
        ppc = max(rank_score[s + 1] / quality, floor)
    if soft_floor is not None:
        ppc = bid if bid < soft_floor else max(ppc, soft_floor)
    return ppc


@njit(cache=True, inline="always")
def _settle_slots(rule, ctrs, key, r, bid_state, mods, rank_score, rank_bid, rank_value, rank_who,
                  winner, price, bid_out, next_bid, value_out, clicks, vcg, soft_floor, fixed, rank_q):
    """Charge and record slot ``s``'s occupant ``rank_who[s]``; ``fixed`` (or None): prices per click.

    ``rank_q`` (None: the agents' qualities) is ``(true, predicted)`` click factors per rank
    (``bidscape.engine.clicks``): prices per click use the predicted one, clicks the true one.
    """
    for s in range(ctrs.shape[0]):
        agent = rank_who[s]
        next_bid[r, s] = rank_bid[s + 1]
        if agent < 0:
            winner[r, s] = -1
            price[r, s] = 0.0
            bid_out[r, s] = 0.0
            value_out[r, s] = 0.0
            clicks[r, s] = 0
            continue
        quality = bid_state[agent, QUALITY]
        predicted = quality
        if rank_q is not None:
            quality = rank_q[0][s]
            predicted = rank_q[1][s]
        if fixed is not None:
            ppc = fixed[s]
        else:
            ppc = price_per_click(rule, ctrs, s, predicted, own_reserve(mods, agent), rank_bid[s], rank_score,
                                  vcg, soft_floor)
        probability = min(1.0, quality * ctrs[s])
        clicked = to_unit(draw_u64(key, STREAM_SAMPLE, 1 + s)) < probability
        paid = ppc * probability if rule[RULE_IMPRESSION] != 0.0 else (ppc if clicked else 0.0)
        charge(agent, paid, bid_state, mods)
        winner[r, s] = agent
        price[r, s] = paid
        bid_out[r, s] = rank_bid[s]
        value_out[r, s] = rank_value[s]
        clicks[r, s] = 1 if clicked else 0


@njit(cache=True, inline="always")
def _settle_ranked(rule, ctrs, key, r, reserve, agents, bids, values, priority, n, bid_state, mods,
                   rank_score, rank_bid, rank_value, rank_who, fixed, winner, price, bid_out, next_bid, value_out,
                   clicks, vcg, soft_floor, capped, rank_q):
    """Settle an auction's ranking; under VCG with capped click probabilities, first replace a ranking that
    may not be efficient by the efficient assignment and its prices (``capped.clear_capped``; never with
    segment CTRs, ``rank_q``, whose probabilities the scenario checks keep at or below 1)."""
    if capped is not None and vcg is not None and ranking_capped(ctrs, rank_who, bid_state, QUALITY):
        clear_capped(ctrs, reserve, agents, bids, values, priority, n, bid_state, QUALITY, mods.personal, soft_floor,
                     capped, rank_score, rank_bid, rank_value, rank_who, fixed)
        _settle_slots(rule, ctrs, key, r, bid_state, mods, rank_score, rank_bid, rank_value, rank_who,
                      winner, price, bid_out, next_bid, value_out, clicks, vcg, soft_floor, fixed, rank_q)
    else:
        _settle_slots(rule, ctrs, key, r, bid_state, mods, rank_score, rank_bid, rank_value, rank_who,
                      winner, price, bid_out, next_bid, value_out, clicks, vcg, soft_floor, None, rank_q)


@njit(cache=True, nogil=True, error_model="numpy")
def clear_positions_drawn(rule, ctrs, key_of_round, first_auction, start, count, bidders, who, population, drawn,
                          ahead, bid_state, winner, price, bid_out, next_bid, value_out, clicks, efficient, mods,
                          vcg, soft_floor, capped, ctr_context, ctr_noise):
    """Clear position auctions ``start .. start + count - 1`` of the batch, drawn into ``who`` and ``drawn``.

    As ``kernel.clear_drawn``: called block by block by ``clear_positions_sampled`` and chunk
    by chunk by the two-thread pipeline (``ahead`` > 0 then prefetches rows drawn elsewhere).

    Compiled with numpy's error model: a division by zero would give inf rather than raise, so
    numba emits no zero test and exception path per division. No divisor here can be 0 (qualities
    and click-through rates are positive, and a ranked bidder's score is), so outputs are the
    same; VCG's price loop divides ``S (S + 1) / 2 + S`` times an auction, and the tests cost it
    a third of its speed (471 -> 320 ms per 1e6 auctions at 1e4 agents, 3 slots).
    ``ctr_context`` and ``ctr_noise``: segment CTRs and their prediction (``bidscape.engine.clicks``),
    None when off; ``mods`` the bid modifiers (``bidscape.engine.modifiers``).
    """
    slots = ctrs.shape[0]
    reserve = rule[RULE_RESERVE]
    bids = np.empty(bidders)
    values = np.empty(bidders)
    rank_score = np.empty(slots + 1)
    rank_bid = np.empty(slots + 1)
    rank_value = np.empty(slots + 1)
    rank_who = np.empty(slots + 1, np.int64)
    top_score = np.zeros(slots)
    top_worth = np.zeros(slots)
    fixed = np.empty(slots)  # prices per click of a capped auction
    priority = np.empty(bidders if capped is not None else 0, np.int64)
    for j in range(priority.shape[0]):
        priority[j] = -j  # the lower participant slot first, as in the ranking
    ctr_size = bidders if ctr_context is not None else 0
    true_q, predicted_q = np.empty(ctr_size), np.empty(ctr_size)
    rank_q = (np.empty(slots + 1), np.empty(slots + 1))
    for b in range(count):
        if ahead > 0 and b + ahead < count:  # rows drawn on another thread are not in this core's cache
            for j in range(bidders):
                prefetch_row(bid_state, who[(b + ahead) * bidders + j])
        r = start + b
        key = auction_key(key_of_round, first_auction + r)
        offset = b * bidders
        for t in range(slots + 1):
            rank_score[t] = 0.0
            rank_who[t] = -1
            rank_bid[t] = 0.0
            rank_value[t] = 0.0
        for j in range(bidders):
            agent = who[offset + j]
            v = drawn[offset + j]
            bid = bid_of(agent, value_to_bid_on(mods, first_auction + r, agent, v), bid_state, mods, key)
            bids[j] = bid
            values[j] = v
            quality = bid_state[agent, QUALITY]
            predicted = quality
            if ctr_context is not None:
                segment_of, factor = ctr_context
                quality *= factor[segment_of[first_auction + r], population[offset + j]]
                predicted = quality
                if ctr_noise is not None:
                    predicted = quality * prediction_noise(key, j, ctr_noise)
                true_q[j] = quality
                predicted_q[j] = predicted
            score = bid * predicted if (bid > 0.0) & (bid >= reserve) else 0.0
            insert_ranked(score, bid, v, agent, rank_score, rank_bid, rank_value, rank_who)
            worth = bid_state[agent, SCALE] * v
            insert_possible(quality * worth, worth, top_score, top_worth)
        if capped is not None and top_capped(ctrs, top_score, top_worth):
            possible_welfare(ctrs, top_score, top_worth)  # resets the top S
            efficient[r] = efficient_capped(ctrs, who[offset:offset + bidders], values, bidders, bid_state,
                                            QUALITY, SCALE, capped)
        else:
            efficient[r] = possible_welfare(ctrs, top_score, top_worth)
        if ctr_context is not None:
            ranked_qualities(who, offset, bidders, rank_who, true_q, predicted_q, rank_q[0], rank_q[1])
            _settle_ranked(rule, ctrs, key, r, reserve, who[offset:offset + bidders], bids, values, priority,
                           bidders, bid_state, mods, rank_score, rank_bid, rank_value, rank_who, fixed,
                           winner, price, bid_out, next_bid, value_out, clicks, vcg, soft_floor, capped, rank_q)
        else:
            _settle_ranked(rule, ctrs, key, r, reserve, who[offset:offset + bidders], bids, values, priority,
                           bidders, bid_state, mods, rank_score, rank_bid, rank_value, rank_who, fixed,
                           winner, price, bid_out, next_bid, value_out, clicks, vcg, soft_floor, capped, None)


@njit(cache=True)
def clear_positions_sampled(rule, ctrs, key_of_round, first_auction, n_auctions, bidders, ranges, bid_state,
                            value_tables, marked, winner, price, bid_out, next_bid, value_out, clicks,
                            efficient, mods, vcg, soft_floor, capped, context, ctr_context, ctr_noise):
    """Clear ``n_auctions`` position auctions with ``bidders`` participants drawn uniformly each.

    ``mods`` (the bid modifiers, ``bidscape.engine.modifiers``, whose unused fields are ``None``),
    ``vcg`` (VCG prices, else GSP), ``soft_floor`` and ``capped`` (capped click probabilities)
    are ``None`` when off, so that numba compiles them out, as in ``kernel.clear_sampled``; so
    is ``context`` (the impressions of a market with segments, used by the draws),
    ``ctr_context`` and ``ctr_noise`` (as in ``clear_positions_drawn``).
    """
    who = np.empty(BLOCK * bidders, np.int64)
    population = np.empty(BLOCK * bidders, np.int64)
    drawn = np.empty(BLOCK * bidders)
    for start in range(0, n_auctions, BLOCK):
        count = min(BLOCK, n_auctions - start)
        draw_auctions(key_of_round, first_auction + start, count, bidders, ranges, value_tables, bid_state, marked,
                      who, population, drawn, True, context)
        clear_positions_drawn(rule, ctrs, key_of_round, first_auction, start, count, bidders, who, population, drawn,
                              0, bid_state, winner, price, bid_out, next_bid, value_out, clicks, efficient, mods,
                              vcg, soft_floor, capped, ctr_context, ctr_noise)


@njit(cache=True, error_model="numpy")  # as clear_positions_drawn
def clear_positions_all(rule, ctrs, key_of_round, first_auction, n_auctions, ranges, bid_state,
                        value_tables, winner, price, bid_out, next_bid, value_out, clicks,
                        efficient, mods, vcg, soft_floor, capped):
    """Clear ``n_auctions`` position auctions in which every agent of ``ranges`` bids."""
    slots = ctrs.shape[0]
    reserve = rule[RULE_RESERVE]
    rank_score = np.empty(slots + 1)
    rank_priority = np.empty(slots + 1, np.int64)
    rank_bid = np.empty(slots + 1)
    rank_value = np.empty(slots + 1)
    rank_who = np.empty(slots + 1, np.int64)
    top_score = np.zeros(slots)
    top_worth = np.zeros(slots)
    # with capped click probabilities, every bidder is kept for clear_capped (else none is)
    everyone = eligible_agents(ranges) if capped is not None else 0
    agents, bids, values = np.empty(everyone, np.int64), np.empty(everyone), np.empty(everyone)
    priorities = np.zeros(everyone, np.int64)
    fixed = np.empty(slots)
    for r in range(n_auctions):
        key = auction_key(key_of_round, first_auction + r)
        reset(rank_score, rank_priority, rank_bid, rank_value, rank_who)
        j = 0
        for q in range(ranges.shape[0]):
            p = ranges[q, 2]
            for agent in range(ranges[q, 0], ranges[q, 0] + ranges[q, 1]):
                v = draw_value(key, agent, p, value_tables)
                bid = bid_of(agent, v, bid_state, mods, key)
                worth = bid_state[agent, SCALE] * v
                insert_possible(bid_state[agent, QUALITY] * worth, worth, top_score, top_worth)
                if bid > 0.0 and bid >= reserve:
                    priority = np.int64(draw_u64(key, STREAM_TIE, agent) >> np.uint64(2))
                    insert(bid * bid_state[agent, QUALITY], priority, bid, v, agent,
                            rank_score, rank_priority, rank_bid, rank_value, rank_who)
                    if capped is not None:
                        priorities[j] = priority
                if capped is not None:
                    agents[j], bids[j], values[j] = agent, bid, v
                    j += 1
        if capped is not None and top_capped(ctrs, top_score, top_worth):
            possible_welfare(ctrs, top_score, top_worth)  # resets the top S
            efficient[r] = efficient_capped(ctrs, agents, values, everyone, bid_state, QUALITY, SCALE, capped)
        else:
            efficient[r] = possible_welfare(ctrs, top_score, top_worth)
        _settle_ranked(rule, ctrs, key, r, reserve, agents, bids, values, priorities, everyone, bid_state, mods,
                       rank_score, rank_bid, rank_value, rank_who, fixed, winner, price, bid_out, next_bid,
                       value_out, clicks, vcg, soft_floor, capped, None)


@njit(cache=True)
def accumulate_slots(winner, price, value_base, clicks, efficient, bid_state, outcome_state, slot_totals, sold, revenue,
                     welfare, max_welfare):
    """Add each filled slot to its winner's round totals, the slot totals and the market totals.

    ``slot_totals[S, 3]`` holds impressions, clicks and revenue per slot. A winner's
    value is ``value_scale * base value * clicks``. Sums run in auction order.
    """
    n, slots = winner.shape
    for r in range(n):
        max_welfare += efficient[r]
        for s in range(slots):
            agent = winner[r, s]
            if agent < 0:
                continue
            if r + LOOKAHEAD < n and winner[r + LOOKAHEAD, s] >= 0:
                prefetch_row(outcome_state, winner[r + LOOKAHEAD, s])
            value = bid_state[agent, SCALE] * value_base[r, s] * clicks[r, s]
            outcome_state[agent, SPEND] += price[r, s]
            outcome_state[agent, WINS] += 1.0
            outcome_state[agent, VALUE] += value
            outcome_state[agent, CLICKS] += clicks[r, s]
            slot_totals[s, 0] += 1.0
            slot_totals[s, 1] += clicks[r, s]
            slot_totals[s, 2] += price[r, s]
            sold += 1
            revenue += price[r, s]
            welfare += value
    return sold, revenue, welfare, max_welfare

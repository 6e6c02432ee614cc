"""Continuous double auction (CDA) under Gode & Sunder's (1993) rules, one period per call.

The book holds at most one standing bid and one standing ask, each for one unit:

* At step ``s`` a trader is picked uniformly among those with units left: it is
  ``active[min(floor(u0 * n_active), n_active - 1)]`` where ``active`` lists the traders
  with units left, starting in index order; a trader that runs out of units is removed by
  swap-remove (the last entry takes its place; the buyer of a trade is removed first).
* It submits one order for its next unit, priced by its strategy (``traders.order_price``)
  with a second draw ``u1``.
* A bid ``>=`` the standing ask (an ask ``<=`` the standing bid) trades one unit at the
  standing order's price; then the whole book is cleared.
* Otherwise it replaces the standing order on its side only if strictly better (higher bid,
  lower ask); else it is discarded (the earlier order keeps priority on ties).
* The period ends after ``steps`` submissions, or as soon as one side has no units left.

Units are redeemed in order: a buyer's k-th trade earns its k-th highest value, a seller's
k-th trade costs its k-th lowest cost. Random numbers are the counter-based hash
``draw_u64(auction_key(round_key(run_key, round), step), stream, 0)`` with stream 0 for the
trader and stream 1 for the price, so a period's outcome depends on nothing but its inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.rng import auction_key, draw_u64, round_key, to_unit
from bidscape.games.double_auction.traders import BUY, order_price, record_trade

STREAM_TRADER = 0
STREAM_PRICE = 1


@njit(cache=True)
def continuous_round(run_key, round_index, side, strategy, units, values, price_low, price_high, steps,
                     traded, out_step, out_price, out_buyer, out_seller, out_buyer_value, out_seller_cost):
    """Play one period; fill ``traded`` (units per trader) and the ``out_*`` trade arrays.

    ``values[i, k]`` is trader i's k-th unit value (buyers, descending) or cost (sellers,
    ascending). The ``out_*`` arrays need room for ``min(buyer units, seller units)`` trades.
    Returns the number of trades.
    """
    n = side.shape[0]
    active = np.empty(n, np.int64)
    position = np.full(n, -1, np.int64)
    n_active = 0
    buyers_left = 0
    sellers_left = 0
    for i in range(n):
        traded[i] = 0
        if units[i] > 0:
            active[n_active] = i
            position[i] = n_active
            n_active += 1
            if side[i] == BUY:
                buyers_left += 1
            else:
                sellers_left += 1
    key = round_key(run_key, round_index)
    bid_owner = -1
    ask_owner = -1
    bid = 0.0
    ask = 0.0
    n_trades = 0
    for step in range(steps):
        if buyers_left == 0 or sellers_left == 0:
            break
        step_key = auction_key(key, step)
        slot = int(to_unit(draw_u64(step_key, STREAM_TRADER, 0)) * n_active)
        if slot > n_active - 1:
            slot = n_active - 1
        i = active[slot]
        u = to_unit(draw_u64(step_key, STREAM_PRICE, 0))
        price = order_price(strategy[i], side[i], values[i, traded[i]], u, price_low, price_high)
        buyer = -1
        seller = -1
        if side[i] == BUY:
            if ask_owner >= 0 and price >= ask:
                buyer, seller, price = i, ask_owner, ask
            elif bid_owner < 0 or price > bid:
                bid_owner, bid = i, price
        else:
            if bid_owner >= 0 and price <= bid:
                buyer, seller, price = bid_owner, i, bid
            elif ask_owner < 0 or price < ask:
                ask_owner, ask = i, price
        if buyer < 0:
            continue
        n_trades = record_trade(n_trades, step, price, buyer, seller, values, traded, out_step, out_price, out_buyer,
                                out_seller, out_buyer_value, out_seller_cost)
        bid_owner = -1
        ask_owner = -1
        for trader in (buyer, seller):
            if traded[trader] == units[trader]:
                p = position[trader]
                last = active[n_active - 1]
                active[p] = last
                position[last] = p
                position[trader] = -1
                n_active -= 1
                if side[trader] == BUY:
                    buyers_left -= 1
                else:
                    sellers_left -= 1
    return n_trades

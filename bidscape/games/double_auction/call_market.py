"""Uniform-price call market (sealed-bid clearing house), ``calls_per_round`` calls per period.

* At each call ``c`` every trader submits one fresh order per unit it still holds: for
  unit ``k`` a price from its strategy (``traders.order_price``) with ``u = to_unit(
  draw_u64(auction_key(auction_key(round_key(run_key, round), c), trader), 1, k))``.
* Bids are sorted highest first, asks lowest first; ties keep (trader, unit) order
  (a stable sort), which decides who trades when marginal orders tie.
* The traded quantity ``q`` is the largest ``k`` with the k-th bid ``>=`` the k-th ask.
* The clearing price is the midpoint of the crossing interval
  ``[max(ask_q, bid_q+1), min(bid_q, ask_q+1)]`` (1-based; a missing ``bid_q+1`` or
  ``ask_q+1`` drops out). At that price exactly the top ``q`` bids and asks are willing.
* The k-th best bid is matched with the k-th best ask (``step`` in the trades table is the
  call's index). Unmatched orders expire; the period ends after its last call, or once one
  side has no units left.

Units are redeemed in order: a buyer with ``t`` units traded whose orders execute m times
in a call earns values ``t .. t+m-1`` (a seller pays those costs). With zi_c orders this
never makes a loss: the price is at most every executed bid, and some executed bid is for
unit ``t+m-1`` or later, whose value is at most that of any unit redeemed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.engine.rng import auction_key, draw_u64, round_key, to_unit
from bidscape.games.double_auction.traders import BUY, order_price, record_trade

STREAM_PRICE = 1


@njit(cache=True)
def call_round(run_key, round_index, side, strategy, units, values, price_low, price_high, calls,
               traded, out_step, out_price, out_buyer, out_seller, out_buyer_value, out_seller_cost):
    """Play one period of ``calls`` calls; same arrays and return value as ``continuous_round``."""
    n = side.shape[0]
    n_bids = 0
    n_asks = 0
    for i in range(n):
        traded[i] = 0
        if side[i] == BUY:
            n_bids += units[i]
        else:
            n_asks += units[i]
    bid_price = np.empty(n_bids)
    bid_owner = np.empty(n_bids, np.int64)
    ask_price = np.empty(n_asks)
    ask_owner = np.empty(n_asks, np.int64)
    key = round_key(run_key, round_index)
    n_trades = 0
    for call in range(calls):
        if n_bids == 0 or n_asks == 0:
            break
        call_key = auction_key(key, call)
        b = 0
        a = 0
        for i in range(n):
            trader_key = auction_key(call_key, i)
            for k in range(traded[i], units[i]):
                u = to_unit(draw_u64(trader_key, STREAM_PRICE, k))
                price = order_price(strategy[i], side[i], values[i, k], u, price_low, price_high)
                if side[i] == BUY:
                    bid_price[b] = price
                    bid_owner[b] = i
                    b += 1
                else:
                    ask_price[a] = price
                    ask_owner[a] = i
                    a += 1
        bid_order = np.argsort(-bid_price[:n_bids], kind="mergesort")
        ask_order = np.argsort(ask_price[:n_asks], kind="mergesort")
        q = 0
        while q < n_bids and q < n_asks and bid_price[bid_order[q]] >= ask_price[ask_order[q]]:
            q += 1
        if q == 0:
            continue
        low = ask_price[ask_order[q - 1]]
        if q < n_bids:
            low = max(low, bid_price[bid_order[q]])
        high = bid_price[bid_order[q - 1]]
        if q < n_asks:
            high = min(high, ask_price[ask_order[q]])
        price = 0.5 * (low + high)
        for k in range(q):
            n_trades = record_trade(n_trades, call, price, bid_owner[bid_order[k]], ask_owner[ask_order[k]], values,
                                    traded, out_step, out_price, out_buyer, out_seller, out_buyer_value,
                                    out_seller_cost)
        n_bids -= q
        n_asks -= q
    return n_trades

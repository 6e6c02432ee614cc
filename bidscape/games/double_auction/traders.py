"""Trader strategies of the market game, as integer ids the jitted kernels understand.

Each order is for one unit: a buyer's next unit has redemption value ``v``, a seller's next
unit costs ``c``. With ``u`` uniform on [0, 1) from the counter-based hash:

* ``zi_c`` (zero intelligence, budget-constrained; Gode & Sunder 1993): a buyer bids
  ``U[min(price_low, v), v]``, a seller asks ``U[c, max(price_high, c)]``. Never a loss.
* ``zi_u`` (zero intelligence, unconstrained): any price ``U[price_low, price_high]``,
  whatever the value or cost; may trade at a loss.
* ``truthful``: bid ``v`` / ask ``c`` (no draw).

The formula is ``low + u * (high - low)`` in every case, so the kernels and the plain-Python
reference compute the same floating-point numbers.
"""

from __future__ import annotations

from numba import njit

BUY = 0
SELL = 1
SIDES = {"buy": BUY, "sell": SELL}
SIDE_NAMES = ("buy", "sell")

ZI_C = 0
ZI_U = 1
TRUTHFUL = 2
STRATEGIES = {"zi_c": ZI_C, "zi_u": ZI_U, "truthful": TRUTHFUL}
STRATEGY_DESCRIPTIONS = {
    "zi_c": "zero intelligence, constrained: random prices that never make a loss "
            "(bid U[price_low, value], ask U[cost, price_high])",
    "zi_u": "zero intelligence, unconstrained: random prices U[price_low, price_high] whatever the value",
    "truthful": "bid the unit's value, ask the unit's cost",
}


@njit(cache=True, inline="always")
def order_price(strategy, side, value, u, price_low, price_high):
    """The price of one order for a unit worth ``value`` (a cost for sellers)."""
    if strategy == TRUTHFUL:
        return value
    if strategy == ZI_U:
        return price_low + u * (price_high - price_low)
    if side == BUY:
        low = min(price_low, value)
        return low + u * (value - low)
    high = max(price_high, value)
    return value + u * (high - value)


@njit(cache=True, inline="always")
def record_trade(n_trades, step, price, buyer, seller, values, traded, out_step, out_price, out_buyer, out_seller,
                 out_buyer_value, out_seller_cost):
    """Write trade ``n_trades`` (each side's value of the unit it trades) and count the units; returns the next index."""
    out_step[n_trades] = step
    out_price[n_trades] = price
    out_buyer[n_trades] = buyer
    out_seller[n_trades] = seller
    out_buyer_value[n_trades] = values[buyer, traded[buyer]]
    out_seller_cost[n_trades] = values[seller, traded[seller]]
    traded[buyer] += 1
    traded[seller] += 1
    return n_trades + 1

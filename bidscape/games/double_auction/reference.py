"""Plain-Python reference implementations of both market-game mechanisms.

Written for clarity, not speed: Python lists, ``sorted`` and the pure-Python twins of the
counter-based hash (``py_round_key`` and friends). The jitted kernels in ``continuous.py``
and ``call_market.py`` must return exactly the same trades (``tests/test_double_auction.py``).

Both functions take lists (or arrays) ``side``, ``strategy``, ``units`` and a table
``values[i][k]`` and return ``(trades, traded)``: a list of
``(step, price, buyer, seller, buyer_value, seller_cost)`` and the units traded per trader.
"""

from __future__ import annotations

from bidscape.engine.rng import py_auction_key, py_draw_u64, py_round_key, py_to_unit

BUY, SELL = 0, 1
ZI_C, ZI_U, TRUTHFUL = 0, 1, 2


def reference_price(strategy: int, side: int, value: float, u: float, price_low: float,
                    price_high: float) -> float:
    if strategy == TRUTHFUL:
        return value
    if strategy == ZI_U:
        return price_low + u * (price_high - price_low)
    if side == BUY:  # zi_c buyer: never bid above the value
        low = min(price_low, value)
        return low + u * (value - low)
    high = max(price_high, value)  # zi_c seller: never ask below the cost
    return value + u * (high - value)


def reference_continuous(run_key: int, round_index: int, side, strategy, units, values,
                         price_low: float, price_high: float, steps: int):
    """Gode-Sunder CDA: one standing bid and ask, trade at the standing price, book cleared."""
    n = len(side)
    traded = [0] * n
    active = [i for i in range(n) if units[i] > 0]
    key = py_round_key(int(run_key), int(round_index))
    best_bid = None  # (price, trader)
    best_ask = None
    trades = []
    for step in range(steps):
        if not any(side[i] == BUY for i in active) or not any(side[i] == SELL for i in active):
            break
        step_key = py_auction_key(key, step)
        slot = min(int(py_to_unit(py_draw_u64(step_key, 0, 0)) * len(active)), len(active) - 1)
        trader = active[slot]
        u = py_to_unit(py_draw_u64(step_key, 1, 0))
        price = reference_price(int(strategy[trader]), int(side[trader]), float(values[trader][traded[trader]]),
                                u, price_low, price_high)
        deal = None
        if side[trader] == BUY:
            if best_ask is not None and price >= best_ask[0]:
                deal = (trader, best_ask[1], best_ask[0])
            elif best_bid is None or price > best_bid[0]:
                best_bid = (price, trader)
        else:
            if best_bid is not None and price <= best_bid[0]:
                deal = (best_bid[1], trader, best_bid[0])
            elif best_ask is None or price < best_ask[0]:
                best_ask = (price, trader)
        if deal is None:
            continue
        buyer, seller, price = deal
        trades.append((step, price, buyer, seller, float(values[buyer][traded[buyer]]),
                       float(values[seller][traded[seller]])))
        best_bid = best_ask = None
        for who in (buyer, seller):
            traded[who] += 1
            if traded[who] == units[who]:
                where = active.index(who)
                active[where] = active[-1]  # swap-remove, as the kernel does
                active.pop()
    return trades, traded


def reference_call(run_key: int, round_index: int, side, strategy, units, values,
                   price_low: float, price_high: float, calls: int):
    """Uniform-price calls: fresh orders for every unit left, price at the crossing interval's midpoint."""
    n = len(side)
    key = py_round_key(int(run_key), int(round_index))
    traded = [0] * n
    trades = []
    for call in range(calls):
        units_left = {s: sum(int(units[i]) - traded[i] for i in range(n) if side[i] == s) for s in (BUY, SELL)}
        if units_left[BUY] == 0 or units_left[SELL] == 0:
            break
        call_key = py_auction_key(key, call)
        bids, asks = [], []
        for i in range(n):
            trader_key = py_auction_key(call_key, i)
            for k in range(traded[i], int(units[i])):
                u = py_to_unit(py_draw_u64(trader_key, 1, k))
                price = reference_price(int(strategy[i]), int(side[i]), float(values[i][k]), u,
                                        price_low, price_high)
                (bids if side[i] == BUY else asks).append((price, i, k))
        bids = sorted(bids, key=lambda order: (-order[0], order[1], order[2]))
        asks = sorted(asks, key=lambda order: (order[0], order[1], order[2]))
        q = 0
        while q < min(len(bids), len(asks)) and bids[q][0] >= asks[q][0]:
            q += 1
        if q == 0:
            continue
        low = max([asks[q - 1][0]] + ([bids[q][0]] if q < len(bids) else []))
        high = min([bids[q - 1][0]] + ([asks[q][0]] if q < len(asks) else []))
        price = 0.5 * (low + high)
        for k in range(q):
            buyer, seller = bids[k][1], asks[k][1]
            trades.append((call, price, buyer, seller, float(values[buyer][traded[buyer]]),
                           float(values[seller][traded[seller]])))
            traded[buyer] += 1
            traded[seller] += 1
    return trades, traded

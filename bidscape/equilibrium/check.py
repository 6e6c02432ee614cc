"""Verify the pacing-equilibrium conditions of a candidate and report their residuals; build a
solver's ``Equilibrium`` with them."""

from __future__ import annotations

import numpy as np

from bidscape.equilibrium import _kernels as K
from bidscape.equilibrium.market import PacingMarket
from bidscape.equilibrium.result import Allocation, Equilibrium, Residuals

_TINY = 1e-300


def check(market: PacingMarket, equilibrium: Equilibrium) -> Residuals:
    """Residuals of the pacing-equilibrium conditions of ``equilibrium`` in ``market``.

    Recomputes spend and sales from the allocation and prices (it does not trust the stored
    ``spend``) and the highest paced bids from ``alpha`` and the values. For ``kind == "fppe"``
    the price of a good must be its highest paced bid, for ``"sppe"`` its second-highest
    (a tie at the top makes the second-highest equal to the highest). See ``Residuals`` for
    the definitions; ``check(...).ok(tol)`` tests them all against ``tol``.
    """
    n, m = market.values.shape
    a = equilibrium.allocation
    if a.shape != (n, m) or equilibrium.alpha.shape != (n,) or equilibrium.prices.shape != (m,):
        raise ValueError(f"equilibrium has shapes alpha {equilibrium.alpha.shape}, prices "
                         f"{equilibrium.prices.shape}, allocation {a.shape} but the market is "
                         f"{n} x {m}. Fix: check it against the market it was solved for.")
    spend, _, sold = K.coo_totals(n, m, a.bidder, a.good, a.quantity, equilibrium.prices,
                                  market.values)
    return check_parts(market, equilibrium.kind, equilibrium.alpha, equilibrium.prices, a,
                       spend, sold)


def check_parts(market: PacingMarket, kind: str, alpha: np.ndarray, prices: np.ndarray,
                alloc: Allocation, spend: np.ndarray, sold: np.ndarray) -> Residuals:
    if kind not in ("fppe", "sppe"):
        raise ValueError(f"kind={kind!r} is unknown. Fix: use 'fppe' or 'sppe'.")
    v, B, s = market.values, market.budgets, market.supply
    m = v.shape[1]
    first = np.empty(m)
    second = np.empty(m)
    arg1 = np.empty(m, np.int64)
    count = np.empty(m, np.int64)
    a_clip = np.clip(alpha, 0.0, 1.0)
    K.top_two_bids(v, a_clip, first, second, arg1, count, 0.0)
    first = np.maximum(first, 0.0)
    target = first if kind == "fppe" else second

    over = np.max(np.maximum(spend - B, 0.0) / B, initial=0.0)
    paced = alpha < 1.0
    unnec = np.max(np.maximum(B - spend, 0.0)[paced] / B[paced], initial=0.0)
    # Unsold supply is measured in money, as a share of the value of all priced supply: with
    # many small goods, a search whose budgets are off by 1e-4 leaves that 1e-4 of the market
    # unsold on a few goods, which per good would read as 0.6.
    priced = prices > 0.0
    priced_value = float(np.sum(prices[priced] * s[priced]))
    unsold_value = float(np.sum(prices[priced] * np.maximum(s - sold, 0.0)[priced]))
    unsold = unsold_value / priced_value if priced_value > 0.0 else 0.0
    overalloc = np.max(np.maximum(sold - s, 0.0) / s, initial=0.0)
    pos = alloc.quantity > 0.0
    bi, gj = alloc.bidder[pos], alloc.good[pos]
    if bi.size:
        h = first[gj]
        bids = a_clip[bi] * v[bi, gj]
        gap = np.where(h > 0.0, (h - bids) / np.maximum(h, _TINY), 0.0)
        nonhigh = float(max(np.max(gap), 0.0))
    else:
        nonhigh = 0.0
    mismatch = np.max(np.abs(prices - target) / np.maximum(target, _TINY), initial=0.0)
    bounds = float(max(np.max(alpha - 1.0, initial=0.0), np.max(-alpha, initial=0.0), 0.0))
    negq = float(max(-np.min(alloc.quantity, initial=0.0), 0.0))
    return Residuals(float(over), float(unnec), float(unsold), float(overalloc), nonhigh,
                     float(mismatch),
                     bounds, negq)


def build_equilibrium(market: PacingMarket, kind: str, alpha, prices, bidder, good, quantity,
                      iterations: int, tol: float, info: dict | None = None) -> Equilibrium:
    n, m = market.values.shape
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    prices = np.ascontiguousarray(prices, dtype=np.float64)
    alloc = Allocation(np.ascontiguousarray(bidder, dtype=np.int64),
                       np.ascontiguousarray(good, dtype=np.int64),
                       np.ascontiguousarray(quantity, dtype=np.float64), (n, m))
    spend, value, sold = K.coo_totals(n, m, alloc.bidder, alloc.good, alloc.quantity, prices,
                                      market.values)
    B = market.budgets
    delta = np.maximum(B - spend, 0.0)
    u = value + delta
    with np.errstate(divide="ignore"):
        nsw = float(np.sum(B * np.log(u)) - delta.sum())
    res = check_parts(market, kind, alpha, prices, alloc, spend, sold)
    return Equilibrium(kind=kind, alpha=alpha, prices=prices, allocation=alloc, spend=spend,
                       value=value, utility=value - spend, revenue=float(spend.sum()),
                       nash_social_welfare=nsw, iterations=int(iterations), residuals=res,
                       converged=res.ok(tol), info=dict(info or {}))

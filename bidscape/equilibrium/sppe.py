"""Search for a second-price pacing equilibrium (SPPE) by adaptive-pacing dynamics.

An SPPE has the FPPE's conditions except that a good's price is its second-highest paced
bid. SPPEs always exist but can be many, and finding one is PPAD-hard (Chen, Kroer & Kumar
2021), so this is a search, not a solver: multiplicative adaptive pacing (in the spirit of
Balseiro & Gur 2019), alpha_i <- clip(alpha_i exp(-eta_t (spend_i - B_i) / B_i), floor, 1)
with a decaying step eta_t, starting from a seeded random point. The point with the smallest
residual and the (log-)average of the second half of the run are then "snapped": bidders
whose paced bids are within a tolerance of the top bid of a good are made exactly tied, and a
max flow splits tied goods so that paced bidders spend their budgets exactly. The result is
whichever candidate has the smallest ``check`` residual; ``converged`` says whether all of
them met ``tol``: an SPPE up to ``tol``, with budgets measured per bidder against its own
budget and unsold supply as a share of the value of all priced supply (see ``Residuals``).
With many small goods the dynamics reach budget errors of ~1e-3..1e-4, not 1e-9: pass a
``tol`` such as 1e-3 to accept such an approximate SPPE.
"""

from __future__ import annotations

import numpy as np

from bidscape.equilibrium import _kernels as K
from bidscape.equilibrium.check import build_equilibrium
from bidscape.equilibrium.market import PacingMarket
from bidscape.equilibrium.result import Equilibrium


def _cheap_residual(alpha, spend, B):
    r = (spend - B) / B
    over = np.max(r, initial=0.0)
    paced = alpha < 1.0
    under = np.max(-r[paced], initial=0.0)
    return max(over, under, 0.0)


def _candidate(market, alpha, rtol, iterations, tol):
    """Allocation at ``alpha``: bids within ``rtol`` of the top are snapped into an exact tie
    (the lower bidders raised to the top bid), tied goods split by max flow."""
    v, B, s = market.values, market.budgets, market.supply
    n, m = v.shape
    alpha = alpha.copy()
    first = np.empty(m)
    second = np.empty(m)
    arg1 = np.empty(m, np.int64)
    count = np.empty(m, np.int64)
    if rtol > 0:
        K.top_two_bids(v, alpha, first, second, arg1, count, rtol)
        ei, ej = K.tight_edges(v, alpha, np.maximum(first, 0.0), rtol)
        for i, j in zip(ei, ej):  # raise near-top bids to the top (only ever up, capped at 1)
            if v[i, j] > 0:
                alpha[i] = min(1.0, max(alpha[i], first[j] / v[i, j]))
    K.top_two_bids(v, alpha, first, second, arg1, count, 0.0)
    first = np.maximum(first, 0.0)
    ei, ej = K.tight_edges(v, alpha, first, 1e-13)
    prices = np.where(count >= 2, first, second)
    prices = np.where(first > 0, prices, 0.0)
    paced = alpha < 1.0
    flow, _, per_good = K.split_money(n, m, ei, ej, B, paced, s * prices)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(prices[ej] > 0, flow / prices[ej], 0.0)
    # goods with a zero price: give them to their top bidder (allowed, costs nothing)
    free = np.flatnonzero((prices == 0) & (first > 0))
    bi = np.concatenate((ei, arg1[free]))
    gj = np.concatenate((ej, free))
    q = np.concatenate((x, s[free]))
    keep = q > 0
    return build_equilibrium(market, "sppe", alpha, prices, bi[keep], gj[keep], q[keep],
                             iterations, tol)


def solve_sppe(market: PacingMarket, seed: int = 0, max_iter: int = 2000, *, step: float = 0.5,
               tol: float = 1e-9, alpha_floor: float = 1e-6) -> Equilibrium:
    """Search for a second-price pacing equilibrium; deterministic given ``seed``.

    Returns the best point found (``kind="sppe"``) with its residuals; ``converged`` is True
    only when every residual is <= ``tol`` (then it is an SPPE up to ``tol``, residuals
    scaled as in ``Residuals``). The dynamics stop early once their budget error is <= tol.
    ``info`` holds the best budget error of the raw dynamics (``dynamics_residual``) and
    the snapping tolerance that won.
    """
    if not isinstance(market, PacingMarket):
        raise TypeError(f"market must be a PacingMarket, got {type(market).__name__}. "
                        "Fix: wrap values and budgets in PacingMarket(values, budgets).")
    if max_iter < 1 or step <= 0:
        raise ValueError(f"max_iter={max_iter}, step={step}: both must be positive. "
                         "Fix: use e.g. max_iter=2000, step=0.5.")
    v, B, s = market.values, market.budgets, market.supply
    n, m = v.shape
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.5, 1.0, n)
    first = np.empty(m)
    second = np.empty(m)
    arg1 = np.empty(m, np.int64)
    count = np.empty(m, np.int64)
    best_alpha, best_r, best_t = alpha.copy(), np.inf, 0
    log_sum = np.zeros(n)
    n_avg = 0
    for t in range(max_iter):
        if t >= max_iter // 2:  # Polyak average (in logs) of the second half of the run
            log_sum += np.log(alpha)
            n_avg += 1
        K.top_two_bids(v, alpha, first, second, arg1, count, 0.0)
        spend = K.sppe_spend(v, alpha, s, first, second, arg1)
        r = _cheap_residual(alpha, spend, B)
        if r < best_r:
            best_alpha, best_r, best_t = alpha.copy(), r, t
            if r <= tol:
                break
        eta = step / np.sqrt(1.0 + t / 10.0)
        g = np.clip((spend - B) / B, -1.0, 1.0)
        alpha = np.clip(alpha * np.exp(-eta * g), alpha_floor, 1.0)
    iters = t + 1
    starts = [("best", best_alpha)]
    if n_avg:
        starts.append(("average", np.exp(log_sum / n_avg)))
    best = None
    for name, start in starts:
        for rtol in (0.0, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2):
            eq = _candidate(market, start, rtol, iters, tol)
            if best is None or eq.residuals.max() < best.residuals.max():
                best, best_rtol, best_start = eq, rtol, name
            if eq.converged:
                break
        if best.converged:
            break
    object.__setattr__(best, "info", dict(dynamics_residual=float(best_r), best_iteration=best_t,
                                          snap_rtol=best_rtol, start=best_start, seed=seed))
    return best

"""First-price pacing equilibrium (FPPE): proportional response, then an exact polish.

The FPPE of a market is unique and equals the equilibrium of a quasi-linear Fisher market,
the solution of the Eisenberg-Gale-type program (Conitzer, Kroer et al. 2022)

    dual:  min_{0 < beta <= 1}  sum_j s_j max_i beta_i v_ij - sum_i B_i log beta_i,

with alpha = beta and prices p_j = max_i alpha_i v_ij.

Algorithm (``solve_fppe``):

1. Proportional response (PR) dynamics for quasi-linear utilities, a mirror-descent method
   on the Shmyrev-type program of the same market (Gao & Kroer 2020): every bidder splits
   its budget over goods in proportion to the value it got from each, keeping money when its
   bang per buck is below 1. A few dense steps (numba, parallel) locate the competitive
   bidders of every good; the rest is pruned and PR continues on the sparse candidate edges.
2. Exact polish: the surviving bids reveal the tie structure (which bidders share which
   goods, which bidders are unpaced). Along a maximum spanning forest of that structure tied
   paced bids are equal and every all-paced tree spends exactly its budgets, which fixes all
   alphas in closed form; a max flow then splits the tied goods so that paced bidders spend
   their budgets exactly. The candidate is accepted when ``check`` passes at ``tol`` (dense,
   over all bidders, so pruning cannot hide a higher bid); otherwise PR runs longer, edges
   found to be competitive are added back, and the polish is tried again.
"""

from __future__ import annotations

import time

import numpy as np

from bidscape.equilibrium import _kernels as K
from bidscape.equilibrium.market import PacingMarket
from bidscape.equilibrium.result import Equilibrium, build_equilibrium



def _initial_bids(v: np.ndarray, B: np.ndarray, s: np.ndarray) -> np.ndarray:
    mass = v @ s
    scale = np.divide(B, mass, out=np.zeros_like(B), where=mass > 0)
    return v * s[None, :] * scale[:, None]


def polish(market: PacingMarket, ptr, bidder, val, money, unpaced, tau_share: float):
    """One exact polish attempt; returns (alpha, prices, (i, j, x), tight edges) or None."""
    v, B, s = market.values, market.budgets, market.supply
    n, m = v.shape
    alpha, ok = K.alphas_from_structure(ptr, bidder, val, money, unpaced.astype(np.float64), B, s,
                                        tau_share, 0.5)
    if not ok:
        return None
    p = np.empty(m)
    arg = np.empty(m, np.int64)
    K.max_bids(v, alpha, p, arg)
    p = np.maximum(p, 0.0)
    ei, ej = K.tight_edges(v, alpha, p, 1e-11)
    paced = alpha < 1.0
    flow, _, _ = K.split_money(n, m, ei, ej, B, paced, s * p)
    x = flow / p[ej]
    keep = x > 0.0
    return alpha, p, (ei[keep], ej[keep], x[keep]), (ei, ej)


class _Barrier:
    """Log-barrier Newton method on the dual in (beta, p), p minimised out good by good."""

    def __init__(self, ptr, bidder, val, B, s):
        self.ptr, self.bidder, self.val, self.B, self.s = ptr, bidder, val, B, s
        self.n = B.shape[0]
        self.p = np.empty(s.shape[0])

    def value(self, beta, mu):
        if np.any(beta <= 0.0) or np.any(beta >= 1.0):
            return np.inf
        bar = K.barrier_prices(self.ptr, self.bidder, self.val, beta, self.s, mu, self.p)
        return bar - np.sum(self.B * np.log(beta)) - mu * np.sum(np.log1p(-beta))

    def center(self, beta, mu, max_newton=12):
        """Newton steps at fixed mu until the (scaled) Newton decrement is tiny."""
        n = self.n
        H = np.empty((n, n))
        grad = np.empty(n)
        share = np.empty(self.bidder.shape[0])
        steps = 0
        f = self.value(beta, mu)
        for _ in range(max_newton):
            K.barrier_newton_system(self.ptr, self.bidder, self.val, beta, self.B, self.s, mu,
                                    self.p, H, grad, share)
            try:
                d = -np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                break
            steps += 1
            lam2 = -float(grad @ d) / mu
            if not np.isfinite(lam2) or lam2 < 1e-10:
                break
            # largest step keeping 0 < beta < 1
            tmax = 1.0
            neg = d < 0
            if np.any(neg):
                tmax = min(tmax, 0.99 * float(np.min(-beta[neg] / d[neg])))
            pos = d > 0
            if np.any(pos):
                tmax = min(tmax, 0.99 * float(np.min((1.0 - beta[pos]) / d[pos])))
            t = tmax
            if lam2 < 0.06 and tmax == 1.0:  # quadratic region of a self-concordant function
                beta = beta + d
                f = self.value(beta, mu)
            else:
                while t > 1e-12:
                    fn = self.value(beta + t * d, mu)
                    if fn <= f - 0.25 * t * lam2 * mu:
                        break
                    t *= 0.5
                beta = beta + t * d
                f = self.value(beta, mu)
            if lam2 < 1e-5:
                break
        self.value(beta, mu)
        K.barrier_newton_system(self.ptr, self.bidder, self.val, beta, self.B, self.s, mu,
                                self.p, H, grad, share)
        return beta, share, steps


def solve_fppe(market: PacingMarket, tol: float = 1e-9, max_iter: int = 400, *,
               dense_iter: int = 60, prune: float = 0.02) -> Equilibrium:
    """The first-price pacing equilibrium of ``market``.

    ``tol``: accept the first polished candidate whose ``check`` residuals are all <= tol
    (they are typically ~1e-15: the polish is exact once the tie structure is right).
    ``max_iter``: cap on Newton steps; if no candidate passes, the best one found is returned
    with ``converged=False`` and its residuals. ``dense_iter``: proportional-response steps
    on the full matrix (the warm start); ``prune``: keep edge (i, j) while alpha_i v_ij is
    within a factor (1 - prune) of the best paced bid on j (pruned edges found to be
    competitive later are added back). ``iterations`` in the result counts PR steps plus
    Newton steps; ``info`` records timings and the number of candidate edges.
    """
    if not isinstance(market, PacingMarket):
        raise TypeError(f"market must be a PacingMarket, got {type(market).__name__}. "
                        "Fix: wrap values and budgets in PacingMarket(values, budgets).")
    if not (tol > 0):
        raise ValueError(f"tol={tol} must be positive. Fix: use e.g. 1e-9.")
    t0 = time.perf_counter()
    v, B, s = market.values, market.budgets, market.supply
    n, m = v.shape
    b = _initial_bids(v, B, s)
    beta = np.ones(n)
    p = np.empty(m)
    T0 = max(1, dense_iter)
    K.pr_dense(v, B, s, b, T0, beta, p)
    ptr, bidder, val, _ = K.candidates_from_dense(v, b, beta, prune)
    del b
    t_dense = time.perf_counter() - t0
    newton = 0
    best = None
    rounds = 0
    beta = np.clip(beta, 1e-6, 1.0 - 1e-3)
    total_budget = float(B.sum())
    mu = 1e-2 * total_budget / (bidder.shape[0] + n)
    while True:
        solver = _Barrier(ptr, bidder, val, B, s)
        beta, share, steps = solver.center(beta, mu)
        newton += steps
        N = bidder.shape[0] + n
        goods_of_edge = np.repeat(np.arange(m), np.diff(ptr))
        if mu * N <= 1e-3 * total_budget:
            # edges holding a negligible share of their good are far below its price: drop them
            # (the dense verification in the polish adds back any that turn out competitive)
            keep = share > 1e-9 * s[goods_of_edge]
            if not keep.all():
                ptr = np.concatenate(([0], np.cumsum(np.bincount(goods_of_edge[keep], minlength=m))))
                bidder, val, share = bidder[keep], val[keep], share[keep]
                goods_of_edge = goods_of_edge[keep]
                solver = _Barrier(ptr, bidder, val, B, s)
                solver.value(beta, mu)
        if mu * N <= 1e-5 * total_budget:
            rounds += 1
            money = share * solver.p[goods_of_edge]
            unpaced = mu / (1.0 - beta) > 1e-6 * B
            added = False
            for ts in (1e-4, 1e-7):
                out = polish(market, ptr, bidder, val, money, unpaced, ts)
                if out is None:
                    continue
                alpha, prices, (ei, ej, x), (ti, tj) = out
                eq = build_equilibrium(market, "fppe", alpha, prices, ei, ej, x, T0 + newton, tol)
                if best is None or eq.residuals.max() < best.residuals.max():
                    best = eq
                if eq.converged:
                    break
                nnz = bidder.shape[0]
                ptr, bidder, val, _ = K.merge_edges(ptr, bidder, val, np.zeros(nnz), ti, tj, v, s,
                                                    prices, 0.0)
                added = added or bidder.shape[0] > nnz
            if best is not None and best.converged:
                break
            if added:  # new competitive edges: re-centre from a larger mu
                mu *= 100.0
                continue
        if newton >= max_iter or mu * N < 1e-14 * float(B.min()):
            break
        mu *= 0.1
    if best is None:  # the polish never produced a candidate: report the barrier point itself
        alpha = beta.copy()
        prices = np.empty(m)
        arg = np.empty(m, np.int64)
        K.max_bids(v, alpha, prices, arg)
        prices = np.maximum(prices, 0.0)
        good = np.flatnonzero(prices > 0)
        best = build_equilibrium(market, "fppe", alpha, prices, arg[good], good, s[good],
                                 T0 + newton, tol)
    info = dict(best.info, seconds=time.perf_counter() - t0, dense_seconds=t_dense,
                candidate_edges=int(bidder.shape[0]), polish_rounds=rounds,
                newton_steps=newton, final_mu=mu)
    object.__setattr__(best, "info", info)
    return best

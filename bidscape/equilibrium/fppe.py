"""First-price pacing equilibrium (FPPE): proportional response, then an exact polish.

The FPPE of a market is unique and equals the equilibrium of a quasi-linear Fisher market,
the solution of the Eisenberg-Gale-type program (Conitzer, Kroer et al. 2022)

    dual:  min_{0 < beta <= 1}  sum_j s_j max_i beta_i v_ij - sum_i B_i log beta_i,

with alpha = beta and prices p_j = max_i alpha_i v_ij.

Algorithm (``solve_fppe``):

0. Budgets above what a bidder could ever pay (sum_j s_j v_ij) are capped there: such a
   bidder is unpaced in every FPPE, so the FPPE is unchanged, and the budgets the solver
   sees span at most the ratio of what bidders can actually spend.
1. Proportional response (PR) dynamics for quasi-linear utilities, a mirror-descent method
   on the Shmyrev-type program of the same market (Gao & Kroer 2020): every bidder splits
   its budget over goods in proportion to the value it got from each, keeping money when its
   bang per buck is below 1. A few dense steps (numba, parallel) locate the competitive
   bidders of every good; the rest is pruned.
2. A log-barrier Newton method on the dual over the candidate edges (``dual_barrier``), each
   bidder's barrier weighted by its budget so that a budget 1e-8 of the others' is resolved
   as well as theirs; mu falls by 10 per centring.
3. Exact polish (``tie_structure``): the barrier's allocation reveals the tie structure
   (which bidders share which goods, which are unpaced). Along a maximum spanning forest of
   that structure tied paced bids are equal and every all-paced tree spends exactly its
   budgets, which fixes all alphas in closed form; a max flow then splits the tied goods so
   that paced bidders spend their budgets exactly. The candidate is accepted when ``check``
   passes at ``tol`` (dense, over all bidders, so pruning cannot hide a higher bid);
   otherwise the barrier continues, edges found to be competitive are added back, and the
   polish is tried again.
"""

from __future__ import annotations

import time

import numpy as np

from bidscape.equilibrium import _kernels as K
from bidscape.equilibrium.check import build_equilibrium
from bidscape.equilibrium.dual_barrier import DualBarrier
from bidscape.equilibrium.market import PacingMarket
from bidscape.equilibrium.result import Equilibrium
from bidscape.equilibrium.tie_structure import polish


def _initial_bids(v: np.ndarray, B: np.ndarray, s: np.ndarray) -> np.ndarray:
    mass = v @ s
    scale = np.divide(B, mass, out=np.zeros_like(B), where=mass > 0)
    return v * s[None, :] * scale[:, None]


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
    v, s = market.values, market.supply
    n, m = v.shape
    # A bidder never pays more than its values (price = alpha v <= v), so a budget above
    # sum_j s_j v_ij never binds: such a bidder is unpaced in every FPPE, and capping its
    # budget there leaves the FPPE unchanged. Solving with capped budgets keeps a budget 1e8
    # times the others' from setting the scale of the barrier and of the warm start.
    most_spend = v @ s
    B = np.where(most_spend > 0, np.minimum(market.budgets, most_spend), market.budgets)
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
    # barrier weights in units of the mean budget: every bidder's central-path error is the
    # same fraction mu / mean(B) of its own budget (see dual_barrier)
    weight = B / B.mean()

    def barrier_mass():  # sum of the weights of all barrier terms: mu times it is the gap
        return float(weight @ (np.bincount(bidder, minlength=n) + 1.0))

    mu = 1e-2 * total_budget / barrier_mass()
    while True:
        solver = DualBarrier(ptr, bidder, val, B, s, weight)
        beta, share, steps = solver.center(beta, mu)
        newton += steps
        goods_of_edge = np.repeat(np.arange(m), np.diff(ptr))
        gap = mu * barrier_mass()
        if gap <= 1e-3 * total_budget:
            # edges holding a negligible share of their good and of their bidder's budget are
            # far below the good's price: drop them (the dense verification in the polish adds
            # back any that turn out competitive)
            money = share * solver.p[goods_of_edge]
            keep = (share > 1e-9 * s[goods_of_edge]) | (money > 1e-9 * B[bidder])
            if not keep.all():
                ptr = np.concatenate(([0], np.cumsum(np.bincount(goods_of_edge[keep], minlength=m))))
                bidder, val, share = bidder[keep], val[keep], share[keep]
                goods_of_edge = goods_of_edge[keep]
                solver = DualBarrier(ptr, bidder, val, B, s, weight)
                solver.value(beta, mu)
        if gap <= 1e-5 * total_budget:
            rounds += 1
            money = share * solver.p[goods_of_edge]
            # unspent budget mu w_i beta_i / (1 - beta_i), as a share of B_i
            unpaced = mu * weight / (1.0 - beta) > 1e-6 * B
            added = False
            for tau_share in (1e-4, 1e-7):
                out = polish(market, B, ptr, bidder, val, money, unpaced, tau_share)
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
        if newton >= max_iter or gap < 1e-14 * total_budget:
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

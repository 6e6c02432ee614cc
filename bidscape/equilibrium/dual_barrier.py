"""Log-barrier Newton method on the FPPE dual, with each bidder's barrier scaled by its budget.

The dual of the FPPE (Conitzer, Kroer et al. 2022) over sparse candidate edges (i, j) is

    min_{beta, p}  sum_j s_j p_j - sum_i B_i log beta_i
    s.t.  p_j >= beta_i v_ij  for every edge,   beta_i <= 1.

The barrier adds -mu w_i log(p_j - beta_i v_ij) per edge and -mu w_i log(1 - beta_i) per
bidder, with w_i = B_i / mean(B). The implied allocation is x_ij = mu w_i / (p_j - beta_i v_ij)
and bidder i's unspent budget mu w_i beta_i / (1 - beta_i), so the error every bidder sees
along the central path is the same fraction (mu / mean(B)) of its own budget. With one
common weight, a bidder whose budget is 1e-8 of the others' would be dominated by the barrier
until mu fell below its budget, and its beta would be pushed to 0 on the way.

p is minimised out good by good (a 1-d convex equation), leaving a function of beta whose
gradient and Hessian the kernels below assemble.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def barrier_prices(ptr, bidder, val, beta, s, mu, weight, p, slack):
    """For each good, the p_j > max_i beta_i v_ij solving s_j = sum_i mu w_i / (p_j - beta_i v_ij)
    (the minimiser of s_j p_j - sum_i mu w_i log(p_j - beta_i v_ij)); returns the barrier value
    summed over goods. ``slack[j]`` gets p_j - max_i beta_i v_ij: kept on its own because a
    tiny bidder's slack (~ mu w_i / s_j) can be below the rounding of p_j itself."""
    m = ptr.shape[0] - 1
    total = 0.0
    for j in range(m):
        k0 = ptr[j]
        k1 = ptr[j + 1]
        if k1 == k0:
            p[j] = 0.0
            slack[j] = 0.0
            continue
        top_bid = 0.0
        for k in range(k0, k1):
            top_bid = max(top_bid, beta[bidder[k]] * val[k])
        # t = p - top_bid. Any single edge alone reaches s_j at t = mu w_i / s_j - gap_i, so
        # the largest such t has h(t) >= 0 below; from there Newton on the convex decreasing
        # h increases t monotonically to the root (and starts near it even when the top
        # bidder's weight is tiny).
        t = 0.0
        for k in range(k0, k1):
            t = max(t, mu * weight[bidder[k]] / s[j] - (top_bid - beta[bidder[k]] * val[k]))
        for _ in range(200):
            h = -s[j]
            dh = 0.0
            for k in range(k0, k1):
                g = t + (top_bid - beta[bidder[k]] * val[k])
                c = mu * weight[bidder[k]]
                h += c / g
                dh += c / (g * g)
            step = h / dh
            t += step
            if step <= 1e-15 * t:
                break
        p[j] = top_bid + t
        slack[j] = t
        acc = s[j] * p[j]
        for k in range(k0, k1):
            acc -= mu * weight[bidder[k]] * np.log(t + (top_bid - beta[bidder[k]] * val[k]))
        total += acc
    return total


@njit(cache=True)
def barrier_newton_system(ptr, bidder, val, beta, B, s, mu, weight, slack, H, grad, share):
    """Gradient and Hessian in beta of the reduced barrier function (p at its optimum, as
    ``barrier_prices`` left it in ``slack``); ``share[k]`` gets the implied allocation of
    edge k."""
    m = ptr.shape[0] - 1
    n = B.shape[0]
    H[:, :] = 0.0
    for i in range(n):
        c = mu * weight[i]
        grad[i] = -B[i] / beta[i] + c / (1.0 - beta[i])
        H[i, i] = B[i] / (beta[i] * beta[i]) + c / ((1.0 - beta[i]) * (1.0 - beta[i]))
    longest = 0
    for j in range(m):
        longest = max(longest, ptr[j + 1] - ptr[j])
    curv = np.empty(longest)  # d^2 / d p_j^2 of each edge's barrier term, mu w_i / g^2
    for j in range(m):
        k0 = ptr[j]
        k1 = ptr[j + 1]
        if k1 == k0:
            continue
        top_bid = 0.0
        for k in range(k0, k1):
            top_bid = max(top_bid, beta[bidder[k]] * val[k])
        t = slack[j]
        d_pp = 0.0
        for k in range(k0, k1):
            i = bidder[k]
            g = t + (top_bid - beta[i] * val[k])
            c = mu * weight[i]
            share[k] = c / g
            grad[i] += c * val[k] / g
            curv[k - k0] = c / (g * g)
            d_pp += curv[k - k0]
        # Eliminating p_j (Schur complement) couples the bidders on good j:
        # H_ab += v_a v_b (curv_a [a == b] - curv_a curv_b / d_pp). On the diagonal this is
        # curv_a v_a^2 (d_pp - curv_a) / d_pp, summed over the *other* edges rather than
        # subtracted: when one edge dominates d_pp (a tiny bidder alone at the top of a good)
        # the subtraction would cancel to rounding noise larger than B_i / beta_i^2.
        for a in range(k1 - k0):
            ia = bidder[k0 + a]
            others = 0.0
            for b in range(k1 - k0):
                if b != a:
                    others += curv[b]
                    H[ia, bidder[k0 + b]] -= curv[a] * val[k0 + a] * curv[b] * val[k0 + b] / d_pp
            H[ia, ia] += curv[a] * val[k0 + a] * val[k0 + a] * (others / d_pp)


class DualBarrier:
    """The barrier function of one candidate edge set, and Newton centring at fixed mu."""

    def __init__(self, ptr: np.ndarray, bidder: np.ndarray, val: np.ndarray, budgets: np.ndarray,
                 supply: np.ndarray, weight: np.ndarray):
        self.ptr, self.bidder, self.val = ptr, bidder, val
        self.B, self.s, self.weight = budgets, supply, weight
        self.n = budgets.shape[0]
        self.p = np.empty(supply.shape[0])
        self.slack = np.empty(supply.shape[0])

    def value(self, beta: np.ndarray, mu: float) -> float:
        """The barrier function at ``beta`` (p minimised out, left in ``self.p``)."""
        if np.any(beta <= 0.0) or np.any(beta >= 1.0):
            return np.inf
        goods = barrier_prices(self.ptr, self.bidder, self.val, beta, self.s, mu, self.weight,
                               self.p, self.slack)
        return (goods - np.sum(self.B * np.log(beta))
                - mu * np.sum(self.weight * np.log1p(-beta)))

    def _system(self, beta, mu, H, grad, share):
        barrier_newton_system(self.ptr, self.bidder, self.val, beta, self.B, self.s, mu,
                              self.weight, self.slack, H, grad, share)

    def center(self, beta: np.ndarray, mu: float, max_newton: int = 12):
        """Newton steps at fixed mu until the Newton decrement is tiny; returns
        (beta, implied allocation per edge, Newton steps taken)."""
        n = self.n
        H = np.empty((n, n))
        grad = np.empty(n)
        share = np.empty(self.bidder.shape[0])
        steps = 0
        f = self.value(beta, mu)
        for _ in range(max_newton):
            self._system(beta, mu, H, grad, share)
            # rows of H scale with the budgets (1e-8 apart): solve the symmetrically
            # diagonal-scaled system, whose diagonal is 1
            scale = 1.0 / np.sqrt(np.diag(H))
            try:
                d = -scale * np.linalg.solve(H * scale[:, None] * scale[None, :], grad * scale)
            except np.linalg.LinAlgError:
                break
            steps += 1
            lam2 = -float(grad @ d) / mu
            if not np.isfinite(lam2) or lam2 < 1e-10:
                break
            tmax = 1.0  # the largest step keeping 0 < beta < 1
            neg = d < 0
            if np.any(neg):
                tmax = min(tmax, 0.99 * float(np.min(-beta[neg] / d[neg])))
            pos = d > 0
            if np.any(pos):
                tmax = min(tmax, 0.99 * float(np.min((1.0 - beta[pos]) / d[pos])))
            if lam2 < 0.06 and tmax == 1.0:  # quadratic region of a self-concordant function
                beta = beta + d
                f = self.value(beta, mu)
            else:
                t = tmax
                while t > 1e-12:
                    if self.value(beta + t * d, mu) <= f - 0.25 * t * lam2 * mu:
                        break
                    t *= 0.5
                beta = beta + t * d
                f = self.value(beta, mu)
            if lam2 < 1e-5:
                break
        self.value(beta, mu)
        self._system(beta, mu, H, grad, share)
        return beta, share, steps

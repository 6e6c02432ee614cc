"""Exact FPPE candidates from a guessed tie structure (the polish step of ``solve_fppe``).

Given approximate money flows on candidate edges (bidder i, good j), the bidders that share
goods form trees: along a tree, tied paced bids are equal (alpha_i v_ij = p_j = alpha_k v_kj),
bidders tied to the root are unpaced (alpha = 1), and a tree without the root is all-paced,
so its bidders spend exactly their budgets on its goods, which fixes its scale. That gives
every alpha in closed form; a max flow then splits tied goods so that paced bidders spend
their budgets exactly. ``check`` decides whether the guess was right.

An edge counts when it carries a noticeable share of its good's money *or* of its bidder's
budget: a bidder whose budget is 1e-8 of the others' buys 1e-8 of a good, invisible on the
good's scale but all of its own money.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bidscape.equilibrium import _kernels as K
from bidscape.equilibrium.market import PacingMarket


@njit(cache=True)
def _root_of(parent, x):
    r = x
    while parent[r] != r:
        r = parent[r]
    while parent[x] != r:  # path compression
        nx = parent[x]
        parent[x] = r
        x = nx
    return r


@njit(cache=True)
def alphas_from_structure(ptr, bidder, val, money, unpaced, B, s, tau_share):
    """Exact pacing multipliers for the tie structure that ``money`` suggests.

    Nodes: bidders 0..n-1, goods n..n+m-1 and a root n+m. Edges: candidate (i, j) whose money
    exceeds ``tau_share`` of good j's money or of B_i (weight: the larger of the two shares),
    and (i, root) for bidders flagged ``unpaced`` (weight 2, taken first). A maximum spanning
    forest fixes the structure. Returns (alpha, ok); ok is False when some alpha would
    exceed 1 (the guess is inconsistent).
    """
    m = ptr.shape[0] - 1
    n = B.shape[0]
    root = n + m
    most = ptr[m] + n
    end_a = np.empty(most, np.int64)  # a bidder
    end_b = np.empty(most, np.int64)  # a good node or the root
    edge_value = np.empty(most)
    weight = np.empty(most)
    q = 0
    for i in range(n):
        if unpaced[i]:
            end_a[q] = i
            end_b[q] = root
            edge_value[q] = 1.0
            weight[q] = 2.0
            q += 1
    for j in range(m):
        good_money = 0.0
        for k in range(ptr[j], ptr[j + 1]):
            good_money += money[k]
        if good_money <= 0.0:
            continue
        for k in range(ptr[j], ptr[j + 1]):
            share = max(money[k] / good_money, money[k] / B[bidder[k]])
            if share > tau_share and val[k] > 0.0:
                end_a[q] = bidder[k]
                end_b[q] = n + j
                edge_value[q] = val[k]
                weight[q] = share
                q += 1
    end_a, end_b, edge_value, weight = end_a[:q], end_b[:q], edge_value[:q], weight[:q]
    order = np.argsort(-weight, kind="mergesort")
    parent = np.arange(n + m + 1)
    start = np.zeros(n + m + 2, np.int64)  # forest adjacency (CSR), counted first
    in_forest = np.zeros(q, np.bool_)
    for t in range(q):
        e = order[t]
        ra = _root_of(parent, end_a[e])
        rb = _root_of(parent, end_b[e])
        if ra != rb:
            parent[ra] = rb
            in_forest[e] = True
            start[end_a[e] + 1] += 1
            start[end_b[e] + 1] += 1
    for x in range(n + m + 1):
        start[x + 1] += start[x]
    neighbour = np.empty(start[n + m + 1], np.int64)
    neighbour_value = np.empty(start[n + m + 1])
    fill = start[: n + m + 1].copy()
    for e in range(q):
        if in_forest[e]:
            a = end_a[e]
            c = end_b[e]
            neighbour[fill[a]] = c
            neighbour_value[fill[a]] = edge_value[e]
            fill[a] += 1
            neighbour[fill[c]] = a
            neighbour_value[fill[c]] = edge_value[e]
            fill[c] += 1
    # walk each tree: level is alpha on bidder nodes and the price on good nodes
    level = np.full(n + m + 1, np.nan)
    seen = np.zeros(n + m + 1, np.bool_)
    queue = np.empty(n + m + 1, np.int64)
    alpha = np.ones(n)
    ok = True
    for first in range(n + 1):
        # the root first, then every unvisited bidder starts its own tree
        src = root if first == 0 else first - 1
        if seen[src]:
            continue
        seen[src] = True
        level[src] = 1.0
        head = 0
        tail = 1
        queue[0] = src
        while head < tail:
            x = queue[head]
            head += 1
            for t in range(start[x], start[x + 1]):
                y = neighbour[t]
                if seen[y]:
                    continue
                seen[y] = True
                if x == root or y == root:
                    level[y] = 1.0  # bidder tied to the root: alpha = 1
                elif x < n:  # bidder -> good: price = alpha v
                    level[y] = level[x] * neighbour_value[t]
                else:  # good -> bidder: alpha = price / v
                    level[y] = level[x] / neighbour_value[t]
                queue[tail] = y
                tail += 1
        if src != root:  # an all-paced tree spends exactly its budgets on its goods
            budget = 0.0
            goods_money = 0.0
            for t in range(tail):
                x = queue[t]
                if x < n:
                    budget += B[x]
                else:
                    goods_money += s[x - n] * level[x]
            scale = budget / goods_money if goods_money > 0.0 else 1.0 / level[src]
            for t in range(tail):
                level[queue[t]] *= scale
        for t in range(tail):
            x = queue[t]
            if x < n:
                if level[x] > 1.0 + 1e-12:
                    ok = False
                alpha[x] = min(level[x], 1.0)
    return alpha, ok


def polish(market: PacingMarket, budgets: np.ndarray, ptr: np.ndarray, bidder: np.ndarray,
           val: np.ndarray, money: np.ndarray, unpaced: np.ndarray, tau_share: float):
    """One exact candidate: returns (alpha, prices, (i, j, x) allocation, tight edges (i, j)),
    or None when the guessed structure is inconsistent. ``budgets`` may be the market's
    budgets capped at what each bidder could ever spend (the FPPE is the same)."""
    v, s = market.values, market.supply
    n, m = v.shape
    alpha, ok = alphas_from_structure(ptr, bidder, val, money, unpaced, budgets, s, tau_share)
    if not ok:
        return None
    prices = np.empty(m)
    arg = np.empty(m, np.int64)
    K.max_bids(v, alpha, prices, arg)
    prices = np.maximum(prices, 0.0)
    ei, ej = K.tight_edges(v, alpha, prices, 1e-11)
    paced = alpha < 1.0
    flow, per_bidder, _ = K.split_money(n, m, ei, ej, budgets, paced, s * prices)
    # The goods' money matches the paced budgets only up to rounding at the market's scale,
    # and the max flow leaves that deficit on whichever bidder it routes last: 1e-16 of the
    # market is 1e-8 of a budget 1e-8 of the others'. Paced bidders within rounding of their
    # budget are scaled to spend it exactly, moving the rounding onto the goods.
    rounded = paced & (np.abs(per_bidder - budgets) <= 1e-12 * budgets.sum()) & (per_bidder > 0)
    fix = np.ones(n)
    fix[rounded] = budgets[rounded] / per_bidder[rounded]
    x = flow * fix[ei] / prices[ej]
    keep = x > 0.0
    return alpha, prices, (ei[keep], ej[keep], x[keep]), (ei, ej)

"""numba kernels shared by the equilibrium solvers (no Python in the inner loops).

Conventions: ``v`` is the dense (n, m) value matrix, ``B`` the budgets, ``s`` the supplies.
Sparse edge sets are stored by good (CSR): ``ptr`` (m + 1), ``bidder`` and ``val`` per edge.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_CHUNK = 512


# --------------------------------------------------------------------------------------------
# proportional response dynamics for quasi-linear Fisher markets (dense and sparse)
# --------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def prices_from_bids(b, s, p):
    """p_j = sum_i b_ij / s_j, parallel over chunks of goods."""
    n, m = b.shape
    nch = (m + _CHUNK - 1) // _CHUNK
    for c in prange(nch):
        j0 = c * _CHUNK
        j1 = min(m, j0 + _CHUNK)
        for j in range(j0, j1):
            p[j] = 0.0
        for i in range(n):
            for j in range(j0, j1):
                p[j] += b[i, j]
        for j in range(j0, j1):
            p[j] /= s[j]


@njit(cache=True, parallel=True)
def pr_dense(v, B, s, b, iters, beta, p):
    """``iters`` proportional-response steps on dense bids ``b`` (in place).

    Quasi-linear PR: x_ij = b_ij / p_j, u_i = sum_j v_ij x_ij,
    b_ij <- B_i v_ij x_ij / max(u_i, B_i). On return ``p`` holds the prices of the final bids
    and ``beta[i] = B_i / max(u_i, B_i)`` the implied pacing multipliers (the inverse of the
    bidder's bang per buck). Bids below 1e-30 B_i are flushed to 0 (no subnormals).
    """
    n, m = v.shape
    invp = np.empty(m)
    prices_from_bids(b, s, p)
    for _ in range(iters):
        for j in range(m):
            invp[j] = 1.0 / p[j] if p[j] > 0.0 else 0.0
        for i in prange(n):
            u = 0.0
            for j in range(m):
                u += v[i, j] * b[i, j] * invp[j]
            c = 1.0 if u <= B[i] else B[i] / u
            beta[i] = c
            floor = 1e-30 * B[i]
            for j in range(m):
                x = c * v[i, j] * b[i, j] * invp[j]
                b[i, j] = x if x > floor else 0.0
        prices_from_bids(b, s, p)


@njit(cache=True, parallel=True)
def max_bids(v, alpha, out_max, out_arg):
    """Highest paced bid per good and its (lowest-index) bidder."""
    n, m = v.shape
    nch = (m + _CHUNK - 1) // _CHUNK
    for c in prange(nch):
        j0 = c * _CHUNK
        j1 = min(m, j0 + _CHUNK)
        for j in range(j0, j1):
            out_max[j] = -1.0
            out_arg[j] = -1
        for i in range(n):
            a = alpha[i]
            for j in range(j0, j1):
                x = a * v[i, j]
                if x > out_max[j]:
                    out_max[j] = x
                    out_arg[j] = i


@njit(cache=True, parallel=True)
def top_two_bids(v, alpha, first, second, arg1, count_first, rtol):
    """Highest and second-highest paced bids per good (``second`` counts a tie as the top bid),
    the lowest-index top bidder and how many bidders are within ``rtol`` of the top bid."""
    n, m = v.shape
    nch = (m + _CHUNK - 1) // _CHUNK
    for c in prange(nch):
        j0 = c * _CHUNK
        j1 = min(m, j0 + _CHUNK)
        for j in range(j0, j1):
            first[j] = -1.0
            second[j] = 0.0
            arg1[j] = -1
            count_first[j] = 0
        for i in range(n):
            a = alpha[i]
            for j in range(j0, j1):
                x = a * v[i, j]
                if x > first[j]:
                    second[j] = max(first[j], 0.0)
                    first[j] = x
                    arg1[j] = i
                elif x > second[j]:
                    second[j] = x
        for i in range(n):
            a = alpha[i]
            for j in range(j0, j1):
                if first[j] > 0.0 and a * v[i, j] >= first[j] * (1.0 - rtol):
                    count_first[j] += 1


# --------------------------------------------------------------------------------------------
# building sparse candidate sets
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def candidates_from_dense(v, b, beta, eta):
    """Edges (i, j) with a positive bid and paced bid within a factor (1 - eta) of the best."""
    n, m = v.shape
    best = np.zeros(m)
    for i in range(n):
        for j in range(m):
            x = beta[i] * v[i, j]
            if x > best[j]:
                best[j] = x
    counts = np.zeros(m + 1, np.int64)
    for i in range(n):
        for j in range(m):
            if b[i, j] > 0.0 and beta[i] * v[i, j] >= (1.0 - eta) * best[j]:
                counts[j + 1] += 1
    for j in range(m):
        counts[j + 1] += counts[j]
    nnz = counts[m]
    bidder = np.empty(nnz, np.int64)
    val = np.empty(nnz)
    bid = np.empty(nnz)
    fill = counts[:m].copy()
    for i in range(n):
        for j in range(m):
            if b[i, j] > 0.0 and beta[i] * v[i, j] >= (1.0 - eta) * best[j]:
                k = fill[j]
                bidder[k] = i
                val[k] = v[i, j]
                bid[k] = b[i, j]
                fill[j] += 1
    return counts, bidder, val, bid


@njit(cache=True)
def merge_edges(ptr, bidder, val, bid, add_i, add_j, v, s, p, new_share):
    """Add edges (add_i[k], add_j[k]) not yet present, with a bid of ``new_share`` of the good's
    money; returns the new CSR arrays."""
    m = ptr.shape[0] - 1
    extra = np.zeros(m + 1, np.int64)
    for k in range(add_i.shape[0]):
        extra[add_j[k] + 1] += 1
    newptr = np.zeros(m + 1, np.int64)
    for j in range(m):
        newptr[j + 1] = newptr[j] + (ptr[j + 1] - ptr[j]) + extra[j + 1]
    nnz = newptr[m]
    nb = np.empty(nnz, np.int64)
    nv = np.empty(nnz)
    nbid = np.empty(nnz)
    fill = newptr[:m].copy()
    for j in range(m):
        for k in range(ptr[j], ptr[j + 1]):
            q = fill[j]
            nb[q] = bidder[k]
            nv[q] = val[k]
            nbid[q] = bid[k]
            fill[j] += 1
    for k in range(add_i.shape[0]):
        i = add_i[k]
        j = add_j[k]
        dup = False
        for q in range(newptr[j], fill[j]):
            if nb[q] == i:
                dup = True
                break
        if dup:
            continue
        q = fill[j]
        nb[q] = i
        nv[q] = v[i, j]
        nbid[q] = max(new_share * p[j] * s[j], 1e-12 * p[j] * s[j])
        fill[j] += 1
    # compact (duplicates leave holes)
    outptr = np.zeros(m + 1, np.int64)
    for j in range(m):
        outptr[j + 1] = outptr[j] + (fill[j] - newptr[j])
    ob = np.empty(outptr[m], np.int64)
    ov = np.empty(outptr[m])
    obid = np.empty(outptr[m])
    for j in range(m):
        d = outptr[j] - newptr[j]
        for q in range(newptr[j], fill[j]):
            ob[q + d] = nb[q]
            ov[q + d] = nv[q]
            obid[q + d] = nbid[q]
    return outptr, ob, ov, obid


# --------------------------------------------------------------------------------------------
# bids at the top of each good (the polish's tight edges and the SPPE snapping)
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def tight_edges(v, alpha, p, rtol):
    """All (i, j) with p_j > 0 and alpha_i v_ij >= p_j (1 - rtol), by good."""
    n, m = v.shape
    cnt = 0
    for i in range(n):
        for j in range(m):
            if p[j] > 0.0 and alpha[i] * v[i, j] >= p[j] * (1.0 - rtol):
                cnt += 1
    ei = np.empty(cnt, np.int64)
    ej = np.empty(cnt, np.int64)
    q = 0
    for i in range(n):
        for j in range(m):
            if p[j] > 0.0 and alpha[i] * v[i, j] >= p[j] * (1.0 - rtol):
                ei[q] = i
                ej[q] = j
                q += 1
    return ei, ej


# --------------------------------------------------------------------------------------------
# max flow (Dinic) for splitting tied goods so that paced bidders spend their budgets exactly
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _dinic(nnodes, src, snk, head, nxt, to, cap, eps):
    level = np.empty(nnodes, np.int64)
    it = np.empty(nnodes, np.int64)
    queue = np.empty(nnodes, np.int64)
    path = np.empty(nnodes, np.int64)
    total = 0.0
    while True:
        level[:] = -1
        level[src] = 0
        qh = 0
        qt = 1
        queue[0] = src
        while qh < qt:
            x = queue[qh]
            qh += 1
            e = head[x]
            while e != -1:
                y = to[e]
                if cap[e] > eps and level[y] < 0:
                    level[y] = level[x] + 1
                    queue[qt] = y
                    qt += 1
                e = nxt[e]
        if level[snk] < 0:
            break
        for x in range(nnodes):
            it[x] = head[x]
        while True:
            depth = 0
            x = src
            found = False
            while True:
                if x == snk:
                    found = True
                    break
                e = it[x]
                while e != -1 and not (cap[e] > eps and level[to[e]] == level[x] + 1):
                    e = nxt[e]
                it[x] = e
                if e == -1:
                    if x == src:
                        break
                    level[x] = -2
                    depth -= 1
                    pe = path[depth]
                    x = to[pe ^ 1]
                    it[x] = nxt[it[x]]
                else:
                    path[depth] = e
                    depth += 1
                    x = to[e]
            if not found:
                break
            f = np.inf
            for d in range(depth):
                f = min(f, cap[path[d]])
            for d in range(depth):
                cap[path[d]] -= f
                cap[path[d] ^ 1] += f
            total += f
    return total


@njit(cache=True, inline="always")
def _add_edge(u, v, capacity, q, head, nxt, to, cap):
    """Edge ``q`` from ``u`` to ``v`` and its residual twin ``q + 1``; returns the next free edge."""
    to[q] = v
    cap[q] = capacity
    nxt[q] = head[u]
    head[u] = q
    to[q + 1] = u
    cap[q + 1] = 0.0
    nxt[q + 1] = head[v]
    head[v] = q + 1
    return q + 2


@njit(cache=True)
def split_money(n, m, ei, ej, budgets, paced, money):
    """Money flow on edges (ei, ej) with good j receiving ``money[j]``, paced bidders spending
    exactly their budget and the others at most theirs, when possible (max flow: paced bidders
    first, then the rest). Returns (flow per edge, flow per bidder, flow per good)."""
    E = ei.shape[0]
    nnodes = n + m + 2
    src = n + m
    snk = n + m + 1
    ne = 2 * (n + E + m)
    head = np.full(nnodes, -1, np.int64)
    nxt = np.empty(ne, np.int64)
    to = np.empty(ne, np.int64)
    cap = np.zeros(ne)
    big = 0.0
    for j in range(m):
        big += money[j]
    big = 2.0 * big + 1.0
    q = 0
    for i in range(n):  # source -> bidder: edges 0 .. 2n
        q = _add_edge(src, i, budgets[i] if paced[i] else 0.0, q, head, nxt, to, cap)
    first_edge = q
    for k in range(E):  # bidder -> good
        q = _add_edge(ei[k], n + ej[k], big, q, head, nxt, to, cap)
    for j in range(m):  # good -> sink
        q = _add_edge(n + j, snk, money[j], q, head, nxt, to, cap)
    eps = 1e-15 * big
    _dinic(nnodes, src, snk, head, nxt, to, cap, eps)
    for i in range(n):
        if not paced[i]:
            cap[2 * i] = budgets[i]
    _dinic(nnodes, src, snk, head, nxt, to, cap, eps)
    flow = np.empty(E)
    for k in range(E):
        flow[k] = cap[first_edge + 2 * k + 1]
    per_bidder = np.empty(n)
    for i in range(n):
        per_bidder[i] = cap[2 * i + 1]
    per_good = np.empty(m)
    base = first_edge + 2 * E
    for j in range(m):
        per_good[j] = cap[base + 2 * j + 1]
    return flow, per_bidder, per_good


# --------------------------------------------------------------------------------------------
# outcome of a pacing vector under a winner allocation (used by check and the SPPE dynamics)
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def coo_totals(n, m, bidder, good, qty, prices, v):
    """spend, value per bidder and quantity sold per good of a COO allocation."""
    spend = np.zeros(n)
    value = np.zeros(n)
    sold = np.zeros(m)
    for k in range(bidder.shape[0]):
        i = bidder[k]
        j = good[k]
        spend[i] += qty[k] * prices[j]
        value[i] += qty[k] * v[i, j]
        sold[j] += qty[k]
    return spend, value, sold


@njit(cache=True)
def sppe_spend(v, alpha, s, first, second, arg1):
    """Spend per bidder when each good goes to its (lowest-index) top paced bidder at the
    second-highest paced bid."""
    n, m = v.shape
    spend = np.zeros(n)
    for j in range(m):
        if first[j] > 0.0:
            spend[arg1[j]] += s[j] * second[j]
    return spend

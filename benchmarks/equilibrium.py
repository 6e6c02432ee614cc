"""Time solve_fppe on random markets (compile time excluded); prints seconds, iterations, residual.

    python benchmarks/equilibrium.py [--quick]

Baseline: plain numpy proportional response (same PR update, vectorised) for the same number
of dense iterations the solver's warm start uses, on the same market.
"""

import argparse
import time

import numpy as np

from bidscape.equilibrium import PacingMarket, solve_fppe


def numpy_pr(mk, iters):
    v, B, s = mk.values, mk.budgets, mk.supply
    b = v * s / (v @ s)[:, None] * B[:, None]
    for _ in range(iters):
        p = b.sum(0) / s
        x = b / p
        u = (v * x).sum(1)
        b = (B / np.maximum(u, B))[:, None] * v * x
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [(50, 500), (200, 2000)] + ([] if args.quick else [(1000, 10000)])
    solve_fppe(PacingMarket.random(5, 20, seed=0))  # compile / load the cache
    print(f"{'n x m':>12} {'seconds':>8} {'iters':>6} {'max residual':>12} {'numpy PR(60) s':>14}")
    for n, m in sizes:
        mk = PacingMarket.random(n, m, seed=1)
        t = time.perf_counter()
        eq = solve_fppe(mk)
        sec = time.perf_counter() - t
        t = time.perf_counter()
        numpy_pr(mk, 60)
        base = time.perf_counter() - t
        print(f"{n:>5} x {m:<6} {sec:8.3f} {eq.iterations:6d} {eq.residuals.max():12.2e} "
              f"{base:14.3f}  (solver/baseline {sec / base:.2f}x)")


if __name__ == "__main__":
    main()

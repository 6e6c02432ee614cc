"""How often the equilibrium solvers converge, and how small their residuals are.

    python benchmarks/equilibrium_accuracy.py [--quick]

FPPE: random 6 x 30 markets whose budgets span a ratio: one budget at `ratio` of the mean
("tiny"), one at mean / ratio ("huge"), or all log-spaced over [ratio, 1] x mean ("spread").
A converged FPPE passes ``check`` at 1e-9, which (the FPPE being unique) makes it the FPPE.

SPPE: second-price search on samples of m goods from a smooth limit market (3 bidders, values
U[0, A_i], budgets 0.9 / 0.15 / 0.25, supply 1/m each; bidders 1 and 2 paced), accepted at
tol = 1e-3; "dynamics" is the raw budget error of the adaptive-pacing dynamics.
"""

import argparse
import time

import numpy as np

from bidscape.equilibrium import PacingMarket, solve_fppe, solve_sppe


def fppe_market(kind: str, ratio: float, seed: int) -> PacingMarket:
    mk = PacingMarket.random(6, 30, seed=seed)
    B = mk.budgets.copy()
    k = seed % 6
    if kind == "tiny":
        B[k] = ratio * B.mean()
    elif kind == "huge":
        B[k] = B.mean() / ratio
    else:
        B = B.mean() * np.logspace(0.0, np.log10(ratio), 6)[np.random.default_rng(seed).permutation(6)]
    return PacingMarket(mk.values, B)


def sppe_market(m: int, seed: int) -> PacingMarket:
    rng = np.random.default_rng(seed)
    values = rng.random((3, m)) * np.array([[1.0], [1.5], [2.0]])
    return PacingMarket(values, [0.9, 0.15, 0.25], np.full(m, 1.0 / m))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="8 markets per row instead of 24")
    args = ap.parse_args()
    seeds = range(8 if args.quick else 24)
    solve_fppe(PacingMarket.random(5, 20, seed=0))  # compile / load the cache
    print(f"FPPE, 6 x 30 markets, accepted at check() <= 1e-9 ({len(seeds)} seeds per row)")
    print(f"{'budgets':>8} {'ratio':>7} {'converged':>10} {'worst residual':>15} {'median seconds':>15}")
    for kind in ("tiny", "huge", "spread"):
        for ratio in (1e-2, 1e-5, 1e-8):
            ok, worst, seconds = 0, 0.0, []
            for seed in seeds:
                t = time.perf_counter()
                eq = solve_fppe(fppe_market(kind, ratio, seed))
                seconds.append(time.perf_counter() - t)
                ok += eq.converged
                worst = max(worst, eq.residuals.max())
            print(f"{kind:>8} {ratio:7.0e} {ok:>4} / {len(seeds):<3} {worst:15.2e} {np.median(seconds):15.3f}")
    print(f"\nSPPE search, limit-market samples, accepted at tol = 1e-3 ({len(seeds[:8])} seeds per row)")
    print(f"{'goods':>6} {'converged':>10} {'median residual':>16} {'worst residual':>15} "
          f"{'median dynamics':>16}")
    for m in (200, 1000, 5000):
        res, dyn, ok = [], [], 0
        for seed in seeds[:8]:
            eq = solve_sppe(sppe_market(m, seed), seed=0, tol=1e-3)
            ok += eq.converged
            res.append(eq.residuals.max())
            dyn.append(eq.info["dynamics_residual"])
        print(f"{m:>6} {ok:>4} / {len(res):<3} {np.median(res):16.2e} {max(res):15.2e} "
              f"{np.median(dyn):16.2e}")


if __name__ == "__main__":
    main()

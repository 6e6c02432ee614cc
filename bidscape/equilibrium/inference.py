"""Statistical inference for FPPE revenue and Nash social welfare (Liao & Kroer, ICML 2023).

Model: the observed market's m goods are an i.i.d. sample theta_1..theta_m from a limit
market (a distribution of value vectors v(theta) in R^n), each with supply S/m (S the total
supply; the market must have equal supplies), and the budgets B are fixed. The observed FPPE
estimates the limit FPPE beta* (the minimiser of E[S max_i beta_i v_i(theta)] - sum B_i log
beta_i over 0 < beta <= 1), and

* NSW (the Eisenberg-Gale objective, see ``Equilibrium``) equals the dual optimal value
  plus the constant sum_i (B_i log B_i - B_i). By the CLT for optimal values of sample
  average approximations, sqrt(m) (NSW_m - NSW*) -> N(0, S^2 Var p*(theta)), with
  p*(theta) = max_i beta*_i v_i(theta) the price of good theta: the standard error is
  S * sd(p_j) / sqrt(m).
* Revenue REV = S E[p(theta)] also moves with beta_m. Linearising the first-order
  conditions of the paced bidders P (alpha_i < 1; unpaced bidders are assumed strictly under
  budget so their alpha stays at 1), beta_m - beta* ~ -H^{-1} (E_m - E) G with
  G_i(theta) = v_i(theta) 1{i wins theta} and H the Hessian of the limit dual objective on P,
  so sqrt(m)(REV_m - REV*) -> N(0, Var psi), psi(theta) = S (p(theta) - z^T G_P(theta)),
  z = H^{-1} r, r_i = S E[G_i] (the value bidder i receives). When every bidder is paced,
  z = beta and psi = 0: revenue equals total budget in every sample.
  H = diag(B_i / beta_i^2) + S D, with D the Hessian of E[max_i beta_i v_i] estimated by
  central finite differences of its (piecewise constant) empirical gradient with a relative
  step h = hessian_bandwidth * beta_k (default m^(-1/3)): a good contributes to column k when
  bidder k's bid is within a factor h of the price-setting threshold for that good.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from bidscape.equilibrium.fppe import solve_fppe
from bidscape.equilibrium.market import PacingMarket
from bidscape.equilibrium.result import Equilibrium


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided confidence interval."""

    value: float
    se: float
    ci: tuple[float, float]
    level: float

    def covers(self, x: float) -> bool:
        return self.ci[0] <= x <= self.ci[1]


@dataclass(frozen=True, eq=False)
class Inference:
    """Revenue and NSW estimates of the limit market, from one observed FPPE."""

    revenue: Estimate
    nash_social_welfare: Estimate
    equilibrium: Equilibrium
    n_goods: int


def _estimate(value, se, level):
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    return Estimate(float(value), float(se), (float(value - z * se), float(value + z * se)), level)


def _hessian_max_term(v, alpha, first, share, h):
    """Finite-difference estimate of the Hessian (paced and unpaced) of mean_j max_i a_i v_ij."""
    n, m = v.shape
    D = np.zeros((n, n))
    bids = alpha[:, None] * v
    # winner (largest share) and the best bid among the others, per good
    w = np.argmax(share, axis=0)
    cols = np.arange(m)
    masked = bids.copy()
    masked[w, cols] = -1.0
    r = np.argmax(masked, axis=0)
    b2 = masked[r, cols]
    live = first > 0
    # k = winner: it keeps the good while alpha_w > b2 / v_wj
    thr = np.where(live, b2 / np.where(v[w, cols] > 0, v[w, cols], 1.0), np.inf)
    near = live & (np.abs(thr - alpha[w]) < h[w])
    np.add.at(D, (w[near], w[near]), v[w[near], cols[near]] / (2 * h[w[near]]))
    np.add.at(D, (r[near], w[near]), -v[r[near], cols[near]] / (2 * h[w[near]]))
    # k != winner: k takes the good when alpha_k > first_j / v_kj
    with np.errstate(divide="ignore", invalid="ignore"):
        thr_k = np.where(v > 0, first[None, :] / v, np.inf)
    neark = (np.abs(thr_k - alpha[:, None]) < h[:, None]) & live[None, :]
    neark[w, cols] = False
    kk, jj = np.nonzero(neark)
    np.add.at(D, (kk, kk), v[kk, jj] / (2 * h[kk]))
    np.add.at(D, (w[jj], kk), -v[w[jj], jj] / (2 * h[kk]))
    D /= m
    return 0.5 * (D + D.T)


def fppe_inference(market: PacingMarket, level: float = 0.95, *,
                   equilibrium: Equilibrium | None = None,
                   hessian_bandwidth: float | None = None) -> Inference:
    """Point estimates, standard errors and ``level`` confidence intervals for the limit
    market's FPPE revenue and Nash social welfare (EG objective), treating the goods of
    ``market`` as an i.i.d. sample (see the module docstring for the formulas)."""
    if not (0 < level < 1):
        raise ValueError(f"level={level} must be in (0, 1). Fix: use e.g. 0.95.")
    s = market.supply
    if not np.allclose(s, s[0], rtol=1e-12, atol=0):
        raise ValueError("supply must be equal for all goods (goods are an i.i.d. sample, each "
                         "with supply S/m). Fix: pass supply=None or a constant vector.")
    v, B = market.values, market.budgets
    n, m = v.shape
    if m < 2:
        raise ValueError(f"inference needs at least 2 goods, got {m}. Fix: sample more goods.")
    eq = equilibrium if equilibrium is not None else solve_fppe(market)
    S = float(s.sum())
    p = eq.prices
    share = eq.allocation.to_dense() / s[None, :]  # fraction of each good won by each bidder
    G = v * share  # G_i(theta_j)
    # NSW: influence function S p(theta)
    nsw_se = S * np.std(p, ddof=1) / np.sqrt(m)
    # revenue
    paced = np.flatnonzero(eq.alpha < 1.0)
    psi = S * p.copy()
    if paced.size:
        h_rel = hessian_bandwidth if hessian_bandwidth is not None else m ** (-1.0 / 3.0)
        alpha = eq.alpha
        first = p  # FPPE price = highest paced bid
        D = _hessian_max_term(v, alpha, first, share, h_rel * alpha)
        H = S * D[np.ix_(paced, paced)] + np.diag(B[paced] / alpha[paced] ** 2)
        rvec = S * G[paced].mean(axis=1)
        z = np.linalg.lstsq(H, rvec, rcond=None)[0]
        psi = psi - S * (z @ G[paced])
    rev_se = np.std(psi, ddof=1) / np.sqrt(m)
    return Inference(_estimate(eq.revenue, rev_se, level),
                     _estimate(eq.nash_social_welfare, nsw_se, level), eq, m)


@dataclass(frozen=True, eq=False)
class ABTest:
    """Treatment minus control for revenue and NSW, with CIs and two-sided p-values."""

    revenue: Estimate
    nash_social_welfare: Estimate
    revenue_pvalue: float
    nsw_pvalue: float
    treatment: Inference
    control: Inference


def _diff(t: Estimate, c: Estimate, level: float):
    d = t.value - c.value
    se = float(np.hypot(t.se, c.se))
    if se > 0:
        pval = 2.0 * (1.0 - NormalDist().cdf(abs(d) / se))
    else:
        pval = 1.0 if d == 0 else 0.0
    return _estimate(d, se, level), float(pval)


def ab_test(treatment: PacingMarket, control: PacingMarket, level: float = 0.95) -> ABTest:
    """Compare the limit markets behind two independent samples of goods.

    Each arm is an FPPE with full budgets and supplies rescaled to the full total supply
    (``split_market`` builds such arms); since the FPPE multipliers are invariant to scaling
    budgets and supply together, this is the budget-splitting design of Liao & Kroer (each
    bidder's budget split pi / 1 - pi between arms) reported at full-market scale. The arms
    are independent, so the difference has variance se_T^2 + se_C^2.
    """
    ti = fppe_inference(treatment, level)
    ci = fppe_inference(control, level)
    rev, rev_p = _diff(ti.revenue, ci.revenue, level)
    nsw, nsw_p = _diff(ti.nash_social_welfare, ci.nash_social_welfare, level)
    return ABTest(rev, nsw, rev_p, nsw_p, ti, ci)


def split_market(market: PacingMarket, pi: float = 0.5, seed: int = 0,
                 treatment_values=None) -> tuple[PacingMarket, PacingMarket]:
    """Randomise goods to treatment (probability ``pi``) and control.

    Returns (treatment, control) markets with the original budgets and each arm's supplies
    scaled so that its total supply equals the original total (equivalent to splitting
    budgets pi / 1 - pi, see ``ab_test``). ``treatment_values``, if given, maps the
    treatment arm's (n, m_T) value matrix to the values under treatment.
    """
    if not (0 < pi < 1):
        raise ValueError(f"pi={pi} must be in (0, 1). Fix: use e.g. 0.5.")
    m = market.n_goods
    rng = np.random.default_rng(seed)
    treat = rng.random(m) < pi
    if treat.all() or not treat.any():
        raise ValueError(f"the split left an arm empty (m={m}, pi={pi}). Fix: use more goods.")
    total = market.supply.sum()
    arms = []
    for mask in (treat, ~treat):
        sup = market.supply[mask]
        arms.append(PacingMarket(market.values[:, mask], market.budgets, sup * total / sup.sum()))
    if treatment_values is not None:
        arms[0] = PacingMarket(treatment_values(arms[0].values.copy()), arms[0].budgets,
                               arms[0].supply)
    return arms[0], arms[1]

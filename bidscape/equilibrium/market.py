"""The budget-constrained market whose pacing equilibria this package computes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_float_array(x, name: str, ndim: int) -> np.ndarray:
    try:
        a = np.array(x, dtype=np.float64, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric ({exc}). Fix: pass a numpy array of floats.") from None
    if a.ndim != ndim:
        shape = "an (n_bidders, n_goods) matrix" if ndim == 2 else "a 1-d vector"
        raise ValueError(f"{name} must be {shape}, got an array of shape {a.shape}. "
                         f"Fix: reshape {name} to {shape}.")
    return a


@dataclass(frozen=True, eq=False)
class PacingMarket:
    """n bidders with budgets, m divisible goods with supplies, and values ``v[i, j] >= 0``.

    ``values`` is a dense ``(n, m)`` float64 array, ``budgets`` has length n and is positive,
    ``supply`` has length m and is positive (default 1 per good). Everything is validated and
    copied on construction; errors name the argument and the fix.
    """

    values: np.ndarray
    budgets: np.ndarray
    supply: np.ndarray

    def __init__(self, values, budgets, supply=None):
        v = _as_float_array(values, "values", 2)
        b = _as_float_array(budgets, "budgets", 1)
        n, m = v.shape
        if n == 0 or m == 0:
            raise ValueError(f"values has shape {v.shape}: a market needs at least one bidder and one "
                             "good. Fix: pass a non-empty (n_bidders, n_goods) matrix.")
        if not np.all(np.isfinite(v)):
            i, j = np.argwhere(~np.isfinite(v))[0]
            raise ValueError(f"values[{i}, {j}] is {v[i, j]}: values must be finite. "
                             "Fix: replace NaN/inf values (e.g. with 0 for goods a bidder does not want).")
        if np.any(v < 0):
            i, j = np.argwhere(v < 0)[0]
            raise ValueError(f"values[{i}, {j}] = {v[i, j]} is negative: values must be >= 0. "
                             "Fix: clip values at 0 (np.maximum(values, 0)).")
        if b.shape[0] != n:
            raise ValueError(f"budgets has {b.shape[0]} entries but values has {n} rows (bidders). "
                             "Fix: pass one budget per bidder (row of values).")
        if not np.all(np.isfinite(b)) or np.any(b <= 0):
            i = int(np.argwhere(~(np.isfinite(b) & (b > 0)))[0, 0])
            raise ValueError(f"budgets[{i}] = {b[i]}: budgets must be positive and finite. "
                             "Fix: drop bidders without budget or give them a positive budget.")
        if supply is None:
            s = np.ones(m)
        else:
            s = _as_float_array(supply, "supply", 1)
            if s.shape[0] != m:
                raise ValueError(f"supply has {s.shape[0]} entries but values has {m} columns (goods). "
                                 "Fix: pass one supply per good (column of values), or None for 1 each.")
            if not np.all(np.isfinite(s)) or np.any(s <= 0):
                j = int(np.argwhere(~(np.isfinite(s) & (s > 0)))[0, 0])
                raise ValueError(f"supply[{j}] = {s[j]}: supplies must be positive and finite. "
                                 "Fix: drop goods with no supply.")
        for a in (v, b, s):
            a.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "budgets", b)
        object.__setattr__(self, "supply", s)

    @property
    def n_bidders(self) -> int:
        return self.values.shape[0]

    @property
    def n_goods(self) -> int:
        return self.values.shape[1]

    def __repr__(self) -> str:
        return (f"PacingMarket(n_bidders={self.n_bidders}, n_goods={self.n_goods}, "
                f"total_budget={self.budgets.sum():.4g}, total_supply={self.supply.sum():.4g})")

    def with_budgets(self, budgets) -> "PacingMarket":
        return PacingMarket(self.values, budgets, self.supply)

    def subset(self, goods, supply_scale: float = 1.0) -> "PacingMarket":
        """The market restricted to ``goods`` (indices or mask), supplies times ``supply_scale``."""
        goods = np.asarray(goods)
        return PacingMarket(self.values[:, goods], self.budgets, self.supply[goods] * supply_scale)

    @classmethod
    def random(cls, n: int, m: int, seed: int = 0, *, values: str = "uniform",
               budget_factor: float = 1.0, density: float = 1.0,
               uniform_supply: bool = True) -> "PacingMarket":
        """A random market drawn with ``numpy.random.default_rng(seed)``.

        ``values``: "uniform" (U[0,1]), "lognormal" (lognormal(0, 1)) or "integer" (0..4,
        which creates many ties). ``density`` is the chance that a value is non-zero.
        Budgets are ``budget_factor * U[0.5, 1.5] * (sum_j s_j v_ij) / n``: with factor 1 most
        bidders are paced, with large factors few are. ``uniform_supply=False`` draws
        supplies from U[0.5, 1.5].
        """
        rng = np.random.default_rng(seed)
        if values == "uniform":
            v = rng.random((n, m))
        elif values == "lognormal":
            v = rng.lognormal(0.0, 1.0, (n, m))
        elif values == "integer":
            v = rng.integers(0, 5, (n, m)).astype(np.float64)
        else:
            raise ValueError(f"values={values!r} is unknown. Fix: use 'uniform', 'lognormal' or 'integer'.")
        if density < 1.0:
            v *= rng.random((n, m)) < density
        s = np.ones(m) if uniform_supply else rng.uniform(0.5, 1.5, m)
        mass = v @ s
        mass = np.where(mass > 0, mass, s.sum())
        budgets = budget_factor * rng.uniform(0.5, 1.5, n) * mass / n
        return cls(v, budgets, s)

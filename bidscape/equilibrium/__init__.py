"""Pacing equilibria of budget-constrained auction markets.

- ``PacingMarket``: values (n bidders x m goods), budgets, supplies.
- ``solve_fppe``: the (unique) first-price pacing equilibrium, to ~1e-15 residuals.
- ``solve_sppe``: a search for a second-price pacing equilibrium (adaptive pacing dynamics;
  best point found, with its residuals).
- ``check``: residuals of the equilibrium conditions.
- ``fppe_inference``, ``ab_test``, ``split_market``: confidence intervals for FPPE revenue and
  Nash social welfare when goods are an i.i.d. sample (Liao & Kroer 2023), and A/B tests.

See docs/equilibrium.md.
"""

from bidscape.equilibrium.check import check
from bidscape.equilibrium.fppe import solve_fppe
from bidscape.equilibrium.inference import (ABTest, Estimate, Inference, ab_test, fppe_inference,
                                            split_market)
from bidscape.equilibrium.market import PacingMarket
from bidscape.equilibrium.result import Allocation, Equilibrium, Residuals
from bidscape.equilibrium.sppe import solve_sppe

__all__ = ["PacingMarket", "Equilibrium", "Allocation", "Residuals", "solve_fppe", "solve_sppe",
           "check", "fppe_inference", "Inference", "Estimate", "ab_test", "ABTest", "split_market"]

"""The competitive equilibrium of a market game: quantity, price interval, maximum surplus.

All buyers' unit values are sorted highest first (the demand curve), all sellers' unit
costs lowest first (the supply curve). The equilibrium quantity ``q`` is the number of
pairs with value >= cost; the maximum (total) surplus is the sum of value - cost over
those ``q`` pairs; the equilibrium prices are ``[max(c_q, v_q+1), min(v_q, c_q+1)]``
(1-based; a missing ``v_q+1`` or ``c_q+1`` drops out), the same crossing-interval rule
as the call market, so a truthful call market clears at the interval's midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Equilibrium:
    quantity: int
    price_low: float  # nan when nothing can trade
    price_high: float
    max_surplus: float

    @property
    def price(self) -> float:
        """Midpoint of the equilibrium price interval (nan when nothing can trade)."""
        return 0.5 * (self.price_low + self.price_high)


def competitive_equilibrium(values: np.ndarray, costs: np.ndarray) -> Equilibrium:
    """The equilibrium of buyers' unit ``values`` and sellers' unit ``costs`` (flat arrays)."""
    demand = np.sort(np.asarray(values, np.float64))[::-1]
    supply = np.sort(np.asarray(costs, np.float64))
    n = min(demand.size, supply.size)
    q = int(np.count_nonzero(demand[:n] >= supply[:n]))  # a prefix: demand falls, supply rises
    if q == 0:
        return Equilibrium(0, float("nan"), float("nan"), 0.0)
    low = supply[q - 1]
    if q < demand.size:
        low = max(low, demand[q])
    high = demand[q - 1]
    if q < supply.size:
        high = min(high, supply[q])
    surplus = float(np.sum(demand[:q] - supply[:q]))
    return Equilibrium(q, float(low), float(high), surplus)

"""Result types: an allocation, an equilibrium and the residuals of its conditions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Allocation:
    """Sparse allocation: ``quantity[k]`` units of good ``good[k]`` go to bidder ``bidder[k]``.

    At most a few entries per good (the winner, plus any bidders tied with it), so this stays
    small where a dense ``(n, m)`` matrix would not; ``to_dense()`` builds the matrix.
    """

    bidder: np.ndarray
    good: np.ndarray
    quantity: np.ndarray
    shape: tuple[int, int]

    def to_dense(self, dtype=np.float64) -> np.ndarray:
        x = np.zeros(self.shape, dtype=dtype)
        np.add.at(x, (self.bidder, self.good), self.quantity)
        return x

    def __len__(self) -> int:
        return int(self.bidder.shape[0])


@dataclass(frozen=True)
class Residuals:
    """Violations of the pacing-equilibrium conditions (0 means exactly satisfied).

    All are relative, each to the scale of what it concerns: ``budget_overspend``
    max_i (spend_i - B_i)^+ / B_i and ``unnecessary_pacing`` max over bidders with alpha_i < 1
    of (B_i - spend_i)^+ / B_i (each bidder against its own budget, however small);
    ``unsold_supply`` the value of unsold priced supply as a share of the value of all
    priced supply, sum_j p_j (s_j - sold_j)^+ / sum_j p_j s_j over goods with p_j > 0 (a
    market-wide share: a search leaving 1e-4 of the market unsold on one small good reads
    1e-4, not the share of that good); ``over_allocation`` max_j (sold_j - s_j)^+ / s_j; ``non_highest_allocation`` max over
    allocated (i, j) of (h_j - alpha_i v_ij) / h_j with h_j the highest paced bid on j;
    ``price_mismatch`` max_j |p_j - q_j| / max(q_j, tiny) with q_j the price the mechanism sets
    (highest paced bid for first price, second-highest for second price); ``alpha_bounds`` how
    far any alpha lies outside [0, 1]; ``negative_allocation`` the most negative quantity.
    """

    budget_overspend: float
    unnecessary_pacing: float
    unsold_supply: float
    over_allocation: float
    non_highest_allocation: float
    price_mismatch: float
    alpha_bounds: float
    negative_allocation: float

    def max(self) -> float:
        return max(asdict(self).values())

    def ok(self, tol: float = 1e-6) -> bool:
        """True when every residual is at most ``tol``."""
        return self.max() <= tol

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{k}={v:.2e}" for k, v in asdict(self).items())


@dataclass(frozen=True, eq=False)
class Equilibrium:
    """A pacing equilibrium (or, for ``kind == "sppe"``, the best point the search found).

    Fields: ``alpha`` pacing multipliers; ``prices`` per unit of each good; ``allocation``
    (sparse, see ``Allocation``; ``x`` gives the dense matrix); ``spend`` and ``value``
    (sum_j x_ij v_ij) per bidder; ``utility`` the quasi-linear utility value_i - spend_i;
    ``revenue`` sum_i spend_i; ``nash_social_welfare`` the Eisenberg-Gale objective

        NSW = sum_i B_i log(u_i) - sum_i delta_i,   u_i = value_i + delta_i,
        delta_i = B_i - spend_i (unspent budget),

    i.e. the optimal value of the quasi-linear EG program whose solution is the FPPE
    (Conitzer et al. 2022; the quantity whose CLT Liao & Kroer 2023 prove). At an FPPE
    u_i = B_i / alpha_i. ``iterations`` counts solver iterations; ``residuals`` is
    ``check(market, self)``; ``converged`` says whether they met the solver's tolerance.
    """

    kind: str
    alpha: np.ndarray
    prices: np.ndarray
    allocation: Allocation
    spend: np.ndarray
    value: np.ndarray
    utility: np.ndarray
    revenue: float
    nash_social_welfare: float
    iterations: int
    residuals: Residuals
    converged: bool
    info: dict = field(default_factory=dict)

    @property
    def x(self) -> np.ndarray:
        """Dense (n, m) allocation matrix."""
        return self.allocation.to_dense()

    def __repr__(self) -> str:
        paced = int(np.sum(self.alpha < 1.0))
        return (f"Equilibrium(kind={self.kind!r}, bidders={self.alpha.size}, paced={paced}, "
                f"revenue={self.revenue:.6g}, nsw={self.nash_social_welfare:.6g}, "
                f"iterations={self.iterations}, max_residual={self.residuals.max():.2e}, "
                f"converged={self.converged})")

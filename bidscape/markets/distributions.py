"""Distributions for values, value scales and budgets, as validated scenario fields.

Per-agent quantities (budgets, value scales) are drawn once per run with the run's
``numpy.random.Generator``. Per-auction values are drawn inside the kernel by inverse
CDF: a uniform number from the counter-based hash goes through a quantile table with
linear interpolation (``QUANTILE_INTERVALS`` intervals). For ``constant`` and ``uniform``
the table is exact; for ``lognormal`` the grid points are exact quantiles and the last
interval ends where it keeps the upper tail's mean exact, so the simulated mean is off
by less than 1e-4 relative (``tests/test_distributions.py`` measures it).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bidscape.limits import AMOUNT_REASON, LOGNORMAL_TAIL_Z, MAX_AMOUNT, amount, exp_text

QUANTILE_INTERVALS = 2048
_STANDARD_NORMAL = NormalDist()


class _Dist(BaseModel):
    # strict: numbers must be written as numbers (pydantic would read true as 1 and "10" as 10)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def quantile_table(self, intervals: int = QUANTILE_INTERVALS) -> np.ndarray:
        raise NotImplementedError

    def mean(self) -> float:
        raise NotImplementedError


class Constant(_Dist):
    """Every draw is ``value``."""

    dist: Literal["constant"]
    value: Annotated[float, Field(ge=0), amount()]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, float(self.value))

    def quantile_table(self, intervals: int = QUANTILE_INTERVALS) -> np.ndarray:
        return np.full(intervals + 1, float(self.value))

    def mean(self) -> float:
        return float(self.value)


class Uniform(_Dist):
    """Uniform on ``[low, high]``."""

    dist: Literal["uniform"]
    low: Annotated[float, Field(ge=0), amount()]
    high: Annotated[float, Field(ge=0), amount()]

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be at least low ({self.low}); swap them")
        return self

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def quantile_table(self, intervals: int = QUANTILE_INTERVALS) -> np.ndarray:
        return self.low + (self.high - self.low) * (np.arange(intervals + 1) / intervals)

    def mean(self) -> float:
        return 0.5 * (self.low + self.high)


class LogNormal(_Dist):
    """``exp(N(mean, sigma^2))``: ``mean`` and ``sigma`` are those of the logarithm."""

    dist: Literal["lognormal"]
    mean_: float = Field(alias="mean", default=0.0)
    sigma: float = Field(ge=0, default=1.0)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False, strict=True)

    @model_validator(mode="after")
    def _bounded(self) -> "LogNormal":
        top = self.log_largest()
        if top > math.log(MAX_AMOUNT):
            room = math.log(MAX_AMOUNT) - (top - self.mean_)  # the largest mean with this sigma
            fix = f"use mean <= {room:.3g} with sigma = {self.sigma:g}" if room > -50 else "use a smaller sigma"
            raise ValueError(
                f"lognormal(mean = {self.mean_:g}, sigma = {self.sigma:g}) gives amounts up to "
                f"{exp_text(top)}, above {MAX_AMOUNT:g}, the largest allowed ({AMOUNT_REASON}); "
                f"{fix} (mean = 0, sigma = 1 gives amounts around 1)")
        return self

    def log_largest(self) -> float:
        """The log of the largest amount it gives in practice: the larger of its one-in-1e17 draw
        (``sample``) and the top of its quantile table (``quantile_table``, which closes the tail
        at twice its mean); in logs, so that nothing overflows here."""
        mu, s = self.mean_, self.sigma
        draw = mu + LOGNORMAL_TAIL_Z * s
        if s == 0:
            return draw
        z = _STANDARD_NORMAL.inv_cdf(1.0 - 1.0 / QUANTILE_INTERVALS)
        tail = math.log(2 * QUANTILE_INTERVALS) + mu + 0.5 * s * s + math.log(_STANDARD_NORMAL.cdf(s - z))
        return max(draw, tail)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.lognormal(self.mean_, self.sigma, size)

    def quantile_table(self, intervals: int = QUANTILE_INTERVALS) -> np.ndarray:
        mu, s = self.mean_, self.sigma
        if s == 0:
            return np.full(intervals + 1, math.exp(mu))
        h = 1.0 / intervals
        table = np.empty(intervals + 1)
        table[0] = 0.0
        for k in range(1, intervals):
            table[k] = math.exp(mu + s * _STANDARD_NORMAL.inv_cdf(k * h))
        # Close the last interval so that its linear segment has the tail's exact mean.
        z = _STANDARD_NORMAL.inv_cdf(1.0 - h)
        tail_mean = math.exp(mu + 0.5 * s * s) * _STANDARD_NORMAL.cdf(s - z) / h
        table[intervals] = 2.0 * tail_mean - table[intervals - 1]
        return table

    def mean(self) -> float:
        return math.exp(self.mean_ + 0.5 * self.sigma**2)


Distribution = Annotated[Union[Constant, Uniform, LogNormal], Field(discriminator="dist")]
DISTRIBUTION_NAMES = ("constant", "uniform", "lognormal")

"""Value distributions: the inverse-CDF tables reproduce the distributions' moments."""

import math

import numpy as np
import pytest

from bidscape.markets.distributions import Constant, LogNormal, Uniform


def table_draws(table: np.ndarray, n: int = 400_000, seed: int = 0) -> np.ndarray:
    """Values the kernel would draw: linear interpolation of the table at uniform u."""
    u = np.random.default_rng(seed).random(n)
    x = u * (table.size - 1)
    k = x.astype(np.int64)
    return table[k] + (x - k) * (table[k + 1] - table[k])


def test_uniform_and_constant_tables_are_exact():
    table = Uniform(dist="uniform", low=0.5, high=2.5).quantile_table(16)
    np.testing.assert_allclose(table, np.linspace(0.5, 2.5, 17), rtol=0, atol=1e-15)
    assert np.all(Constant(dist="constant", value=3.0).quantile_table(8) == 3.0)


@pytest.mark.parametrize("mu,sigma", [(0.0, 0.5), (-0.3, 1.0)])
def test_lognormal_table_mean_and_median(mu, sigma):
    distribution = LogNormal(dist="lognormal", mean=mu, sigma=sigma)
    draws = table_draws(distribution.quantile_table())
    se = draws.std() / math.sqrt(draws.size)
    # linear interpolation of a convex quantile function overstates the mean by O(h^2): < 1e-4 here
    assert abs(draws.mean() - distribution.mean()) < 4 * se + 1e-4 * distribution.mean()
    assert abs(np.median(draws) / math.exp(mu) - 1) < 0.01


def test_uniform_rejects_reversed_bounds():
    with pytest.raises(ValueError, match="swap"):
        Uniform(dist="uniform", low=2.0, high=1.0)


def test_per_agent_samples_use_the_given_generator():
    a = LogNormal(dist="lognormal", mean=0, sigma=1).sample(np.random.default_rng(1), 5)
    b = LogNormal(dist="lognormal", mean=0, sigma=1).sample(np.random.default_rng(1), 5)
    assert np.array_equal(a, b)

"""Closed-form auction theory, on fixed seeds, with tolerances from the sample's standard error.

Each check allows 4 standard errors of the sample mean (a false alarm about 1 in 16,000
for a fresh seed); with values from the inverse-CDF table for U[0, 1] the simulated
distribution is exact, so no extra bias term is needed.
"""

import math

import numpy as np
import polars as pl
import pytest

import bidscape
from bidscape import Scenario

Z = 4.0


def single_population(n_bidders, strategy, params=None, mechanism="second_price", reserve=0.0,
                      auctions=100_000, participation="all", size=None, seed=11, budget=None):
    population = {"name": "bidders", "size": size or n_bidders, "strategy": strategy,
                  "values": {"dist": "uniform", "low": 0.0, "high": 1.0}, "params": params or {}}
    if budget is not None:
        population["budget"] = budget
    return Scenario.from_dict({
        "run": {"seed": seed, "rounds": 1, "auctions_per_round": auctions, "record_agents": "none",
                "auction_sample_rate": 1.0},
        "mechanism": {"type": mechanism, "reserve": reserve},
        "market": {"bidders_per_auction": "all" if participation == "all" else n_bidders},
        "populations": [population],
    })


def mean_and_standard_error(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def revenue_per_auction(scenario, tmp_path) -> np.ndarray:
    auctions = bidscape.run(scenario, out=tmp_path / "run").auctions
    assert auctions.height == scenario.run.auctions_per_round  # sample rate 1: every auction
    return auctions["price"].to_numpy()


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("participation", ["all", "sampled"])
def test_revenue_equivalence(n, participation, tmp_path):
    """Truthful second price and (n-1)/n-shaded first price both earn (n-1)/(n+1)."""
    expected = (n - 1) / (n + 1)
    size = None if participation == "all" else 50
    second = single_population(n, "truthful", participation=participation, size=size)
    first = single_population(n, "constant_shade", {"multiplier": (n - 1) / n}, mechanism="first_price",
                              participation=participation, size=size)
    for name, scenario in (("second", second), ("first", first)):
        mean, se = mean_and_standard_error(revenue_per_auction(scenario, tmp_path / name))
        assert abs(mean - expected) < Z * se, f"{name} price: {mean:.5f} vs {expected:.5f} (se {se:.5f})"


@pytest.mark.parametrize("n,reserve", [(2, 0.5), (3, 0.3)])
def test_reserve_raises_second_price_revenue_as_theory_says(n, reserve, tmp_path):
    """E[revenue] = (n-1)/(n+1) + r^n - 2n r^(n+1)/(n+1) with U[0,1] values (Myerson)."""
    expected = (n - 1) / (n + 1) + reserve**n - 2 * n * reserve ** (n + 1) / (n + 1)
    revenue = revenue_per_auction(single_population(n, "truthful", reserve=reserve), tmp_path)
    mean, se = mean_and_standard_error(revenue)
    assert abs(mean - expected) < Z * se
    assert mean - (n - 1) / (n + 1) > Z * se  # and it is a real increase over no reserve
    # unsold share: all values below the reserve
    assert abs(np.mean(revenue == 0) - reserve**n) < Z * math.sqrt(reserve**n * (1 - reserve**n) / revenue.size)


def test_truthful_second_price_winner_never_pays_more_than_value(tmp_path):
    scenario = single_population(8, "truthful", reserve=0.2, participation="sampled", size=200,
                                 auctions=50_000, budget={"dist": "uniform", "low": 0.5, "high": 5.0})
    auctions = bidscape.run(scenario, out=tmp_path / "run").auctions.filter(pl.col("winner") >= 0)
    assert auctions.height > 0
    assert (auctions["price"] <= auctions["winner_value"]).all()
    assert (auctions["price"] >= 0.2).all()


@pytest.mark.parametrize("mechanism", ["first_price", "second_price"])
def test_spend_never_exceeds_budget(mechanism):
    """Tight budgets, bidders that would overspend many times over: spend stays within budget."""
    from bidscape.loop.simulation import Simulation

    scenario = Scenario.from_dict({
        "run": {"seed": 3, "rounds": 5, "auctions_per_round": 20_000, "record_agents": "none"},
        "mechanism": {"type": mechanism},
        "market": {"bidders_per_auction": 4},
        "populations": [{"name": "b", "size": 300, "strategy": "truthful",
                         "values": {"dist": "lognormal", "mean": 0.0, "sigma": 1.0},
                         "budget": {"dist": "uniform", "low": 0.0, "high": 20.0}}],
    })
    simulation = Simulation(scenario)
    spent = np.zeros(scenario.total_agents)
    while not simulation.finished:
        simulation.step()
        spent += simulation.state.spend
        assert np.all(simulation.state.remaining_budget >= 0)
    budget = simulation.state.budget
    # each price is charged against the remaining budget; only float summation can differ
    assert np.all(spent <= budget * (1 + 1e-12))
    np.testing.assert_allclose(budget - simulation.state.remaining_budget, spent, rtol=1e-9, atol=1e-9)
    assert np.mean(spent > 0.99 * budget) > 0.5  # the budgets really did bind

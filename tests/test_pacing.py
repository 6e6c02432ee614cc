"""Adaptive pacing in a stationary market: budgets used, never exceeded, multipliers settle."""

import numpy as np
import pytest

from bidscape import Scenario
from bidscape.loop.simulation import Simulation

ROUNDS = 60


def paced_market(step: float, replan: bool) -> Simulation:
    # 500 bidders, 5 per auction, U[0,1] values: unpaced spend is about 3.3x the budget rate
    return Simulation(Scenario.from_dict({
        "run": {"seed": 5, "rounds": ROUNDS, "auctions_per_round": 20_000, "record_agents": "none"},
        "mechanism": {"type": "second_price", "reserve": 0.05},
        "market": {"bidders_per_auction": 5},
        "populations": [{"name": "paced", "size": 500, "strategy": "adaptive_pacing",
                         "params": {"step": step, "replan": replan},
                         "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
                         "budget": {"dist": "uniform", "low": 300.0, "high": 660.0}}],
    }))


def play(simulation: Simulation):
    spend, multiplier = [], []
    while not simulation.finished:
        simulation.step()
        spend.append(simulation.state.spend.copy())
        multiplier.append(simulation.state.multiplier.copy())
        assert np.all(simulation.state.remaining_budget >= 0)
    return np.array(spend), np.array(multiplier)


def coefficient_of_variation(window: np.ndarray) -> np.ndarray:
    """Per agent, over rounds: std / mean."""
    return window.std(axis=0) / window.mean(axis=0)


def test_dual_gradient_pacing_tracks_the_budget_rate_and_settles():
    """The paper's rule (fixed rate budget / rounds): after the start-up transient the
    population spends at the budget rate and each agent's multiplier stops moving."""
    simulation = paced_market(step=0.3, replan=False)
    spend, multiplier = play(simulation)
    budget = simulation.state.budget
    rate = budget.sum() / ROUNDS
    assert spend[0].sum() > 2 * rate  # bidding values, they would overspend
    middle = slice(25, 45)
    assert np.all(np.abs(spend[middle].sum(axis=1) / rate - 1) < 0.05)
    assert np.median(coefficient_of_variation(multiplier[middle])) < 0.05
    total = spend.sum(axis=0)
    assert np.all(total <= budget * (1 + 1e-12))
    assert total.sum() / budget.sum() > 0.99


@pytest.mark.parametrize("step", [0.3, 1.0])
def test_replanned_pacing_spends_the_budget_by_the_last_round(step):
    simulation = paced_market(step=step, replan=True)
    spend, multiplier = play(simulation)
    budget = simulation.state.budget
    total = spend.sum(axis=0)
    assert np.all(total <= budget * (1 + 1e-12))
    assert total.sum() / budget.sum() > 0.99
    assert np.median(total / budget) > 0.99
    assert spend[-1].sum() > 0  # still buying in the last round, not run dry early
    assert np.median(coefficient_of_variation(multiplier[-10:])) < 0.05
    assert multiplier[-1].mean() < 0.6  # paced well below truthful bidding


def test_pacing_without_binding_budget_bids_truthfully():
    simulation = Simulation(Scenario.from_dict({
        "run": {"rounds": 5, "auctions_per_round": 2_000, "record_agents": "none"},
        "market": {"bidders_per_auction": 3},
        "populations": [{"name": "rich", "size": 50, "strategy": "adaptive_pacing",
                         "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
                         "budget": {"dist": "constant", "value": 1e9}}],
    }))
    _, multiplier = play(simulation)
    assert np.all(multiplier == 1.0)

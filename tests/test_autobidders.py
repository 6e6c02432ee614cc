"""Autobidders against their economics: target_roi, target_cpa (dual descent) and pid_pacing.

Markets are small stationary second-price markets: the autobidders (200 agents) bid
against 800 agents with a fixed strategy, 5 bidders per auction, so each autobidder
takes part in about 100 auctions a round.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bidscape
from bidscape import InputError, Scenario
from bidscape.bidders import STRATEGIES
from bidscape.bidders.pid_pacing import PidPacing
from bidscape.bidders.target_cpa import TargetCpa
from bidscape.bidders.target_roi import TargetRoi
from bidscape.loop.simulation import Simulation

# Until bidscape/bidders/__init__.py registers them (harmless afterwards).
for _strategy in (TargetRoi, TargetCpa, PidPacing):
    if _strategy.name not in STRATEGIES:
        STRATEGIES.register(_strategy.name, _strategy)

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}


def market(population: dict, rounds: int, seed: int = 1, auctions: int = 20_000,
           others: dict | None = None, events: list | None = None) -> Simulation:
    """``population`` (200 agents, U[0, 1] values unless given) against 800 fixed bidders."""
    population = {"name": "auto", "size": 200, "values": UNIFORM} | population
    others = others or {"strategy": "truthful", "values": UNIFORM}
    return Simulation(Scenario.from_dict({
        "run": {"seed": seed, "rounds": rounds, "auctions_per_round": auctions, "record_agents": "none"},
        "mechanism": {"type": "second_price", "reserve": 0.05},
        "market": {"bidders_per_auction": 5},
        "populations": [population, {"name": "others", "size": 800} | others],
        "events": events or [],
    }))


def play(simulation: Simulation):
    """Per round and agent of the first population: spend, value, multiplier (rounds x agents)."""
    part = simulation.state.population_slice(0)
    spend, value, multiplier = [], [], []
    while not simulation.finished:
        simulation.step()
        spend.append(simulation.state.spend[part].copy())
        value.append(simulation.state.value[part].copy())
        multiplier.append(simulation.state.multiplier[part].copy())
        assert np.all(simulation.state.remaining_budget >= 0)
    return np.array(spend), np.array(value), np.array(multiplier)


def ratio_tolerance(value: np.ndarray, spend: np.ndarray, tau: float, z: float = 4.0) -> float:
    """Relative tolerance on the run's return on spend sum(V) / sum(S) against ``tau``.

    Derivation: take each (agent, round) cell as one observation ``x = V - tau S``; the
    run meets the target exactly when ``sum(x) = 0``, and the relative error of the
    return on spend is ``sum(x) / (tau sum(S))``. Were the bids fixed, the cells would be
    independent draws and ``sum(x)`` would have standard deviation ``sd(x) sqrt(n)`` over
    the ``n = agents x rounds`` cells, so the relative error has standard error
    ``se = sd(x) sqrt(n) / (tau sum(S))``. The dual update feeds every round's ``x`` back
    into the bid and re-plans the running deficit over the rounds left, so noise does not
    pile up beyond the fixed-bid level (it does better: the start-up transient is made up
    too). ``z = 4`` standard errors is a false alarm at most once in 15,000 runs.
    With 200 agents x 40 rounds it is about 0.25% here (the runs land within 0.15%).
    """
    x = (value - tau * spend).ravel()
    return z * x.std() * np.sqrt(x.size) / (tau * spend.sum())


# ---- target_roi ----

@pytest.mark.parametrize("tau", [1.0, 1.2])
def test_target_roi_meets_a_binding_return_on_spend_and_wins_more_than_truthful(tau):
    """Truthful bidding returns 1.25 here; a value maximiser with target 1.0 or 1.2 bids above
    value until its return on spend is down at the target (the constraint binds), and so
    wins more value than truthful bidding."""
    rounds = 40
    spend, value, multiplier = play(market({"strategy": "target_roi", "params": {"target": tau}}, rounds))
    truthful_spend, truthful_value, _ = play(market({"strategy": "truthful"}, rounds))
    tolerance = ratio_tolerance(value, spend, tau)
    assert tolerance < 0.02  # the sample is large enough for the check to mean something
    ros = value.sum() / spend.sum()
    assert abs(ros / tau - 1) < tolerance, (ros, tolerance)
    per_agent = value.sum(axis=0) / spend.sum(axis=0)
    assert abs(np.median(per_agent) / tau - 1) < 0.02  # each agent's own constraint, not just on average
    assert truthful_value.sum() / truthful_spend.sum() > 1.24  # the target does bind
    assert value.sum() > 1.05 * truthful_value.sum()
    assert spend.sum() > truthful_spend.sum()
    assert np.median(multiplier[-1]) > 1.0  # it overbids, as it should
    assert np.median(np.abs(multiplier[-10:] / multiplier[-10:].mean(axis=0) - 1)) < 0.05  # settled


def test_target_roi_with_a_binding_budget_paces_and_keeps_its_return():
    """Budgets far below what the return-on-spend target allows: the budget binds (mu > 0),
    the return on spend is slack (lambda ~ 0), the budget is used up by the last round
    without running dry early, and never exceeded (exact budgets)."""
    rounds, tau = 40, 1.0
    simulation = market({"strategy": "target_roi", "params": {"target": tau},
                         "budget": {"dist": "uniform", "low": 300.0, "high": 500.0}}, rounds)
    spend, value, _ = play(simulation)
    budget = simulation.state.budget[simulation.state.population_slice(0)]
    total = spend.sum(axis=0)
    assert np.all(total <= budget * (1 + 1e-12))
    assert total.sum() / budget.sum() > 0.97
    assert np.median(total / budget) > 0.97
    assert spend[-5:].sum(axis=1).min() > 0.3 * budget.sum() / rounds  # still buying at the end
    strategy = simulation.strategies[0]
    assert np.median(strategy.mu) > 0.3 and np.median(strategy.lam) < 0.1
    assert value.sum() / spend.sum() > tau * (1 + ratio_tolerance(value, spend, tau))  # slack


# ---- target_cpa ----

def test_target_cpa_meets_its_cost_per_conversion():
    """Values are conversion probabilities U[0, 0.1]; competitors bid up to 0.5. The textbook
    bid cpa x p pays less than cpa per conversion in a second-price auction; target_cpa
    bids above it until the cost per conversion is at target, and gets more conversions."""
    rounds, cpa = 40, 4.0
    conversions = {"dist": "uniform", "low": 0.0, "high": 0.1}
    others = {"strategy": "truthful", "values": {"dist": "uniform", "low": 0.0, "high": 0.5}}
    spend, converted, _ = play(market({"strategy": "target_cpa", "params": {"cpa": cpa},
                                       "values": conversions}, rounds, others=others))
    textbook_spend, textbook_converted, _ = play(market({"strategy": "constant_shade", "params": {"multiplier": cpa},
                                                         "values": conversions}, rounds, others=others))
    # spend <= cpa x conversions is the return-on-spend constraint with tau = 1 / cpa
    tolerance = ratio_tolerance(converted, spend, 1 / cpa)
    assert tolerance < 0.02
    cost = spend.sum() / converted.sum()
    assert abs(cost / cpa - 1) < tolerance, (cost, tolerance)
    assert textbook_spend.sum() / textbook_converted.sum() < 0.9 * cpa
    assert converted.sum() > 1.05 * textbook_converted.sum()


def test_target_cpa_is_target_roi_with_the_inverse_target():
    roi = play(market({"strategy": "target_roi", "params": {"target": 0.25}}, 6))
    cpa = play(market({"strategy": "target_cpa", "params": {"cpa": 4.0}}, 6))
    for a, b in zip(roi, cpa):
        np.testing.assert_array_equal(a, b)


# ---- pid_pacing ----

DAY, DAYS = 12, 4
TRAFFIC = np.array([0.5] * 4 + [1.5] * 4 + [1.0] * 4)  # auctions per round, by round of the day


def paced_market(traffic: np.ndarray | None, seed: int = 3, **params) -> Simulation:
    # 200 paced agents with budget rate ~4.2 a round; bidding values they would spend ~3x that
    events = []
    if traffic is not None:
        events = [{"at_round": day * DAY + hour, "set": {"run.auctions_per_round": int(20_000 * traffic[hour])}}
                  for day in range(DAYS) for hour in range(DAY) if hour == 0 or traffic[hour] != traffic[hour - 1]]
    return market({"strategy": "pid_pacing", "params": {"rounds_per_day": DAY} | params,
                   "budget": {"dist": "uniform", "low": 150.0, "high": 250.0}},
                  DAY * DAYS, seed=seed, events=events)


def tracking(simulation: Simulation, spend: np.ndarray):
    """Population cumulative spend and its plan, in days of budget; each day's spend / budget."""
    budget = simulation.state.budget[simulation.state.population_slice(0)].sum()
    plans = simulation.strategies[0].plans
    cumulative = spend.sum(axis=1).cumsum() / (budget / DAYS)
    plan = np.concatenate([day + plans[day] for day in range(DAYS)])
    daily = spend.sum(axis=1).reshape(DAYS, DAY).sum(axis=1) / (budget / DAYS)
    return cumulative, plan, daily


# Tolerances, population level, in shares of a day's budget. After the first day, the
# cumulative spend stays within FLAT_TRACKING of the plan under flat traffic (the runs: within
# 0.025), and within STEP_TRACKING under traffic that triples from one round to the next
# (the runs: within 0.075): a round is 1/12 = 0.083 of the day, so that is about one round
# of lag at a traffic step, which the controller only sees after the round. Each day's
# spend is within DAILY_TOLERANCE of the day's budget, the first day included (runs: 3%).
FLAT_TRACKING = 0.05
STEP_TRACKING = 0.1
DAILY_TOLERANCE = 0.05


@pytest.mark.parametrize("seed", [3, 4])
def test_pid_pacing_tracks_the_plan_and_spends_each_days_budget(seed):
    simulation = paced_market(None, seed=seed)
    spend, _, multiplier = play(simulation)
    cumulative, plan, daily = tracking(simulation, spend)
    assert spend[0].sum() > 2 * spend[1:].sum(axis=1).mean()  # unpaced, the first round overspends
    assert np.abs(cumulative - plan)[DAY:].max() < FLAT_TRACKING
    assert np.all(np.abs(daily - 1) < DAILY_TOLERANCE), daily
    budget = simulation.state.budget[simulation.state.population_slice(0)]
    total = spend.sum(axis=0)
    assert np.all(total <= budget * (1 + 1e-12))
    assert total.sum() / budget.sum() > 0.97
    # flat traffic: the learned plan stays near uniform, and paced multipliers sit well below 1
    for day_plan in simulation.strategies[0].plans[1:]:
        assert np.abs(np.diff(day_plan, prepend=0.0) * DAY - 1).max() < 0.25
    assert multiplier[DAY:].mean() < 0.8


def test_pid_pacing_learns_the_daily_traffic_pattern():
    """Traffic 0.5x, then 1.5x, then 1x over each day: from day 2 the plan puts spend where
    the traffic is, and spend keeps tracking it."""
    simulation = paced_market(TRAFFIC)
    spend, _, multiplier = play(simulation)
    cumulative, plan, daily = tracking(simulation, spend)
    assert np.abs(cumulative - plan)[DAY:].max() < STEP_TRACKING
    assert np.all(np.abs(daily - 1) < DAILY_TOLERANCE), daily
    traffic_share = TRAFFIC / TRAFFIC.sum()
    plans = simulation.strategies[0].plans
    assert len(plans) == DAYS
    uniform_distance = np.abs(np.diff(plans[0], prepend=0.0) - traffic_share).sum()  # 1/3
    distances = []
    for day in range(1, DAYS):
        share = np.diff(plans[day], prepend=0.0)
        low, high, middle = share[:4].sum(), share[4:8].sum(), share[8:].sum()  # traffic 1/6, 1/2, 1/3
        assert low < 0.25 < middle < 0.4 and high > 0.38, (day, low, middle, high)
        distances.append(np.abs(share - traffic_share).sum())
    assert distances[0] < 0.6 * uniform_distance
    assert max(distances[1:]) < 0.4 * uniform_distance, distances
    # the fixed point: each round of the day bought at about the same multiplier
    last_day = multiplier[-DAY:].mean(axis=1)
    first_day = multiplier[:DAY].mean(axis=1)
    assert last_day.std() / last_day.mean() < 0.7 * first_day.std() / first_day.mean()


def test_pid_pacing_day_defaults_to_the_whole_run():
    simulation = market({"strategy": "pid_pacing", "budget": {"dist": "uniform", "low": 40.0, "high": 80.0}}, 16)
    spend, _, _ = play(simulation)
    strategy = simulation.strategies[0]
    assert strategy.day_length == 16 and len(strategy.plans) == 1
    budget = simulation.state.budget[simulation.state.population_slice(0)]
    assert 0.95 < spend.sum() / budget.sum() <= 1.0


# ---- determinism and parameters ----

@pytest.mark.parametrize("population", [
    {"strategy": "target_roi", "params": {"target": 1.1}},
    {"strategy": "target_roi", "params": {"target": 1.1, "replan": False},
     "budget": {"dist": "uniform", "low": 50.0, "high": 100.0}},
    {"strategy": "target_cpa", "params": {"cpa": 2.0}},
    {"strategy": "pid_pacing", "params": {"rounds_per_day": 3}, "budget": {"dist": "uniform", "low": 20.0, "high": 30.0}},
], ids=["target_roi", "target_roi-budget", "target_cpa", "pid_pacing"])
def test_same_seed_same_multipliers(population):
    first = play(market(population, 8, seed=11, auctions=5_000))[2]
    again = play(market(population, 8, seed=11, auctions=5_000))[2]
    other = play(market(population, 8, seed=12, auctions=5_000))[2]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.all(np.isfinite(first)) and np.all(first >= 0)


def only_problem(population: dict):
    with pytest.raises(InputError) as caught:
        Scenario.from_dict({"run": {"rounds": 2, "auctions_per_round": 10}, "market": {"bidders_per_auction": 2},
                            "populations": [{"name": "a", "size": 4, "values": UNIFORM} | population]})
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


BUDGET = {"dist": "constant", "value": 10.0}


@pytest.mark.parametrize("population, path, expect", [
    ({"strategy": "target_roi", "params": {"target": -1.0}}, "populations[0].params.target",
     ["(got -1.0)", "use a value > 0"]),
    ({"strategy": "target_roi", "params": {}}, "populations[0].params.target", ["required field is missing"]),
    ({"strategy": "target_roi", "params": {"target": 1.0, "step": 0.0}}, "populations[0].params.step",
     ["use a value > 0"]),
    ({"strategy": "target_roi", "params": {"target": 1.0, "initial_lambda": -2.0}},
     "populations[0].params.initial_lambda", ["use a value >= 0"]),
    ({"strategy": "target_roi", "params": {"target": 1.0, "stepp": 1.0}}, "populations[0].params.stepp",
     ["unknown key 'stepp'", "did you mean 'step'"]),
    ({"strategy": "target_roi", "params": {"target": "high"}}, "populations[0].params.target",
     ["'high'", "write a number"]),
    ({"strategy": "target_cpa", "params": {"cpa": 0.0}}, "populations[0].params.cpa", ["use a value > 0"]),
    ({"strategy": "target_cpa", "params": {"cpa": 2.0, "target": 2.0}}, "populations[0].params.target",
     ["unknown key 'target'"]),
    ({"strategy": "pid_pacing", "params": {"kp": -0.1}, "budget": BUDGET}, "populations[0].params.kp",
     ["use a value >= 0"]),
    ({"strategy": "pid_pacing", "params": {"rounds_per_day": 0}, "budget": BUDGET},
     "populations[0].params.rounds_per_day", ["use a value >= 1"]),
    ({"strategy": "pid_pacing", "params": {"rounds_per_day": 2.5}, "budget": BUDGET},
     "populations[0].params.rounds_per_day", ["write an integer"]),
    ({"strategy": "pid_pacing", "params": {"min_multiplier": 2.0}, "budget": BUDGET}, "populations[0].params",
     ["min_multiplier 2 is above max_multiplier 1", "make min_multiplier <= max_multiplier"]),
    ({"strategy": "pid_pacing"}, "populations[0].budget", ["needs a budget"]),
])
def test_bad_params_name_the_field(population, path, expect):
    problem = only_problem(population)
    assert problem.path == path, problem
    for text in expect:
        assert text in str(problem), (text, str(problem))


def test_a_new_target_during_the_run_applies_to_the_whole_run():
    """Raised from 1.0 to 1.1 after a quarter of the run: whatever the first quarter returned
    is made up over the rest (re-planning), so the whole run returns 1.1."""
    events = [{"at_round": 10, "set": {"populations.auto.params.target": 1.1}}]
    spend, value, _ = play(market({"strategy": "target_roi", "params": {"target": 1.0}}, 40, events=events))
    assert abs(value.sum() / spend.sum() / 1.1 - 1) < ratio_tolerance(value, spend, 1.1)


def test_example_scenario_runs(tmp_path):
    scenario = Scenario.from_toml(SCENARIOS / "autobidders.toml")
    assert {p.strategy for p in scenario.populations} >= {"target_roi", "target_cpa", "pid_pacing"}
    result = bidscape.run(scenario, out=tmp_path / "run")
    agents = result.agents
    assert agents.height > 0 and result.market.height == scenario.run.rounds
    assert result.scenario == scenario  # the resolved params round-trip through the manifest

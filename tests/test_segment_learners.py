"""Strategies that see the segment: grid learners with ``contexts = "segment"`` and ``segment_pacing``.

The learners' counterfactual utilities per segment are checked against closed forms (first price
against one truthful competitor, 4 standard errors of a ratio estimator over agents); the learned
shading must differ by segment as the closed forms say; one segment reproduces the learner
without contexts exactly; the pacer spends its budget in the split it was given and never more.
"""

import copy
import math

import numpy as np
import pytest

import bidscape
from bidscape import Scenario
from bidscape.loop.simulation import Simulation
from scenario_testing import one_problem

Z = 4.0
GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
WEAK = 0.25  # the weak segment's competitors have values U[0, WEAK]
LEARNERS = 100


def first_price(strategy="hedge", contexts="segment", rounds=12, learners=LEARNERS, segments=None, seed=3):
    """Learners (values U[0, 1]) against one truthful competitor per auction: in segment "strong" its
    value is U[0, 1], in "weak" U[0, 0.25]; the competitors are 100x as many as the learners, so a
    learner meets another learner in 1% of its auctions."""
    segments = segments or [{"name": "strong", "share": 0.5}, {"name": "weak", "share": 0.5}]
    names = [s["name"] for s in segments]
    competitors = [{"name": f"{name}-rivals", "size": 100 * LEARNERS, "strategy": "truthful", "targets": [name],
                    "values": {"dist": "uniform", "low": 0.0, "high": 1.0 if name != "weak" else WEAK}}
                   for name in names]
    return {
        "run": {"name": "segment-learners", "seed": seed, "rounds": rounds, "auctions_per_round": 40_000,
                "record_agents": "none"},
        "mechanism": {"type": "first_price"},
        "market": {"bidders_per_auction": 2},
        "traffic": {"segments": segments},
        "populations": [{"name": "learners", "size": learners, "strategy": strategy,
                         "values": {"dist": "uniform", "low": 0.0, "high": 1.0},
                         "params": {"grid": GRID, "contexts": contexts}}, *competitors],
    }


def expected_utility(m: float, competitor_high: float) -> float:
    """E[(1 - m) v 1{m v > b}], v ~ U[0, 1] and b ~ U[0, h]: (1 - m) v min(m v / h, 1) integrated."""
    c = min(1.0, competitor_high / m)  # below v = c the win probability is m v / h
    return (1.0 - m) * (m * c ** 3 / (3.0 * competitor_high) + (1.0 - c * c) / 2.0)


def play(raw, rounds=None):
    """Run ``raw``; return the simulation and each round's counterfactuals of the learners."""
    sim = Simulation(Scenario.from_dict(raw), threads=1)
    utility = taken = 0.0
    for _ in range(rounds or raw["run"]["rounds"]):
        sim.step()
        u, t = sim._counterfactuals.of(0)
        utility, taken = utility + u, taken + t
    return sim, utility, taken


def test_counterfactuals_per_segment_match_first_price_closed_forms():
    sim, utility, taken = play(first_price(rounds=10))
    learner = sim.strategies[0]
    assert learner.segments == 2 and utility.shape == (LEARNERS * 2, len(GRID))
    for s, high in enumerate([1.0, WEAK]):
        u = utility[s::2]  # rows i * 2 + s: agent i in segment s
        n = taken[s::2]
        assert n.sum() > 3_000
        for k, m in enumerate(GRID):
            mean = u[:, k].sum() / n.sum()
            # ratio estimator over agents (each agent's participations are one cluster)
            se = math.sqrt(((u[:, k] - mean * n) ** 2).sum()) / n.sum()
            assert abs(mean - expected_utility(m, high)) <= Z * se + 1e-12, (s, m, mean, expected_utility(m, high))


def test_learners_shade_each_segment_as_its_competition_asks():
    best = [GRID[int(np.argmax([expected_utility(m, h) for m in GRID]))] for h in (1.0, WEAK)]
    assert best == [0.5, 0.3]  # the closed forms' best fixed multipliers
    sim, _, _ = play(first_price(rounds=30))
    learner = sim.strategies[0]
    multipliers = sim.state.segment_multiplier[:LEARNERS]  # learners are the first agents
    np.testing.assert_array_equal(multipliers, np.take(learner.grid, learner.arm).reshape(LEARNERS, 2))
    strong, weak = multipliers.mean(axis=0)
    # hedge's weights concentrate on the best arm of each segment: the strong segment's play sits near
    # 0.5, the weak one's near 0.3; 0.1 apart on the grid, so the means must be at least that far apart
    assert abs(strong - 0.5) < 0.1 and abs(weak - 0.3) < 0.1 and strong - weak > 0.1, (strong, weak)
    # every agent's regret is the contextual one: summed over segments, against the best arm of each
    regret = learner.regret()
    assert regret.shape == (LEARNERS,) and np.all(np.isfinite(regret))


def test_a_bandit_learner_learns_per_segment_too():
    sim, utility, taken = play(first_price(strategy="exp3", rounds=4))
    learner = sim.strategies[0]
    assert learner.plays.shape == (2 * LEARNERS, len(GRID)) and learner.plays.sum() == 2 * LEARNERS * 4
    assert learner.regret().shape == (LEARNERS,)


def test_one_segment_plays_exactly_as_without_contexts():
    one = [{"name": "strong", "share": 1.0}]
    with_contexts, u1, _ = play(first_price(contexts="segment", rounds=5, segments=one))
    without, u0, _ = play(first_price(contexts="none", rounds=5, segments=one))
    np.testing.assert_array_equal(with_contexts.strategies[0].arm, without.strategies[0].arm)
    np.testing.assert_array_equal(u1, u0)
    np.testing.assert_array_equal(with_contexts.strategies[0].regret(), without.strategies[0].regret())
    np.testing.assert_array_equal(with_contexts.state.remaining_budget, without.state.remaining_budget)


def pacing(split=None, targets=None, rounds=40, budget=30.0, mechanism="second_price"):
    params = {"step": 0.3, "replan": True}
    if split is not None:
        params["split"] = split
    pacers = {"name": "pacers", "size": 2_000, "strategy": "segment_pacing", "params": params,
              "values": {"dist": "uniform", "low": 0.0, "high": 1.0}, "budget": {"dist": "constant", "value": budget}}
    if targets is not None:
        pacers["targets"] = targets
    return {
        "run": {"name": "segment-pacing", "seed": 5, "rounds": rounds, "auctions_per_round": 20_000,
                "record_agents": "none"},
        "mechanism": {"type": mechanism},
        "market": {"bidders_per_auction": 4},
        "traffic": {"segments": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.3}]},
        "populations": [pacers, {"name": "others", "size": 2_000, "strategy": "truthful",
                                 "values": {"dist": "uniform", "low": 0.0, "high": 1.0}}],
    }


def spend_by_segment(raw):
    sim = Simulation(Scenario.from_dict(raw), threads=1)
    rounds = raw["run"]["rounds"]
    spend = np.zeros((rounds, 2))
    for r in range(rounds):
        sim.step()
        spend[r] = sim.state.segment_outcomes[:2_000, :, 0].sum(axis=0)
    return sim, spend


@pytest.mark.parametrize("split", [{"a": 0.4, "b": 0.6}, None])
def test_segment_pacing_spends_the_budget_in_its_split(split):
    sim, spend = spend_by_segment(pacing(split))
    pacer = sim.strategies[0]
    want = np.array([0.4, 0.6]) if split else np.array([0.7, 0.3])  # unset: the traffic's shares
    np.testing.assert_allclose(pacer.split, want)
    budget = sim.state.budget[:2_000]
    spent = budget - sim.state.remaining_budget[:2_000]
    assert np.all(spent <= budget)  # one budget, exact: never overspent
    assert spent.sum() > 0.97 * budget.sum()  # and used (the budget binds: truthful spend is ~3x it)
    # once the duals have settled (the last half), each segment takes its share within 3% of the spend
    late = spend[20:].sum(axis=0)
    np.testing.assert_allclose(late / late.sum(), want, atol=0.03)
    # the segment that must take more than its traffic gives pays for it with a higher multiplier
    multiplier = 1.0 / (1.0 + pacer.mu.mean(axis=0))
    if split:
        assert multiplier[1] > multiplier[0]


def test_segment_pacing_splits_over_the_segments_it_targets():
    sim, spend = spend_by_segment(pacing(targets=["b"], rounds=4))
    np.testing.assert_allclose(sim.strategies[0].split, [0.0, 1.0])
    assert spend[:, 0].sum() == 0.0 and spend[:, 1].sum() > 0.0


def test_per_segment_strategies_need_traffic():
    raw = first_price()
    del raw["traffic"]
    for population in raw["populations"][1:]:
        del population["targets"]
    problem = one_problem(raw)
    assert problem.path == "populations[0].params.contexts" and "[traffic]" in problem.message
    raw = pacing()
    del raw["traffic"]
    problem = one_problem(raw)
    assert problem.path == "populations[0].strategy" and "[traffic]" in problem.message


def test_bad_splits_name_the_field():
    problem = one_problem(pacing({"a": 0.5, "c": 0.5}))
    assert problem.path == "populations[0].params.split" and "'c'" in problem.message and "a, b" in problem.fix
    problem = one_problem(pacing({"a": 0.5, "b": 0.6}))
    assert "sum to 1" in problem.message


def test_per_segment_learning_refuses_all_pay_auctions():
    raw = first_price()
    raw["mechanism"]["type"] = "all_pay"
    problem = one_problem(raw)
    assert problem.path == "populations[0].strategy" and "all-pay" in problem.message


def test_contexts_cannot_change_during_a_run():
    raw = first_price()
    raw["events"] = [{"at_round": 2, "set": {"populations.learners.params.contexts": "none"}}]
    problem = one_problem(raw)
    assert "contexts" in problem.message


def test_an_event_may_change_the_split():
    raw = pacing({"a": 0.4, "b": 0.6}, rounds=3)
    raw["events"] = [{"at_round": 1, "set": {"populations.pacers.params.split": {"a": 0.5, "b": 0.5}}}]
    sim = Simulation(Scenario.from_dict(raw), threads=1)
    sim.step()
    np.testing.assert_allclose(sim.strategies[0].split, [0.4, 0.6])
    sim.step()
    np.testing.assert_allclose(sim.strategies[0].split, [0.5, 0.5])


def test_the_scenario_dict_keeps_the_new_fields():
    raw = pacing({"a": 0.4, "b": 0.6})
    again = Scenario.from_dict(copy.deepcopy(Scenario.from_dict(raw).to_dict()))
    assert again.populations[0].params["split"] == {"a": 0.4, "b": 0.6}


@pytest.mark.parametrize("strategy", ["hedge", "exp3"])
def test_segment_learners_pass_check_strategy_in_the_market_with_segments(strategy):
    report = bidscape.check_strategy(strategy, {"contexts": "segment"})
    report.raise_for_failures()
    assert report.markets and all(m.startswith("segments") for m in report.markets), report.markets

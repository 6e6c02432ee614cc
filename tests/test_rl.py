"""RL: PPO training (deterministic, moves towards a known best response), the ``rl_policy`` and
``external`` strategies, the PettingZoo environment, the ``train-rl`` command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bidscape import InputError, Scenario
from bidscape.bidders import STRATEGIES
from bidscape.bidders.external import External
from bidscape.bidders.rl_policy import RLPolicy

torch = pytest.importorskip("torch")

from bidscape.loop.simulation import Simulation  # noqa: E402
from bidscape.rl.policy import FEATURES, Policy, load_policy  # noqa: E402
from bidscape.rl.train import (PPOConfig, cohort_scenario, deterministic_torch, evaluate,  # noqa: E402
                               play_episode, train, with_seed)

for _strategy in (External, RLPolicy):  # until bidscape.bidders registers them itself
    if _strategy.name not in STRATEGIES:
        STRATEGIES.register(_strategy.name, _strategy)

UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}
SHADE = 0.8  # the fixed competitors' multiplier
BIDDERS = 4


def first_price_market(learners: int = 200, fixed: int = 1800, auctions: int = 20_000, rounds: int = 10,
                       seed: int = 1) -> Scenario:
    """Learners (strategy to be replaced) among competitors bidding SHADE x value, U[0,1] values."""
    return Scenario.from_dict({
        "run": {"name": "best-response", "seed": seed, "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": "none", "auction_sample_rate": 0.0},
        "mechanism": {"type": "first_price"},
        "market": {"bidders_per_auction": BIDDERS},
        "populations": [
            {"name": "learners", "size": learners, "strategy": "truthful", "values": UNIFORM},
            {"name": "fixed", "size": fixed, "strategy": "constant_shade", "params": {"multiplier": SHADE},
             "values": UNIFORM},
        ],
    })


def other_market(weights: str, deterministic: bool = True) -> Scenario:
    """Not the training market: second price, budgets, lognormal values, another size."""
    return Scenario.from_dict({
        "run": {"name": "elsewhere", "seed": 11, "rounds": 6, "auctions_per_round": 5_000,
                "record_agents": "agent", "auction_sample_rate": 0.01},
        "mechanism": {"type": "second_price", "reserve": 0.1},
        "market": {"bidders_per_auction": 5},
        "populations": [
            {"name": "rl", "size": 150, "strategy": "rl_policy",
             "params": {"weights": weights, "deterministic": deterministic},
             "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
             "budget": {"dist": "uniform", "low": 5.0, "high": 20.0}},
            {"name": "others", "size": 300, "strategy": "truthful",
             "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}},
        ],
    })


def test_importing_bidscape_and_registering_the_strategies_does_not_import_torch():
    code = ("import sys, bidscape, bidscape.api, bidscape.rl, bidscape.rl.cli, bidscape.bidders.external, "
            "bidscape.bidders.rl_policy; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_is_deterministic_under_a_seed():
    scenario = first_price_market(learners=60, fixed=140, auctions=2_000, rounds=4)
    config = PPOConfig(episodes=2, seed=5, minibatch=64)
    first = train(scenario, "learners", config).policy.state_dict()
    second = train(scenario, "learners", config).policy.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = train(scenario, "learners", PPOConfig(episodes=2, seed=6, minibatch=64)).policy.state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)
    assert torch.get_num_threads() >= 1 and not torch.are_deterministic_algorithms_enabled()  # restored


# ---- a market whose best response is known ----
#
# Each auction has BIDDERS = 4 bidders with values U[0,1]; a learner bidding m*v against k = 3
# opponents wins with probability q(m v)^3, q(b) the chance that one opponent bids below b. Against
# opponents bidding SHADE*v (q(b) = min(b / SHADE, 1)), expected utility per auction is
# (1 - m) m^3 / (5 SHADE^3) for m <= SHADE, so the best response is m = 3/4 = (n-1)/n for any
# SHADE >= 3/4. Two corrections to this number are exact and computed below: (a) a tenth of any
# learner's opponents are learners themselves, playing the trained policy; (b) PPO maximises the
# utility of its *stochastic* policy, the multiplier squash(mu + sigma * eps): with exploration noise
# sigma the best mu is below the noiseless one (utility falls faster above 3/4 than below), and
# it tends to 3/4 as sigma -> 0.

def _squash(z):
    return 1.5 / (1.0 + np.exp(-z))  # PPOConfig's action range [0, 1.5]


def _utility_curve(learner_share: float, learner_multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected utility per auction of bidding m*v, on a grid of m over the action range."""
    grid = np.linspace(0.0, 1.5, 1501)
    v = (np.arange(2000) + 0.5) / 2000
    bids = np.linspace(0.0, 1.5, 3001)
    below_learner = np.minimum(bids[:, None] / learner_multipliers[None, :], 1.0).mean(axis=1)
    q = learner_share * below_learner + (1 - learner_share) * np.minimum(bids / SHADE, 1.0)
    win = np.interp(grid[:, None] * v[None, :], bids, q) ** (BIDDERS - 1)
    return grid, (v * (1 - grid[:, None]) * win).mean(axis=1)


def test_training_moves_the_multiplier_to_the_known_best_response():
    learners, fixed = 200, 1800
    scenario = first_price_market(learners, fixed)
    result = train(scenario, "learners", PPOConfig(episodes=30, seed=3))
    policy = result.policy
    sigma = float(policy.log_std.detach().exp())
    held_out = 4242
    trained = evaluate(scenario, "learners", policy, seed=held_out)
    with deterministic_torch(3):
        untrained = evaluate(scenario, "learners", Policy(), seed=held_out)
    m = trained["mean_multiplier"]

    # the target: the best mu for a learner with the trained noise, given the opponents' mix
    eps = np.random.default_rng(0).standard_normal(400)
    learner_share = (learners - 1) / (learners + fixed - 1)
    grid, curve = _utility_curve(learner_share, _squash(np.log(m / (1.5 - m)) + sigma * eps))
    mus = np.linspace(-1.0, 1.0, 401)
    utility = np.interp(_squash(mus[:, None] + sigma * eps[None, :]), grid, curve).mean(axis=1)
    best = int(np.argmax(utility))
    target = float(_squash(mus[best]))
    assert 0.65 < target < 0.75  # between the noisy and the noiseless best response

    # the tolerance: what one episode's data can resolve. Each PPO update sees one episode of
    # n = learners x rounds agent-steps; policies whose expected utility per auction differs by
    # less than two standard errors of that episode's mean cannot be told apart by it.
    training, cohort = cohort_scenario(scenario, "learners")
    with deterministic_torch(7):
        rollout = play_episode(with_seed(training, 777), cohort, policy, torch.Generator().manual_seed(7))
    auctions_each = scenario.run.auctions_per_round * BIDDERS / (learners + fixed)  # per learner and round
    per_auction = rollout.reward.double().numpy().ravel() / auctions_each
    standard_error = per_auction.std() / np.sqrt(per_auction.size)
    resolvable = utility >= utility[best] - 2 * standard_error
    lowest, highest = _squash(mus[resolvable].min()), _squash(mus[resolvable].max())
    assert highest - lowest < 0.15  # the test has teeth: the start (1.0) is far outside
    assert lowest <= m <= highest, (m, target, (lowest, highest), sigma)

    # and the cohort is better off than it was: bidding its value (m ~ 1) it earned about nothing
    assert untrained["mean_multiplier"] == pytest.approx(1.0, abs=0.01)
    assert trained["mean_utility"] > untrained["mean_utility"] + 20 * standard_error * auctions_each
    assert result.history[-1].mean_utility > result.history[0].mean_utility


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    scenario = first_price_market(learners=100, fixed=300, auctions=4_000, rounds=5)
    result = train(scenario, "learners", PPOConfig(episodes=3, seed=2, minibatch=256))
    path = tmp_path_factory.mktemp("rl") / "weights.pt"
    result.save(path)
    return path


def test_saved_weights_load_with_their_metadata(weights):
    policy, metadata = load_policy(weights)
    assert metadata["algorithm"] == "ppo"
    assert metadata["observation"]["features"] == list(FEATURES)
    assert (metadata["action"]["low"], metadata["action"]["high"]) == (0.0, 1.5)
    assert metadata["training"]["scenario"] == "best-response"
    assert metadata["training"]["population"] == "learners"
    assert metadata["hyperparameters"]["seed"] == 2
    saved = torch.load(weights, weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in policy.state_dict().items())


def _play(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    simulation = Simulation(scenario)
    multipliers, spend = [], []
    while not simulation.finished:
        simulation.step()
        multipliers.append(simulation.state.multiplier.copy())
        spend.append(simulation.state.spend.copy())
    return np.array(multipliers), np.array(spend)


@pytest.mark.parametrize("deterministic", [True, False])
def test_a_trained_policy_runs_as_a_strategy_elsewhere_reproducibly(weights, deterministic):
    scenario = other_market(str(weights), deterministic)
    multipliers, spend = _play(scenario)
    again_multipliers, again_spend = _play(scenario)
    assert np.array_equal(multipliers, again_multipliers) and np.array_equal(spend, again_spend)
    rl = multipliers[:, :150]
    assert np.all((rl >= 0) & (rl <= 1.5)) and np.all(np.isfinite(rl))
    assert spend[:, :150].sum() > 0
    if not deterministic:  # sampled: agents differ within a round
        assert rl.std(axis=1).min() > 0
    other_seed = _play(scenario.with_updates({"run.seed": 12}))[0]
    assert not np.array_equal(multipliers, other_seed)


def test_a_run_with_an_rl_policy_writes_identical_tables_twice(weights, tmp_path):
    import bidscape

    scenario = other_market(str(weights), deterministic=False)
    first = bidscape.run(scenario, out=tmp_path / "a", progress=False)
    second = bidscape.run(scenario, out=tmp_path / "b", progress=False)
    assert first.agents.equals(second.agents) and first.market.equals(second.market)


def test_a_missing_weights_file_names_params_weights(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(InputError) as error:
        other_market(str(missing))
    message = str(error.value)
    assert "populations[0].params.weights" in message and "does not exist" in message
    assert "bidscape train-rl" in message
    with pytest.raises(InputError, match=r"params\.weights"):
        load_policy(missing, "populations.rl.params.weights")


def test_a_file_that_is_not_a_policy_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"params\.weights.*cannot load policy weights"):
        Simulation(other_market(str(bad)))


def test_without_torch_rl_policy_names_the_install_fix(weights, monkeypatch):
    import bidscape.bidders.rl_policy as module

    monkeypatch.setattr(module, "torch_missing", lambda: True)
    with pytest.raises(InputError) as error:
        other_market(str(weights))
    assert 'pip install "bidscape[rl]"' in str(error.value)


def test_an_unknown_population_is_an_input_error():
    with pytest.raises(InputError, match="did you mean 'learners'"):
        train(first_price_market(), "learner", PPOConfig(episodes=1))


def test_external_holds_multipliers_set_from_outside():
    scenario, cohort = cohort_scenario(first_price_market(learners=10, fixed=30, auctions=500, rounds=3), "learners",
                                       multiplier=0.5)
    simulation = Simulation(scenario)
    strategy = simulation.strategies[cohort]
    simulation.step()
    assert np.all(simulation.state.multiplier[:10] == 0.5)
    strategy.set_multipliers([0.9, 0.1], agents=slice(0, 2))
    simulation.step()
    simulation.step()
    assert list(simulation.state.multiplier[:3]) == [0.9, 0.1, 0.5]
    assert strategy.last_feedback.spend.shape == (10,)
    with pytest.raises(ValueError):
        strategy.set_multipliers(-1.0)


# ---- PettingZoo ----

def _env(**kwargs):
    pytest.importorskip("pettingzoo")
    from bidscape.rl.env import MarketEnv

    scenario = first_price_market(learners=20, fixed=60, auctions=2_000, rounds=6)
    return MarketEnv(scenario, population="learners", learners=3, **kwargs)


def test_market_env_passes_the_pettingzoo_parallel_api_test():
    env = _env()
    from pettingzoo.test import parallel_api_test

    parallel_api_test(env, num_cycles=20)
    assert env.possible_agents == ["bidder_0", "bidder_1", "bidder_2"]


def _rollout(env, seed: int):
    observations, _ = env.reset(seed=seed)
    for agent in env.possible_agents:
        env.action_space(agent).seed(seed)
    trace = []
    steps = 0
    while env.agents:
        for agent, obs in observations.items():
            assert env.observation_space(agent).contains(obs), (agent, obs)
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        steps += 1
        trace.append((sorted(rewards.items()), [o.tolist() for o in observations.values()],
                      sorted(truncations.items())))
        assert not any(terminations.values())
    assert steps == 6 and all(truncated for _, truncated in trace[-1][2])
    assert all(not truncated for _, truncated in trace[0][2])
    return trace


def test_market_env_rollouts_are_deterministic_under_a_seed():
    env = _env()
    first = _rollout(env, seed=3)
    assert _rollout(env, seed=3) == first
    assert _rollout(_env(), seed=3) == first
    assert _rollout(env, seed=4) != first
    rewards = [r for step in first for _, r in step[0]]
    assert any(r != 0 for r in rewards)


def test_market_env_runs_background_agents_on_a_trained_policy(weights):
    env = _env(background_weights=str(weights))
    env.reset(seed=1)
    env.step({agent: np.array([1.0], np.float32) for agent in env.agents})
    multipliers = env.simulation.state.multiplier[:20]
    assert np.all(multipliers[:3] == 1.0)
    assert not np.allclose(multipliers[3:], 1.0)  # the background follows the policy, not the default 1.0


def test_train_rl_command_writes_weights(tmp_path, write_scenario):
    import typer
    from typer.testing import CliRunner

    from bidscape.rl.cli import train as train_command

    app = typer.Typer()
    app.command(name="train-rl")(train_command)
    app.command(name="noop")(lambda: None)  # two commands: typer keeps the subcommand name
    path = write_scenario()  # the tiny scenario of conftest: populations "a" and "b"
    out = tmp_path / "w.pt"
    runner = CliRunner()
    result = runner.invoke(app, ["train-rl", str(path), "--population", "b", "--out", str(out),
                                 "--episodes", "2", "--seed", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "agent-steps/s" in result.output and "rl_policy" in result.output
    _, metadata = load_policy(out)
    assert metadata["training"]["population"] == "b" and metadata["training"]["episodes"] == 2
    again = runner.invoke(app, ["train-rl", str(path), "--population", "b", "--out", str(out)])
    assert again.exit_code != 0 and isinstance(again.exception, InputError)

"""The Mesa integration: one step is one round, and the market is the same as ``bidscape.run``'s."""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

mesa = pytest.importorskip("mesa")

import polars as pl  # noqa: E402

import bidscape  # noqa: E402
from bidscape import InputError, Scenario  # noqa: E402
from bidscape.mesa import CohortAgent, MarketModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# 300 agents in three populations (one paced with budgets, one shading), 4 rounds x 3,000 auctions.
SCENARIO = {
    "run": {"name": "mesa-test", "seed": 4, "rounds": 4, "auctions_per_round": 3000,
            "record_agents": "agent", "auction_sample_rate": 0.02},
    "mechanism": {"type": "second_price", "reserve": 0.1},
    "market": {"bidders_per_auction": 4},
    "populations": [
        {"name": "truthful", "size": 100, "strategy": "truthful",
         "values": {"dist": "uniform", "low": 0.0, "high": 1.0}},
        {"name": "shaders", "size": 100, "strategy": "constant_shade", "params": {"multiplier": 0.8},
         "values": {"dist": "uniform", "low": 0.0, "high": 1.0}},
        {"name": "paced", "size": 100, "strategy": "adaptive_pacing", "params": {"step": 0.5},
         "values": {"dist": "lognormal", "mean": -0.5, "sigma": 0.4},
         "value_scale": {"dist": "uniform", "low": 0.8, "high": 1.2},
         "budget": {"dist": "uniform", "low": 3.0, "high": 9.0}},
    ],
}


def scenario(**updates) -> dict:
    raw = copy.deepcopy(SCENARIO)
    for key, value in updates.items():
        section, _, field = key.partition("__")
        if field:
            raw[section][field] = value
        else:
            raw[section] = value
    return raw


def test_one_step_is_one_round_and_the_market_is_bidscape_run(tmp_path):
    model = MarketModel(scenario(), seed=5)
    for k in (1, 2):
        model.step()
        assert model.simulation.round == k and model.steps == k
        assert len(model.datacollector.get_model_vars_dataframe()) == k
    while model.running:
        model.step()
    assert model.simulation.round == model.steps == 4 and not model.running
    model.step()  # past the end: nothing happens
    assert model.steps == 4

    frame = model.datacollector.get_model_vars_dataframe()
    market = bidscape.run(Scenario.from_dict(scenario()), out=tmp_path / "plain", seed=5).market
    assert frame["round"].tolist() == market["round"].to_list() == [0, 1, 2, 3]
    for column in ("revenue", "welfare", "sold", "auctions", "reserve", "mean_price"):
        assert frame[column].tolist() == market[column].to_list(), column
    assert (frame["seed"] == 5).all()
    assert frame["sold_share"].tolist() == (market["sold"] / market["auctions"]).to_list()
    for name in ("truthful", "shaders", "paced"):
        assert f"spend[{name}]" in frame and f"budget_utilisation[{name}]" in frame
    assert frame["mean_multiplier[shaders]"].tolist() == pytest.approx([0.8] * 4)
    assert frame["budget_utilisation[truthful]"].isna().all()  # unlimited budgets
    assert 0 < frame["budget_utilisation[paced]"].iloc[-1] <= 1
    agents = model.datacollector.get_agent_vars_dataframe()
    assert list(agents.index.get_level_values("Step").unique()) == [0, 1, 2, 3]  # keyed by round
    assert {"cohort", "population", "agents", "mean_multiplier", "spend", "wins", "budget_remaining"} <= set(agents)


def test_a_finished_model_can_be_garbage_collected():
    model = MarketModel(scenario())
    model.run_model()
    simulation = weakref.ref(model.simulation)
    del model
    gc.collect()
    assert simulation() is None  # Mesa 3.3's Agent._ids would otherwise keep every market alive


def test_record_to_writes_the_same_run_folder(tmp_path):
    model = MarketModel(scenario(), seed=6, record_to=tmp_path / "mesa")
    model.run_model()
    recorded = bidscape.Run(tmp_path / "mesa")
    plain = bidscape.run(Scenario.from_dict(scenario()), out=tmp_path / "plain", seed=6)
    assert recorded.manifest["status"] == "complete"
    for table in ("market", "agents", "auctions"):
        assert recorded.scan(table).collect().equals(plain.scan(table).collect()), table
        assert (tmp_path / "mesa" / f"{table}.arrow").read_bytes() == (tmp_path / "plain" / f"{table}.arrow").read_bytes()
    assert recorded.summary == plain.summary
    assert recorded.manifest["scenario"] == plain.manifest["scenario"]


def test_a_run_stopped_early_is_marked_failed(tmp_path):
    with MarketModel(scenario(), record_to=tmp_path / "early") as model:
        model.step()
    with pytest.raises(InputError, match="not complete"):
        bidscape.Run(tmp_path / "early")


def test_an_intervention_equals_a_scenario_event(tmp_path):
    reserve = {"mechanism.reserve": 0.4}
    model = MarketModel(scenario(), record_to=tmp_path / "mesa")
    model.intervene(2, reserve)
    model.run_model()
    frame = model.datacollector.get_model_vars_dataframe()
    assert frame["reserve"].tolist() == [0.1, 0.1, 0.4, 0.4]
    assert model.applied == [(2, reserve, "intervention at round 2")]
    assert bidscape.Run(tmp_path / "mesa").market["reserve"].to_list() == [0.1, 0.1, 0.4, 0.4]

    with_event = MarketModel(scenario(events=[{"at_round": 2, "set": reserve}]))
    with_event.run_model()
    events = with_event.datacollector.get_model_vars_dataframe()
    assert events["revenue"].tolist() == frame["revenue"].tolist()
    assert events["reserve"].tolist() == frame["reserve"].tolist()

    applied = MarketModel(scenario())  # apply(): now, between rounds
    applied.step()
    applied.step()
    applied.apply(reserve)
    applied.run_model()
    assert applied.datacollector.get_model_vars_dataframe()["revenue"].tolist() == frame["revenue"].tolist()

    heap = MarketModel(scenario())  # without mesa.experimental.devs: the fallback agenda, same market
    heap._agenda.devs = None
    heap.intervene(2, reserve)
    heap.run_model()
    assert heap.datacollector.get_model_vars_dataframe()["revenue"].tolist() == frame["revenue"].tolist()

    strategy = MarketModel(scenario())  # a strategy parameter, as [[events]] may set it
    strategy.intervene(1, {"populations.shaders.params.multiplier": 0.5})
    strategy.run_model()
    assert strategy.datacollector.get_model_vars_dataframe()["mean_multiplier[shaders]"].tolist() == pytest.approx(
        [0.8, 0.5, 0.5, 0.5])


def test_bad_interventions_are_refused_at_once():
    model = MarketModel(scenario())
    model.step()
    with pytest.raises(InputError, match="already been played"):
        model.intervene(0, {"mechanism.reserve": 0.2})
    with pytest.raises(InputError, match="never comes"):
        model.intervene(4, {"mechanism.reserve": 0.2})
    with pytest.raises(InputError, match="populations.paced.size.*cannot change during a run"):
        model.intervene(2, {"populations.paced.size": 10})
    with pytest.raises(InputError, match="mechanism.reserve"):
        model.intervene(2, {"mechanism.reserve": -1.0})
    with pytest.raises(InputError, match="did you mean 'reserve'"):
        model.apply({"mechanism.reservee": 0.2})


def test_batch_run_over_two_parameters():
    parameters = {
        "scenario": [scenario()],  # a dict (or Scenario) goes in a list: batch_run iterates over the others
        "mechanism.reserve": [0.0, 0.3],
        "populations.shaders.params.multiplier": [0.6, 0.9],
        "seed": [1, 2],
    }
    results = mesa.batch_run(MarketModel, parameters=parameters, iterations=2, max_steps=100,
                             number_processes=1, data_collection_period=-1, display_progress=False)
    rows = pl.DataFrame([{k: v for k, v in row.items() if k != "scenario"} for row in results])
    cohorts = 3
    assert rows.height == 2 * 2 * 2 * 2 * cohorts  # iterations x reserve x multiplier x seed, one row per cohort
    assert rows["Step"].unique().to_list() == [3] and rows["round"].unique().to_list() == [3]  # the last round
    assert set(rows["mechanism.reserve"]) == {0.0, 0.3} and set(rows["populations.shaders.params.multiplier"]) == {0.6, 0.9}
    assert set(rows["seed"]) == {1, 2}
    runs = rows.unique(["RunId"], keep="first").sort("RunId")
    cell = ["mechanism.reserve", "populations.shaders.params.multiplier"]
    by_seed = runs.filter(pl.col("iteration") == 0).pivot(on="seed", index=cell, values="revenue")
    assert (by_seed["1"] != by_seed["2"]).all()  # seeds differ
    first, second = (runs.filter(pl.col("iteration") == i).drop("RunId", "iteration") for i in (0, 1))
    assert first.equals(second)  # reproducible: the same parameters and seed give the same market
    assert runs.group_by(cell + ["seed"]).len()["len"].to_list() == [2] * 8
    # the row for one run is what a MarketModel with those parameters reports
    row = runs.filter((pl.col("iteration") == 0) & (pl.col("seed") == 2) & (pl.col("mechanism.reserve") == 0.3)
                      & (pl.col("populations.shaders.params.multiplier") == 0.6)).row(0, named=True)
    model = MarketModel(scenario(), seed=2, **{"mechanism.reserve": 0.3, "populations.shaders.params.multiplier": 0.6})
    model.run_model()
    assert model.report["revenue"] == row["revenue"]


def test_batch_run_rows_pair_model_and_agent_data_of_the_same_round():
    results = mesa.batch_run(MarketModel, parameters={"scenario": [scenario()], "mechanism.reserve": [0.2]},
                             iterations=1, max_steps=100, number_processes=1, data_collection_period=1,
                             display_progress=False)
    rows = pl.DataFrame([{k: v for k, v in row.items() if k != "scenario"} for row in results])
    assert rows.height == 4 * 3 and (rows["Step"] == rows["round"]).all()
    for name in ("truthful", "shaders", "paced"):
        mine = rows.filter(pl.col("population") == name)
        assert (mine["spend"] == mine[f"spend[{name}]"]).all()


def test_cohorts_are_populations_and_match_the_arrays():
    model = MarketModel(scenario())
    assert len(model.agents) == 3 and all(isinstance(a, CohortAgent) for a in model.agents)
    assert [a.cohort for a in model.agents] == ["truthful", "shaders", "paced"]
    for _ in range(2):
        model.step()
        state = model.simulation.state
        total = model.agents.agg("spend", sum)
        assert total == pytest.approx(model.result.revenue, rel=1e-12)  # second price, no all-pay
        for agent in model.agents:
            rows = agent.members()
            assert agent.agents == rows.size == 100
            assert agent.spend == pytest.approx(state.spend[rows].sum(), rel=1e-12)
            assert agent.wins == state.wins[rows].sum()
            assert agent.mean_multiplier == pytest.approx(state.multiplier[rows].mean(), rel=1e-12)
            assert agent.budget_remaining == pytest.approx(state.remaining_budget[rows].sum(), rel=1e-12)
    paced = model.agents.select(lambda a: a.population == "paced")
    assert len(paced) == 1 and paced[0].budget_utilisation == pytest.approx(
        1 - paced[0].budget_remaining / paced[0].budget, rel=1e-9)


def test_cohorts_by_quantile_bins_and_llm_archetypes(tmp_path):
    binned = MarketModel(scenario(), cohorts_by=("value_scale", "budget"))
    paced = binned.agents.select(lambda a: a.population == "paced")
    assert len(paced) == 4 and sum(a.agents for a in paced) == 100  # 2 x 2 bins
    assert len(binned.agents) == 1 + 1 + 4  # constant value scale, unlimited budgets: one bin
    binned.step()
    assert binned.agents.agg("spend", sum) == pytest.approx(binned.result.revenue, rel=1e-12)
    for agent in paced:
        assert agent.spend == pytest.approx(binned.simulation.state.spend[agent.members()].sum(), rel=1e-12)

    raw = scenario(run__experimental=True)
    raw["populations"][2] = {**raw["populations"][2], "strategy": "llm_proxy", "params": {
        "mode": "replay", "cache_dir": str(tmp_path / "cache"), "fallback": "pacing",
        "bins": {"value_scale": 2, "budget": 2}}}
    model = MarketModel(raw)  # an archetype learner: one cohort per archetype, the strategy's own
    proxied = model.agents.select(lambda a: a.population == "paced")
    strategy = model.simulation.strategies[2]
    assert [a.label for a in proxied] == strategy.labels and len(proxied) == 4
    model.run_model()
    for k, agent in enumerate(proxied):
        assert agent.agents == strategy.members[k]
        assert agent.mean_multiplier == pytest.approx(strategy.current[k])  # one multiplier per archetype


def test_bad_input_raises_input_error_naming_the_key():
    with pytest.raises(InputError, match=r"mechanism\.reservee: unknown key 'reservee'.*did you mean 'reserve'"):
        MarketModel(scenario(), **{"mechanism.reservee": 0.3})
    with pytest.raises(InputError, match="populations.nobody"):
        MarketModel(scenario(), overrides={"populations.nobody.params.multiplier": 0.3})
    with pytest.raises(InputError, match="run.seed"):
        MarketModel(scenario(), seed=-1)
    with pytest.raises(InputError, match="cohorts_by"):
        MarketModel(scenario(), cohorts_by=("quality",))
    with pytest.raises(InputError, match="does not exist"):
        MarketModel("no/such/scenario.toml")
    with pytest.raises(InputError, match="market game"):
        MarketModel(ROOT / "data/scenarios/double_auction.toml")


def test_a_toml_path_with_overrides():
    model = MarketModel(str(ROOT / "data/scenarios/reserve_price.toml"),
                        overrides={"run.auctions_per_round": 2000, "populations.bidders.size": 50},
                        **{"run.rounds": 6, "mechanism.reserve": 0.2})
    model.run_model()
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == 6 and frame["reserve"].tolist() == [0.2] * 5 + [0.5]  # the file's event at round 5
    assert (frame["auctions"] == 2000).all() and model.agents[0].agents == 50
    assert np.isclose(frame["revenue"].sum(), model.summary()["market"]["revenue"])


def test_the_example_runs():
    done = subprocess.run([sys.executable, str(ROOT / "examples/mesa_market.py"), "--small", "--rounds", "4"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "batch_run: 12 runs" in done.stdout and "reserve 0 -> 0.5 before round 2" in done.stdout

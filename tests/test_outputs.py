"""The output folder contract (DESIGN.md section 3): files, columns, row counts, modes."""

import json

import numpy as np
import polars as pl
import pytest

import bidscape
from bidscape import Scenario

MARKET_COLUMNS = {"round", "auctions", "sold", "revenue", "welfare", "mean_price", "reserve"}
AGENT_COLUMNS = {"round", "agent", "population", "spend", "wins", "value", "utility", "budget_remaining",
                 "multiplier"}
AUCTION_COLUMNS = {"round", "auction", "winner", "price", "top_bid", "second_bid"}


def scenario(record_agents="agent", rate=0.05, rounds=3):
    return Scenario.from_dict({
        "run": {"seed": 1, "rounds": rounds, "auctions_per_round": 4000, "record_agents": record_agents,
                "auction_sample_rate": rate},
        "mechanism": {"type": "second_price", "reserve": 0.1},
        "market": {"bidders_per_auction": 4},
        "populations": [
            {"name": "a", "size": 60, "strategy": "adaptive_pacing", "values": {"dist": "uniform", "low": 0, "high": 1},
             "budget": {"dist": "uniform", "low": 5, "high": 10}},
            {"name": "b", "size": 40, "strategy": "truthful", "values": {"dist": "uniform", "low": 0, "high": 1}},
        ],
    })


def test_agent_rows_add_up_to_the_market_rows(tmp_path):
    run = bidscape.run(scenario(), out=tmp_path / "run")
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    for key in ("scenario", "seed", "version", "started", "finished", "wall_seconds", "rows"):
        assert key in manifest
    market, agents, auctions = run.market, run.agents, run.auctions
    assert MARKET_COLUMNS <= set(market.columns)
    assert AGENT_COLUMNS <= set(agents.columns)
    assert AUCTION_COLUMNS <= set(auctions.columns)
    assert manifest["rows"] == {"market": 3, "populations": 6, "agents": 300, "auctions": auctions.height}
    per_round = agents.group_by("round").agg(pl.col("spend").sum(), pl.col("value").sum(), pl.col("wins").sum())
    joined = market.join(per_round, on="round").sort("round")
    np.testing.assert_allclose(joined["revenue"], joined["spend"], rtol=1e-9)
    np.testing.assert_allclose(joined["welfare"], joined["value"], rtol=1e-9)
    assert (joined["sold"] == joined["wins"]).all()
    assert (agents["utility"] - (agents["value"] - agents["spend"])).abs().max() < 1e-12
    assert agents.filter(pl.col("population") == "b")["budget_remaining"].is_infinite().all()
    # the sample is about 5% of auctions and holds only real outcomes
    share = auctions.height / market["auctions"].sum()
    assert 0.03 < share < 0.07
    sold = auctions.filter(pl.col("winner") >= 0)
    assert (sold["price"] <= sold["top_bid"]).all() and (sold["second_bid"] <= sold["top_bid"]).all()


def test_population_rows_equal_sums_of_agent_rows(tmp_path):
    per_agent = bidscape.run(scenario("agent"), out=tmp_path / "agent").agents
    per_population = bidscape.run(scenario("population"), out=tmp_path / "population").agents
    assert per_population.height == 2 * 3
    assert per_population["agent"].is_null().all()
    expected = per_agent.group_by("round", "population").agg(pl.col("spend").sum(), pl.col("multiplier").mean(),
                                                             pl.len().alias("agents"))
    joined = per_population.join(expected, on=["round", "population"], suffix="_expected")
    assert joined.height == 6
    np.testing.assert_allclose(joined["spend"], joined["spend_expected"], rtol=1e-9)
    np.testing.assert_allclose(joined["multiplier"], joined["multiplier_expected"], rtol=1e-9)
    assert (joined["agents"] == joined["agents_expected"]).all()


def test_record_none_and_no_sample_write_empty_tables(tmp_path):
    run = bidscape.run(scenario("none", rate=0.0), out=tmp_path / "run")
    assert run.agents.height == 0 and run.auctions.height == 0
    assert run.market.height == 3
    assert AGENT_COLUMNS <= set(run.agents.columns)


def test_agents_file_streams_one_batch_per_round(tmp_path):
    import pyarrow.ipc as ipc

    run = bidscape.run(scenario(rounds=5), out=tmp_path / "run")
    with ipc.open_file(run.path / "agents.arrow") as reader:
        assert reader.num_record_batches == 5
        assert all(reader.get_batch(i).num_rows == 100 for i in range(5))


def test_run_refuses_incomplete_folders(tmp_path):
    run = bidscape.run(scenario(), out=tmp_path / "run")
    manifest = json.loads((run.path / "manifest.json").read_text())
    manifest["status"] = "failed"
    (run.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(bidscape.InputError, match="not complete"):
        bidscape.Run(run.path)
    (run.path / "manifest.json").write_text("{not json")
    with pytest.raises(bidscape.InputError, match="corrupt"):
        bidscape.Run(run.path)

"""bidscape.analysis on small runs whose answers can be worked out by hand."""

from __future__ import annotations

import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bidscape
from bidscape import analysis
from bidscape.errors import InputError
from bidscape.scenario import Scenario


def hand_scenario(**run) -> Scenario:
    """Two agents in every auction: 'rich' values 1, budget 3.2; 'poor' values 0.5, no budget."""
    return Scenario.from_dict({
        "run": {"name": "hand", "seed": 1, "rounds": 1, "auctions_per_round": 10, "auction_sample_rate": 1.0,
                **run},
        "mechanism": {"type": "second_price"},
        "market": {"bidders_per_auction": "all"},
        "populations": [
            {"name": "rich", "size": 1, "strategy": "truthful", "values": {"dist": "constant", "value": 1.0},
             "budget": {"dist": "constant", "value": 3.2}},
            {"name": "poor", "size": 1, "strategy": "truthful", "values": {"dist": "constant", "value": 0.5}},
        ],
    })


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory):
    return bidscape.run(hand_scenario(), out=tmp_path_factory.mktemp("hand") / "run")


def test_market_metrics_by_hand(hand_run):
    # 'rich' wins 6 auctions at 0.5 (3.0 spent, 0.2 left); then it bids 0.2, and 'poor' wins 4 at 0.2.
    m = analysis.market(hand_run, by=()).row(0, named=True)
    assert m["auctions"] == 10 and m["sold"] == 10 and m["sold_share"] == 1.0
    assert m["revenue"] == pytest.approx(3.8)
    assert m["welfare"] == pytest.approx(8.0)  # 6 x 1 + 4 x 0.5
    assert m["max_welfare"] == pytest.approx(10.0)  # 'rich' in every auction
    assert m["efficiency"] == pytest.approx(0.8)
    assert m["price_of_anarchy"] == pytest.approx(1.25)
    assert m["mean_price"] == pytest.approx(0.38)


def test_population_metrics_by_hand(hand_run):
    p = {r["population"]: r for r in analysis.populations(hand_run).iter_rows(named=True)}
    rich, poor = p["rich"], p["poor"]
    assert (rich["wins"], poor["wins"]) == (6, 4)
    assert rich["spend"] == pytest.approx(3.0) and poor["spend"] == pytest.approx(0.8)
    assert rich["budget"] == pytest.approx(3.2) and poor["budget"] is None
    assert rich["budget_remaining"] == pytest.approx(0.2)
    assert rich["budget_utilisation"] == pytest.approx(3.0 / 3.2) and poor["budget_utilisation"] is None
    assert rich["return_on_spend"] == pytest.approx(2.0) and poor["return_on_spend"] == pytest.approx(2.5)
    assert rich["win_rate"] == pytest.approx(0.6) and poor["win_rate"] == pytest.approx(0.4)  # both in all 10
    assert rich["liquid_welfare"] == pytest.approx(3.2)  # min(budget 3.2, value 6)
    assert poor["liquid_welfare"] == pytest.approx(2.0)  # no budget: its value
    assert rich["regret"] is None  # truthful records none


def test_headline_by_hand(hand_run):
    h = analysis.headline(hand_run).row(0, named=True)
    assert h["liquid_welfare"] == pytest.approx(5.2)
    assert h["bidder_utility"] == pytest.approx(8.0 - 3.8)
    assert h["budget_utilisation"] == pytest.approx(3.0 / 3.2)  # budgeted populations only
    assert h["win_rate"] == pytest.approx(0.5)
    assert set(analysis.HEADLINE) <= set(h)


def test_prices_from_the_auction_sample(hand_run):
    q = analysis.prices(hand_run).row(0, named=True)
    assert q["n"] == 10
    assert q["mean"] == pytest.approx(0.38)
    assert q["q50"] == pytest.approx(0.5) and q["q10"] == pytest.approx(0.2)
    histogram = analysis.price_histogram(hand_run, bins=5, upper=0.5)
    assert histogram["count"].sum() == 10
    assert histogram.filter(pl.col("bin") == 4)["count"].item() == 6  # the six 0.5 prices, clipped into the top bin


@pytest.fixture(scope="module")
def paced_runs(tmp_path_factory):
    """Budget pacing over 6 rounds, two channels, recorded per agent and per population."""
    root = tmp_path_factory.mktemp("paced")
    raw = Scenario.from_toml("data/scenarios/two_exchanges.toml").to_dict()
    raw["run"].update(rounds=6, auctions_per_round=3000, auction_sample_rate=0.05)
    for population in raw["populations"]:
        population["size"] = 60
    for channel in raw.get("channels", []):
        channel.pop("auctions_per_round", None)
    scenario = Scenario.from_dict(raw)
    by_agent = bidscape.run(scenario, out=root / "agent")
    by_population = bidscape.run(scenario.with_updates({"run.record_agents": "population"}), out=root / "population")
    return by_agent, by_population


def test_rounds_channels_and_populations_add_up(paced_runs):
    run, _ = paced_runs
    total = analysis.market(run, by=()).row(0, named=True)
    by_round = analysis.market(run)
    by_channel = analysis.market(run, by=("channel",))
    assert by_round.height == 6 and by_channel.height == len(run.scenario.channels)
    for frame in (by_round, by_channel):
        for column in ("revenue", "welfare", "max_welfare", "sold"):
            assert frame[column].sum() == pytest.approx(total[column])
    assert 0 < total["efficiency"] <= 1 + 1e-12
    spend = analysis.populations(run, by=("round", "channel", "population"))["spend"].sum()
    assert spend == pytest.approx(total["revenue"])  # every payment is some population's spend
    # cumulative spend reaches the population's whole spend in the last round
    series = analysis.populations(run, by=("round", "population"))
    overall = analysis.populations(run)
    for row in overall.iter_rows(named=True):
        last = series.filter((pl.col("population") == row["population"]) & (pl.col("round") == 5)).row(0, named=True)
        assert last["cumulative_spend"] == pytest.approx(row["spend"])
        assert last["budget_remaining"] == pytest.approx(row["budget_remaining"])


def test_population_tables_do_not_depend_on_record_agents(paced_runs):
    by_agent, by_population = paced_runs
    a = analysis.populations(by_agent, by=("round", "population")).drop("group")
    b = analysis.populations(by_population, by=("round", "population")).drop("group")
    assert a.equals(b)


def test_agent_sample_is_bounded_and_streams(paced_runs):
    run, _ = paced_runs
    agents = run.scenario.total_agents
    full = analysis.agent_sample(run, n=10 * agents)
    assert full.height == agents * len(run.scenario.channels)  # one row per agent and channel
    sample = analysis.agent_sample(run, n=30)
    assert 0 < sample.height < full.height
    assert set(sample["agent"]) <= set(full["agent"])


def test_many_runs_are_labelled_by_group_and_seed(tmp_path):
    scenario = hand_scenario()
    for seed in (1, 2):
        bidscape.run(scenario, out=tmp_path / "arm" / f"seed-{seed}", seed=seed)
    frame = analysis.headline(tmp_path / "arm")
    assert frame["group"].to_list() == ["arm", "arm"] and frame["seed"].to_list() == [1, 2]


def test_bad_sources_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        analysis.market(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no complete bidscape run"):
        analysis.market(tmp_path / "empty")
    with pytest.raises(ValueError, match="cannot group by"):
        analysis.market(tmp_path / "empty", by=("population",))


def test_efficiency_of_position_auctions_is_one_when_truthful_vcg_without_reserve(tmp_path):
    # VCG with truthful bidders gives the slots in order of quality x value: the efficient
    # assignment, whose *expected* welfare is max_welfare. The realised welfare sums v x click
    # over ~C expected clicks, with relative standard error at most sqrt(E[v^2] / E[v]^2 / C)
    # = sqrt(exp(sigma^2) / C) for lognormal values (the click draws are independent).
    raw = Scenario.from_toml("data/scenarios/gsp_to_vcg.toml").to_dict()
    raw["run"].update(rounds=2, auctions_per_round=20000)
    raw["events"] = []
    raw["mechanism"].update(type="vcg", reserve=0.0)
    for population in raw["populations"]:
        population["strategy"] = "truthful"
        population.pop("params", None)
        population.pop("budget", None)
    run = bidscape.run(Scenario.from_dict(raw), out=tmp_path / "vcg")
    m = analysis.market(run, by=()).row(0, named=True)
    clicks = m["auctions"] * sum(raw["mechanism"]["slot_ctrs"])  # quality averages 1
    sigma = raw["populations"][0]["values"]["sigma"]
    tolerance = 4 * math.sqrt(math.exp(sigma ** 2) / clicks)  # 4 standard errors
    assert m["efficiency"] == pytest.approx(1.0, abs=tolerance)


def test_filters_keep_rows_and_definitions(paced_runs):
    run, _ = paced_runs
    full = analysis.populations(run, by=("round", "population"))
    part = analysis.populations(run, by=("round", "population"), rounds=(2, 3))
    assert part.equals(full.filter(pl.col("round").is_between(2, 3)))  # cumulative spend counts from round 0
    channel = run.scenario.channels[0].name
    one = analysis.market(run, by=(), channels=[channel]).drop("group")
    assert_frame_equal(one, analysis.market(run, by=("channel",)).filter(pl.col("channel") == channel)
                       .drop("group", "channel"), check_exact=False, rel_tol=1e-12)  # sums in another order
    paced = analysis.headline(run, populations=["paced"]).row(0, named=True)
    alone = analysis.populations(run).filter(pl.col("population") == "paced").row(0, named=True)
    assert paced["bidder_utility"] == pytest.approx(alone["utility"])
    assert paced["revenue"] == analysis.headline(run).row(0, named=True)["revenue"]  # the market is everyone's

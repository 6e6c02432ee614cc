"""analysis.segment_metrics: the segments' sums equal the market's, ratios in range, a clear error without traffic."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bidscape
from bidscape import analysis
from bidscape.errors import InputError
from bidscape.scenario import Scenario

UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}
TRAFFIC = {"curve": [0.5, 1.5], "segments": [
    {"name": "a", "share": 0.6, "common_value": {"dist": "lognormal", "mean": -0.08, "sigma": 0.4}},
    {"name": "b", "share": 0.4}]}


def scenario(traffic=TRAFFIC, mechanism=None) -> Scenario:
    return Scenario.from_dict({
        "run": {"seed": 3, "rounds": 4, "auctions_per_round": 4000, "record_agents": "none"},
        "mechanism": mechanism or {"type": "second_price", "reserve": 0.2},
        "market": {"bidders_per_auction": 3},
        "traffic": traffic,
        "populations": [
            {"name": "paced", "size": 200, "strategy": "adaptive_pacing", "values": UNIFORM, "targets": ["a"],
             "budget": {"dist": "uniform", "low": 1.0, "high": 3.0}},
            {"name": "fans", "size": 200, "strategy": "truthful", "values": UNIFORM, "segment_value": {"b": 1.5}},
        ],
    })


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return bidscape.run(scenario(), out=tmp_path_factory.mktemp("segments") / "run")


SUMS = ("auctions", "slots_offered", "sold", "revenue", "welfare", "max_welfare")


def test_segment_sums_equal_the_market_totals(run):
    segments = analysis.segment_metrics(run)
    assert segments["segment"].to_list() == ["a", "b"]
    total = analysis.market(run, by=()).row(0, named=True)
    for column in SUMS:
        assert segments[column].sum() == pytest.approx(total[column], rel=1e-12), column
    assert segments["auction_share"].sum() == pytest.approx(1.0)
    assert segments["auction_share"].to_list() == pytest.approx([0.6, 0.4], abs=1e-3)


def test_segment_sums_equal_the_market_round_by_round(run):
    by_round = analysis.segment_metrics(run, by_round=True)
    assert by_round.height == 4 * 2
    summed = by_round.group_by("round").agg(*[pl.col(c).sum() for c in SUMS], pl.col("auction_share").sum())
    market = analysis.market(run).join(summed, on="round", suffix="_segments").sort("round")
    for column in SUMS:
        assert np.allclose(market[column].to_numpy(), market[f"{column}_segments"].to_numpy(), rtol=1e-12)
    assert np.allclose(market["auction_share"].to_numpy(), 1.0)
    # the curve: round 1 has three times round 0's auctions
    assert market["auctions"].to_list() == [2000, 6000, 2000, 6000]


def test_ratios_are_what_their_names_say(run):
    for frame in (analysis.segment_metrics(run), analysis.segment_metrics(run, by_round=True)):
        assert ((frame["efficiency"] > 0) & (frame["efficiency"] <= 1 + 1e-12)).all()
        assert ((frame["sold_share"] > 0) & (frame["sold_share"] <= 1)).all()
        assert np.allclose(frame["revenue_per_auction"], frame["revenue"] / frame["auctions"])
        assert np.allclose(frame["mean_price"], frame["revenue"] / frame["sold"])
        assert np.allclose(frame["efficiency"], frame["welfare"] / frame["max_welfare"])
        assert frame["clicks"].is_null().all()  # single-item auctions have no clicks


def test_position_auctions_count_slots_and_clicks(tmp_path):
    gsp = {"type": "gsp", "slot_ctrs": [0.3, 0.1]}
    run = bidscape.run(scenario(mechanism=gsp), out=tmp_path / "run")
    segments = analysis.segment_metrics(run)
    assert segments["slots_offered"].to_list() == [2 * a for a in segments["auctions"]]
    assert (segments["clicks"] > 0).all()
    total = analysis.market(run, by=()).row(0, named=True)
    assert segments["sold"].sum() == total["sold"]
    assert segments["sold"].sum() / segments["slots_offered"].sum() == pytest.approx(total["sold_share"])


def test_a_group_of_runs_gets_one_block_per_seed(tmp_path):
    for seed in (1, 2):
        bidscape.run(scenario().with_updates({"run.seed": seed}), out=tmp_path / "arm" / f"seed-{seed}")
    frame = analysis.segment_metrics(tmp_path / "arm")
    assert frame.select("group", "seed", "segment").rows() == [("arm", 1, "a"), ("arm", 1, "b"),
                                                                ("arm", 2, "a"), ("arm", 2, "b")]


def test_a_run_without_traffic_is_a_clear_error(tmp_path):
    plain = bidscape.run(Scenario.from_dict({
        "run": {"seed": 3, "rounds": 2, "auctions_per_round": 500, "record_agents": "none"},
        "mechanism": {"type": "second_price"},
        "populations": [{"name": "x", "size": 20, "strategy": "truthful", "values": UNIFORM}],
    }), out=tmp_path / "plain")
    with pytest.raises(InputError, match=r"no segments\.arrow.*no \[traffic\] section.*Fix: add a \[traffic\]"):
        analysis.segment_metrics(plain)


def test_population_metrics_add_up_to_the_segments_and_follow_targeting(run):
    by_population = analysis.segment_population_metrics(run)
    assert set(by_population["population"]) == {"paced", "fans"} and set(by_population["segment"]) == {"a", "b"}
    # "paced" targets segment a only: nothing won in b
    paced_b = by_population.filter((pl.col("population") == "paced") & (pl.col("segment") == "b"))
    assert paced_b["sold"].item() == 0 and paced_b["spend"].item() == 0.0
    # over populations, spend is the segment's revenue (second price: no losers pay) and shares sum to 1
    per_segment = by_population.group_by("segment").agg(pl.col("spend").sum(), pl.col("spend_share").sum(),
                                                        pl.col("sold").sum(), pl.col("value").sum()).sort("segment")
    segments = analysis.segment_metrics(run, by_channel=False).sort("segment")
    np.testing.assert_allclose(per_segment["spend"], segments["revenue"], rtol=1e-12)
    np.testing.assert_allclose(per_segment["value"], segments["welfare"], rtol=1e-12)
    assert per_segment["sold"].to_list() == segments["sold"].to_list()
    np.testing.assert_allclose(per_segment["spend_share"], 1.0)
    row = by_population.row(0, named=True)
    assert row["utility"] == pytest.approx(row["value"] - row["spend"])
    assert row["mean_price"] == pytest.approx(row["spend"] / row["sold"])
    # by round: the rounds add up to the totals
    rounds = analysis.segment_population_metrics(run, by_round=True)
    assert rounds["spend"].sum() == pytest.approx(by_population["spend"].sum())


def test_population_metrics_need_traffic(tmp_path):
    raw = scenario().to_dict()
    del raw["traffic"]
    for population in raw["populations"]:
        population.pop("targets", None)
        population.pop("segment_value", None)
    plain = bidscape.run(Scenario.from_dict(raw), out=tmp_path / "plain")
    with pytest.raises(InputError, match="no segments.arrow"):
        analysis.segment_population_metrics(plain)

"""Markets with context ([traffic]): segment counts, targeting, segment values and common values,
checked against exact counts and closed-form revenue on fixed seeds.

Revenue checks allow 4 standard errors (as tests/test_economics.py): per-auction prices of
truthful bidders without budgets are i.i.d., so the sample standard error is the right scale.
"""

import copy
import math

import numpy as np
import polars as pl
import pytest

import bidscape
from bidscape import Scenario
from bidscape.loop.simulation import Simulation

Z = 4.0
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}


def market(traffic, populations, rounds=1, auctions=40_000, bidders=3, mechanism="second_price", events=()):
    return {
        "run": {"seed": 5, "rounds": rounds, "auctions_per_round": auctions, "record_agents": "none",
                "auction_sample_rate": 1.0},
        "mechanism": {"type": mechanism},
        "market": {"bidders_per_auction": bidders},
        "traffic": traffic,
        "populations": populations,
        "events": list(events),
    }


def truthful(name, size=60, values=UNIFORM, **extra):
    return {"name": name, "size": size, "strategy": "truthful", "values": values, **extra}


def mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def test_auctions_per_round_and_segment_follow_the_curve_and_shares_exactly(tmp_path):
    traffic = {"curve": [0.5, 1.0, 1.5], "segments": [{"name": "a", "share": 0.55}, {"name": "b", "share": 0.45}]}
    scenario = Scenario.from_dict(market(traffic, [truthful("x")], rounds=4, auctions=1001))
    run = bidscape.run(scenario, out=tmp_path / "run")
    segments = run.scan("segments").collect().sort("round", "segment")
    for r in range(4):
        expected_total = round(1001 * [0.5, 1.0, 1.5][r % 3])  # the curve's mean is already 1
        rows = segments.filter(pl.col("round") == r)
        counts = dict(zip(rows["segment"], rows["auctions"]))
        assert sum(counts.values()) == expected_total
        assert run.market.filter(pl.col("round") == r)["auctions"].item() == expected_total
        assert counts == dict(zip("ab", scenario.traffic.segment_counts(expected_total)))
        assert abs(counts["a"] - 0.55 * expected_total) <= 1
        # the auction sample (rate 1) holds every auction, with its segment
        sample = run.auctions.filter(pl.col("round") == r)
        assert sample.group_by("segment").len().sort("segment")["len"].to_list() == [counts["a"], counts["b"]]
    # segment totals add up to the market's
    per_round = segments.group_by("round").agg(pl.col("revenue").sum(), pl.col("sold").sum()).sort("round")
    market_rows = run.market.sort("round")
    assert np.allclose(per_round["revenue"].to_numpy(), market_rows["revenue"].to_numpy(), rtol=1e-12)
    assert per_round["sold"].to_list() == market_rows["sold"].to_list()


def test_segments_are_interleaved_not_in_blocks(tmp_path):
    traffic = {"segments": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}
    run = bidscape.run(Scenario.from_dict(market(traffic, [truthful("x")], auctions=10_000)), out=tmp_path / "run")
    order = run.auctions.sort("auction")["segment"].to_numpy()
    runs = 1 + int(np.count_nonzero(order[1:] != order[:-1]))
    # a random order of 5,000 + 5,000 has about 5,000 runs (sd 50); blocks would give 2
    assert abs(runs - 5_000) < 4 * 50


def test_targeted_population_never_bids_outside_its_segment(tmp_path):
    # x's values are far above y's: wherever x takes part, it wins
    traffic = {"segments": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}
    high = {"dist": "uniform", "low": 10.0, "high": 11.0}
    scenario = Scenario.from_dict(market(traffic, [truthful("x", values=high, targets=["a"]), truthful("y")],
                                         auctions=20_000))
    run = bidscape.run(scenario, out=tmp_path / "run")
    auctions = run.auctions.with_columns((pl.col("winner") < 60).alias("x_won"))
    assert not auctions.filter(pl.col("segment") == "b")["x_won"].any()
    # in a, 3 bidders of x's 60 and y's 60 agents: some x agent takes part with probability 1 - C(60,3)/C(120,3)
    in_a = auctions.filter(pl.col("segment") == "a")["x_won"].to_numpy()
    p = 1 - math.comb(60, 3) / math.comb(120, 3)
    assert abs(in_a.mean() - p) < Z * math.sqrt(p * (1 - p) / in_a.size)
    segments = run.scan("segments").collect()
    counts = dict(zip(segments["segment"], segments["auctions"]))
    participations = dict(zip(run.populations["population"], run.populations["participations"]))
    # each population's expected auctions entered: per segment, its share of the eligible agents' seats
    assert participations["x"] == pytest.approx(counts["a"] * 3 * 60 / 120)
    assert participations["y"] == pytest.approx(counts["a"] * 3 * 60 / 120 + counts["b"] * 3)


def test_disjoint_segments_earn_what_separate_markets_earn(tmp_path):
    """Two segments with disjoint bidders and no budgets: each earns what a run of its bidders alone earns."""
    traffic = {"segments": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}
    wide = {"dist": "uniform", "low": 0.0, "high": 2.0}
    both = bidscape.run(Scenario.from_dict(market(
        traffic, [truthful("x", targets=["a"]), truthful("y", values=wide, targets=["b"])], auctions=60_000)),
        out=tmp_path / "both").auctions
    for segment, population in (("a", truthful("x")), ("b", truthful("y", values=wide))):
        alone = Scenario.from_dict({**market(None, [population], auctions=30_000), "traffic": None})
        separate = bidscape.run(alone, out=tmp_path / segment).auctions["price"].to_numpy()
        together = both.filter(pl.col("segment") == segment)["price"].to_numpy()
        (m1, s1), (m2, s2) = mean_se(together), mean_se(separate)
        assert abs(m1 - m2) < Z * math.hypot(s1, s2), f"segment {segment}: {m1:.4f} vs alone {m2:.4f}"


@pytest.mark.parametrize("n", [2, 4])
def test_common_value_scales_second_price_revenue(n, tmp_path):
    """Values c x U[0,1], c one lognormal draw per auction, n truthful bidders: revenue E[c] (n-1)/(n+1)."""
    mu, sigma = -0.08, 0.4
    traffic = {"segments": [{"name": "a", "share": 1.0,
                             "common_value": {"dist": "lognormal", "mean": mu, "sigma": sigma}}]}
    scenario = Scenario.from_dict(market(traffic, [truthful("x")], bidders=n, auctions=60_000))
    prices = bidscape.run(scenario, out=tmp_path / "run").auctions["price"].to_numpy()
    expected = math.exp(mu + sigma ** 2 / 2) * (n - 1) / (n + 1)
    mean, se = mean_se(prices)
    assert abs(mean - expected) < Z * se, f"{mean:.5f} vs {expected:.5f} (se {se:.5f})"


def test_segment_value_multiplies_a_population_value(tmp_path):
    traffic = {"segments": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}
    scenario = Scenario.from_dict(market(traffic, [truthful("x", segment_value={"b": 3.0})], bidders=2))
    auctions = bidscape.run(scenario, out=tmp_path / "run").auctions
    for segment, factor in (("a", 1.0), ("b", 3.0)):
        prices = auctions.filter(pl.col("segment") == segment)["price"].to_numpy()
        mean, se = mean_se(prices)
        assert abs(mean - factor / 3) < Z * se  # second price of 2 x U[0, factor]: factor / 3


def test_threads_and_batches_never_change_a_market_with_segments(monkeypatch):
    from bidscape.engine import pipeline
    from bidscape.loop import simulation

    traffic = {"curve": [0.7, 1.3], "segments": [
        {"name": "a", "share": 0.3, "common_value": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5}},
        {"name": "b", "share": 0.7}]}
    raw = market(traffic, [
        {**truthful("x", size=500, targets=["a"]), "strategy": "adaptive_pacing",
         "budget": {"dist": "uniform", "low": 1.0, "high": 3.0}},
        truthful("y", size=500, segment_value={"a": 1.5})], rounds=3, auctions=30_000, bidders=4)

    def play(threads):
        sim = Simulation(Scenario.from_dict(copy.deepcopy(raw)), threads=threads)
        results = [sim.step() for _ in range(3)]
        return ([(r.auctions, r.revenue, r.welfare, r.max_welfare) for r in results],
                sim.state.remaining_budget.copy())

    one = play(1)
    monkeypatch.setattr(pipeline, "CHUNK", 1000)
    monkeypatch.setattr(simulation, "BATCH_AUCTIONS", 4096)
    two = play(2)
    assert one[0] == two[0]
    assert np.array_equal(one[1], two[1])


def test_an_event_changes_traffic_and_targeting(tmp_path):
    traffic = {"segments": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}
    events = [{"at_round": 1, "set": {"traffic.segments.a.share": 0.2, "traffic.segments.b.share": 0.8,
                                      "populations.x.targets": ["a"]}}]
    high = {"dist": "uniform", "low": 10.0, "high": 11.0}
    scenario = Scenario.from_dict(market(traffic, [truthful("x", values=high), truthful("y")], rounds=2,
                                         auctions=10_000, events=events))
    run = bidscape.run(scenario, out=tmp_path / "run")
    segments = run.scan("segments").collect()
    assert segments.filter(pl.col("round") == 1).sort("segment")["auctions"].to_list() == [2_000, 8_000]
    auctions = run.auctions.with_columns((pl.col("winner") < 60).alias("x_won"))
    before, after = (auctions.filter((pl.col("round") == r) & (pl.col("segment") == "b")) for r in (0, 1))
    assert before["x_won"].any() and not after["x_won"].any()


def test_populations_per_segment_add_up_to_the_segments_and_respect_targeting(tmp_path):
    traffic = {"segments": [{"name": "a", "share": 0.6}, {"name": "b", "share": 0.4}]}
    populations = [truthful("everywhere"), truthful("only-b", targets=["b"]),
                   truthful("a-lover", segment_value={"a": 1.5})]
    run = bidscape.run(Scenario.from_dict(market(traffic, populations, rounds=2, auctions=5_000)), out=tmp_path / "r")
    by_population = run.scan("segment_populations").collect()
    assert by_population.height == 2 * 2 * 3  # rounds x segments x populations, every combination
    assert by_population["clicks"].null_count() == by_population.height  # single item: no clicks
    sums = by_population.group_by("round", "segment").agg(pl.col("sold").sum(), pl.col("spend").sum(),
                                                          pl.col("value").sum())
    joined = run.scan("segments").collect().join(sums, on=["round", "segment"], suffix="_p")
    assert (joined["sold"] == joined["sold_p"]).all()
    np.testing.assert_allclose(joined["revenue"], joined["spend"], rtol=1e-12)
    np.testing.assert_allclose(joined["welfare"], joined["value"], rtol=1e-12)
    outside = by_population.filter((pl.col("population") == "only-b") & (pl.col("segment") == "a"))
    assert outside["sold"].sum() == 0 and outside["spend"].sum() == 0.0
    # and they add up to each population's totals over the segments
    totals = run.populations.group_by("round", "population").agg(pl.col("spend").sum())
    per = by_population.group_by("round", "population").agg(pl.col("spend").sum().alias("spend_p"))
    both = totals.join(per, on=["round", "population"])
    np.testing.assert_allclose(both["spend"], both["spend_p"], rtol=1e-12)


def test_a_share_curve_shifts_the_segments_round_by_round(tmp_path):
    traffic = {"curve": [1.0, 2.0], "segments": [{"name": "a", "share": 0.5, "share_curve": [1.0, 0.2]},
                                                 {"name": "b", "share": 0.5}]}
    scenario = Scenario.from_dict(market(traffic, [truthful("x")], rounds=4, auctions=3_000))
    segments = bidscape.run(scenario, out=tmp_path / "run").scan("segments").collect().sort("round", "segment")
    for r in range(4):
        counts = segments.filter(pl.col("round") == r)["auctions"].to_list()
        assert counts == scenario.traffic.segment_counts(scenario.traffic.auctions(3_000, r), r)
    assert segments.filter(pl.col("round") == 1)["auctions"].to_list() == [667, 3333]  # 4000 x 1/6, 5/6

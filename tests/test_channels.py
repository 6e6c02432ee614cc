"""Several channels (exchanges) in one market: own rules and traffic, shared and capped budgets."""

import polars as pl
import pytest

import bidscape
from bidscape import InputError, Scenario

BASE = {
    "run": {"seed": 4, "rounds": 4, "auctions_per_round": 3000, "auction_sample_rate": 0.05},
    "mechanism": {"type": "second_price", "reserve": 0.05},
    "market": {"bidders_per_auction": 4},
    "populations": [
        {"name": "paced", "size": 300, "strategy": "adaptive_pacing",
         "values": {"dist": "uniform", "low": 0, "high": 1}, "budget": {"dist": "constant", "value": 6.0},
         "params": {"step": 0.5}},
        {"name": "brand", "size": 100, "strategy": "truthful",
         "values": {"dist": "uniform", "low": 0.2, "high": 1.2}, "budget": {"dist": "constant", "value": 20.0},
         "channel_budget_shares": {"open": 0.25}},
    ],
}
CHANNELS = [
    {"name": "premium", "auctions_per_round": 1000, "mechanism": {"type": "first_price", "reserve": 0.3}},
    {"name": "open", "populations": ["paced", "brand"], "mechanism": {"type": "gsp", "slot_ctrs": [0.5, 0.2]}},
]


def with_channels(channels=CHANNELS, **changes):
    raw = {**BASE, "channels": channels, **changes}
    return Scenario.from_dict(raw)


def test_channels_have_own_rows_and_budgets_hold(tmp_path):
    run = bidscape.run(with_channels(), out=tmp_path / "run")
    market = run.market
    assert market.height == 2 * 4
    assert set(market["channel"]) == {"premium", "open"}
    assert set(market.filter(pl.col("channel") == "open")["mechanism"]) == {"gsp"}
    assert market.filter(pl.col("channel") == "premium")["auctions"].to_list() == [1000] * 4
    assert market.filter(pl.col("channel") == "open")["auctions"].to_list() == [3000] * 4
    agents = run.agents
    # each channel's agent rows add up to its market row
    per_channel = agents.group_by("round", "channel").agg(pl.col("spend").sum()).sort("round", "channel")
    joined = per_channel.join(market.with_columns(pl.col("channel").cast(pl.Categorical)),
                              on=["round", "channel"])
    assert (joined["spend"] - joined["revenue"]).abs().max() < 1e-9 * market["revenue"].max()
    # total budgets hold across channels, and brand spends at most 25% of its budget on "open"
    total = agents.group_by("agent").agg(pl.col("spend").sum(), pl.col("population").first())
    assert total.filter(pl.col("population") == "paced")["spend"].max() <= 6.0 + 1e-9
    assert total.filter(pl.col("population") == "brand")["spend"].max() <= 20.0 + 1e-9
    open_brand = agents.filter((pl.col("channel") == "open") & (pl.col("population") == "brand"))
    by_agent = open_brand.group_by("agent").agg(pl.col("spend").sum())["spend"]
    assert by_agent.max() <= 0.25 * 20.0 + 1e-9
    assert by_agent.max() > 0.9 * 0.25 * 20.0  # the cap binds: brand would spend more there
    assert set(run.auctions["channel"]) == {"premium", "open"}


def test_one_explicit_channel_is_the_same_market_as_none(tmp_path):
    plain = bidscape.run(Scenario.from_dict({**BASE, "populations": [BASE["populations"][0]]}),
                         out=tmp_path / "plain")
    explicit = bidscape.run(Scenario.from_dict({**BASE, "populations": [BASE["populations"][0]],
                                                "channels": [{"name": "main"}]}), out=tmp_path / "explicit")
    for table in ("market", "agents", "auctions"):
        assert (plain.path / f"{table}.arrow").read_bytes() == (explicit.path / f"{table}.arrow").read_bytes()


def test_events_change_one_channel(tmp_path):
    scenario = with_channels(events=[{"at_round": 2, "set": {"channels.premium.mechanism.reserve": 0.6}}])
    market = bidscape.run(scenario, out=tmp_path / "run").market
    premium = market.filter(pl.col("channel") == "premium")["reserve"].to_list()
    assert premium == [0.3, 0.3, 0.6, 0.6]
    assert set(market.filter(pl.col("channel") == "open")["reserve"]) == {0.05}


@pytest.mark.parametrize("channels, extra, field, words", [
    ([{"name": "a", "populations": ["pacd"]}], {}, "channels[0].populations", "did you mean 'paced'"),
    ([{"name": "a"}, {"name": "a"}], {}, "channels[1].name", "used twice"),
    ([{"name": "a", "mechanism": {"type": "gps"}}], {}, "channels[0].mechanism.type", "did you mean 'gsp'"),
    ([{"name": "a", "mechanism": {"type": "vcg", "slot_ctrs": [0.1, 0.3]}}], {},
     "channels[0].mechanism.slot_ctrs", "do not increase"),
    ([{"name": "a", "mechanism": {"reserve": 0.5, "soft_floor": 0.2}}], {}, "channels[0].mechanism.soft_floor",
     "below the hard floor"),
    ([{"name": "a", "bidders_per_auction": 500}], {}, "channels[0].bidders_per_auction", "only 400 agents"),
])
def test_bad_channels_name_the_field(channels, extra, field, words):
    populations = [{k: v for k, v in p.items() if k != "channel_budget_shares"} for p in BASE["populations"]]
    raw = {**BASE, "populations": populations, "channels": channels, **extra}
    with pytest.raises(InputError) as error:
        Scenario.from_dict(raw)
    assert len(error.value.problems) == 1, error.value.render()
    assert error.value.problems[0].path == field and words in error.value.render()


def test_budget_share_for_an_unknown_channel_is_rejected():
    raw = {**BASE, "channels": [{"name": "premium"}]}
    with pytest.raises(InputError, match="channel_budget_shares.open: no channel named 'open'"):
        Scenario.from_dict(raw)

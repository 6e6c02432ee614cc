"""Segments and traffic (``[traffic]``, population ``targets`` and ``segment_value``): the schema,
the arithmetic of the curve and of the split by share, and one problem at the field for each
mistake (``bidscape.scenario.traffic``)."""

from __future__ import annotations

import copy
import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from bidscape import InputError, Scenario
from bidscape.cli import main as cli_main
from bidscape.scenario import SETTABLE_DURING_RUN
from bidscape.scenario.schema import Segment, Traffic
from bidscape.scenario.traffic import largest_remainder
from scenario_testing import one_problem

ROOT = Path(__file__).resolve().parent.parent
CURVE = [0.4, 0.3, 0.3, 0.5, 0.8, 1.0, 1.2, 1.3, 1.2, 1.1, 1.0, 1.0]
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}


def population(name: str, size: int, **fields) -> dict:
    return {"name": name, "size": size, "strategy": "truthful", "values": UNIFORM, **fields}


RAW = {
    "run": {"rounds": 4, "auctions_per_round": 100},
    "market": {"bidders_per_auction": 3},
    "traffic": {"curve": CURVE, "segments": [
        {"name": "news-mobile", "share": 0.6,
         "common_value": {"dist": "lognormal", "mean": -0.08, "sigma": 0.4}},
        {"name": "sports-desktop", "share": 0.4}]},
    "populations": [population("news", 5, targets=["news-mobile"]),
                    population("sports", 5, segment_value={"sports-desktop": 1.5}),
                    population("everyone", 5)],
}


def changed(edit) -> dict:
    raw = copy.deepcopy(RAW)
    edit(raw)
    return raw


# ---- a valid scenario ----

def test_a_scenario_with_traffic_parses():
    scenario = Scenario.from_dict(copy.deepcopy(RAW))
    traffic = scenario.traffic
    assert [s.name for s in traffic.segments] == ["news-mobile", "sports-desktop"]
    assert traffic.segments[0].common_value.mean() == pytest.approx(1.0)  # exp(-0.08 + 0.4**2 / 2)
    assert traffic.segments[1].common_value is None
    assert scenario.populations[0].targets == ["news-mobile"]
    assert [scenario.eligible(p, 0) for p in range(3)] == [True, True, True]
    assert [scenario.eligible(p, 1) for p in range(3)] == [False, True, True]
    assert [scenario.segment_multiplier(p, 1) for p in range(3)] == [1.0, 1.5, 1.0]
    assert [scenario.segment_multiplier(p, 0) for p in range(3)] == [1.0, 1.0, 1.0]
    assert Scenario.from_dict(scenario.to_dict()) == scenario


def test_integers_are_numbers_in_the_curve_and_the_shares():
    raw = changed(lambda r: r["traffic"].update(curve=[1, 2]))
    raw["traffic"]["segments"][0]["share"] = 1
    raw["traffic"]["segments"][1]["share"] = 0
    with pytest.raises(InputError):  # 0 is out of bounds: a share is above 0
        Scenario.from_dict(copy.deepcopy(raw))
    raw["traffic"]["segments"][1]["share"] = 1e-12  # within the 1e-9 tolerance of 1 in all
    traffic = Scenario.from_dict(raw).traffic
    assert traffic.curve == [1.0, 2.0] and traffic.segments[0].share == 1.0
    assert traffic.segment_counts(1000) == [1000, 0]


def test_the_curve_defaults_to_flat():
    raw = changed(lambda r: r["traffic"].pop("curve"))
    assert [Scenario.from_dict(raw).traffic.volume(r) for r in range(3)] == [1.0, 1.0, 1.0]


def test_without_traffic_the_scenario_dumps_as_before():
    raw = changed(lambda r: r.pop("traffic"))
    for p in raw["populations"]:
        p.pop("targets", None)
        p.pop("segment_value", None)
    dumped = Scenario.from_dict(raw).to_dict()
    assert list(dumped) == ["run", "mechanism", "market", "populations", "channels", "events"]
    assert list(dumped["populations"][0]) == ["name", "size", "strategy", "values", "value_scale", "budget",
                                              "quality", "reserve", "channel_budget_shares", "params"]
    scenario = Scenario.from_dict(raw)
    assert scenario.eligible(0, 0) and scenario.segment_multiplier(0, 0) == 1.0
    with pytest.raises(IndexError):
        scenario.eligible(0, 1)


def test_existing_example_scenarios_gain_no_keys():
    for path in sorted((ROOT / "data/scenarios").glob("*.toml")):
        if path.name in ("segments.toml", "double_auction.toml"):
            continue
        dumped = Scenario.from_toml(path).to_dict()
        assert "traffic" not in dumped, path.name
        assert all("targets" not in p and "segment_value" not in p for p in dumped["populations"]), path.name


def test_the_example_scenario_validates():
    scenario = Scenario.from_toml(ROOT / "data/scenarios/segments.toml")
    assert scenario.traffic.curve == CURVE and len(scenario.traffic.segments) == 2
    assert 25_000 <= scenario.total_agents <= 35_000


def test_the_docs_example_validates():
    text = (ROOT / "docs/context.md").read_text(encoding="utf-8")
    example = next(b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[run]" in b)
    scenario = Scenario.from_dict(tomllib.loads(example))
    assert scenario.eligible(0, 0) and not scenario.eligible(0, 1) and scenario.segment_multiplier(1, 1) == 1.5


# ---- the arithmetic ----

def test_the_curve_is_normalised_to_mean_one():
    traffic = Traffic(curve=CURVE, segments=[Segment(name="a", share=1.0)])
    volumes = [traffic.volume(r) for r in range(len(CURVE))]
    assert sum(volumes) / len(volumes) == pytest.approx(1.0, abs=1e-12)
    assert traffic.volume(0) == pytest.approx(0.4 / (sum(CURVE) / 12))
    assert traffic.volume(12) == traffic.volume(0) and traffic.volume(31) == traffic.volume(7)
    # a cycle of auctions() adds up to about auctions_per_round per round
    assert sum(traffic.auctions(20_000, r) for r in range(12)) == pytest.approx(12 * 20_000, abs=12)


def test_auctions_round_half_to_even():
    traffic = Traffic(curve=[1.0, 3.0], segments=[Segment(name="a", share=1.0)])
    assert traffic.auctions(5, 0) == 2  # 2.5 -> 2 (ties to even)
    assert traffic.auctions(7, 0) == 4  # 3.5 -> 4
    assert traffic.auctions(5, 1) == 8  # 7.5 -> 8
    assert traffic.auctions(0, 1) == 0


def test_a_zero_round_in_the_curve_plays_no_auctions():
    traffic = Traffic(curve=[0.0, 2.0], segments=[Segment(name="a", share=1.0)])
    assert [traffic.auctions(100, r) for r in range(4)] == [0, 200, 0, 200]


def test_segment_counts_by_largest_remainder():
    traffic = Traffic(segments=[Segment(name=n, share=s) for n, s in (("a", 0.45), ("b", 0.35), ("c", 0.2))])
    # 7 auctions: exact 3.15, 2.45, 1.4 -> floors 3, 2, 1 (6); the one left goes to b (.45 > .4 > .15)
    assert traffic.segment_counts(7) == [3, 3, 1]
    # 3: exact 1.35, 1.05, 0.6 -> floors 1, 1, 0; the one left goes to c (.6)
    assert traffic.segment_counts(3) == [1, 1, 1]
    assert traffic.segment_counts(0) == [0, 0, 0]


def test_segment_counts_ties_go_to_the_earlier_segment():
    assert largest_remainder(1, [0.5, 0.5]) == [1, 0]
    assert largest_remainder(2, [1 / 3, 1 / 3, 1 / 3]) == [1, 1, 0]
    assert largest_remainder(10, [0.25, 0.25, 0.5]) == [3, 2, 5]


@pytest.mark.parametrize("shares", [[0.6, 0.4], [1 / 3] * 3, [0.1] * 10, [0.45, 0.35, 0.2], [1 / 255] * 255,
                                    [0.7, 0.2, 0.1 + 1e-10]])
def test_segment_counts_always_sum_to_n(shares):
    for n in [0, 1, 2, 3, 7, 99, 1000, 19_999, 20_000, 10**12 + 7, 10**15]:
        counts = largest_remainder(n, shares)
        assert sum(counts) == n and min(counts) >= 0
        assert all(abs(c - n * s / sum(shares)) < 1 for c, s in zip(counts, shares))


# ---- one problem at the field for each mistake ----

BAD = [
    ("shares-do-not-add-up", lambda r: r["traffic"]["segments"][0].update(share=0.7),
     "traffic.segments", ["add up to 1.1", "make the shares add up to 1, e.g."]),
    ("share-zero", lambda r: r["traffic"]["segments"][0].update(share=0.0),
     "traffic.segments[0].share", ["use a value > 0"]),
    ("share-above-one", lambda r: r["traffic"]["segments"][0].update(share=1.5),
     "traffic.segments[0].share", ["use a value <= 1"]),
    ("share-nan", lambda r: r["traffic"]["segments"][0].update(share=float("nan")),
     "traffic.segments[0].share", ["finite number"]),
    ("segment-name-twice", lambda r: r["traffic"]["segments"][1].update(name="news-mobile")
     or r["populations"][1].pop("segment_value"),
     "traffic.segments[1].name", ["'news-mobile' is used twice", "its own name"]),
    ("segment-name-empty", lambda r: r["traffic"]["segments"][0].update(name=""),
     "traffic.segments[0].name", ["at least 1 character"]),
    ("no-segments", lambda r: r["traffic"].update(segments=[]), "traffic.segments", ["add at least one item"]),
    ("segments-missing", lambda r: r["traffic"].pop("segments"), "traffic.segments", ["required field is missing"]),
    ("curve-empty", lambda r: r["traffic"].update(curve=[]), "traffic.curve", ["add at least one item"]),
    ("curve-negative", lambda r: r["traffic"].update(curve=[1.0, -0.5]), "traffic.curve[1]", ["use a value >= 0"]),
    ("curve-infinite", lambda r: r["traffic"].update(curve=[1.0, float("inf")]), "traffic.curve[1]",
     ["finite number"]),
    ("curve-all-zero", lambda r: r["traffic"].update(curve=[0.0, 0.0]), "traffic.curve", ["all zeros", "e.g."]),
    ("curve-too-long", lambda r: r["traffic"].update(curve=[1.0] * 100_001), "traffic.curve", ["100000"]),
    ("curve-a-word", lambda r: r["traffic"].update(curve=["high"]), "traffic.curve[0]", ["write a number"]),
    ("traffic-unknown-key", lambda r: r["traffic"].update(curv=[1.0]), "traffic.curv", ["did you mean 'curve'"]),
    ("common-value-negative", lambda r: r["traffic"]["segments"][1].update(
        common_value={"dist": "uniform", "low": -1.0, "high": 1.0}),
     "traffic.segments[1].common_value.low", ["use a value >= 0"]),
    ("common-value-unknown-dist", lambda r: r["traffic"]["segments"][1].update(
        common_value={"dist": "lognormall", "mean": 0.0, "sigma": 0.4}),
     "traffic.segments[1].common_value.dist", ["did you mean 'lognormal'"]),
    ("targets-unknown-segment", lambda r: r["populations"][0].update(targets=["news-mobil"]),
     "populations[0].targets", ["no segment named 'news-mobil'", "did you mean 'news-mobile'",
                                "news-mobile, sports-desktop"]),
    ("targets-empty", lambda r: r["populations"][0].update(targets=[]), "populations[0].targets",
     ["add at least one item"]),
    ("targets-not-a-list", lambda r: r["populations"][0].update(targets="news-mobile"), "populations[0].targets",
     ["write an array"]),
    ("segment-value-unknown-segment", lambda r: r["populations"][1].update(segment_value={"sport-desktop": 1.5}),
     "populations[1].segment_value.sport-desktop", ["no segment named 'sport-desktop'",
                                                    "did you mean 'sports-desktop'", "news-mobile, sports-desktop"]),
    ("segment-value-negative", lambda r: r["populations"][1].update(segment_value={"sports-desktop": -1.0}),
     "populations[1].segment_value.sports-desktop", ["use a value >= 0"]),
    ("targets-without-traffic", lambda r: r.pop("traffic") and r["populations"][1].pop("segment_value"),
     "populations[0].targets", ["no [traffic] section", "add [traffic]", "remove targets"]),
    ("segment-value-without-traffic", lambda r: r.pop("traffic") and r["populations"][0].pop("targets"),
     "populations[1].segment_value", ["no [traffic] section", "remove segment_value"]),
    ("too-few-eligible-bidders", lambda r: r["market"].update(bidders_per_auction=11),
     "traffic.segments[1]", ["'sports-desktop' has 10 eligible agents but 11 bidders per auction",
                             "target the segment with more populations, or lower bidders_per_auction"]),
    ("no-eligible-bidder-in-a-channel", lambda r: r.update(channels=[{"name": "x", "populations": ["news"]}]),
     "traffic.segments[1]", ["'sports-desktop' has 0 eligible agents in channel 'x' but 3 bidders"]),
    ("all-bidders-with-traffic", lambda r: r["market"].update(bidders_per_auction="all"),
     "market.bidders_per_auction", ["segments need sampled bidders", "give a number"]),
    ("all-bidders-in-a-channel", lambda r: r.update(channels=[{"name": "x", "bidders_per_auction": "all"}]),
     "channels[0].bidders_per_auction", ["segments need sampled bidders"]),
]


@pytest.mark.parametrize("edit, path, expect", [pytest.param(*c[1:], id=c[0]) for c in BAD])
def test_bad_traffic_is_one_problem_at_the_field(edit, path, expect):
    problem = one_problem(changed(edit))
    assert problem.path == path, str(problem)
    for text in expect:
        assert text in str(problem)


# ---- events ----

def event(changes: dict) -> dict:
    return changed(lambda r: r.update(events=[{"at_round": 2, "set": changes}]))


def test_events_may_change_the_traffic_by_segment_name():
    paths = {"traffic.curve": [1.0, 2.0], "traffic.segments.news-mobile.share": 0.5,
             "traffic.segments.sports-desktop.share": 0.5,
             "traffic.segments.sports-desktop.common_value": {"dist": "constant", "value": 1.2},
             "traffic.segments.news-mobile.common_value.sigma": 0.2,
             "populations.news.targets": ["news-mobile", "sports-desktop"],
             "populations.sports.segment_value.sports-desktop": 2.0,
             "populations.everyone.segment_value": {"news-mobile": 0.5}}
    assert Scenario.from_dict(event(paths)).events[0].set == paths
    assert all(any(fnmatch.fnmatchcase(p, s) for s in SETTABLE_DURING_RUN) for p in paths)


def test_an_event_that_breaks_the_shares_is_reported():
    problem = one_problem(event({"traffic.segments.news-mobile.share": 0.5}))
    assert problem.path == "events[0] (at round 2): traffic.segments"
    assert "add up to 0.9" in problem.message


def test_an_event_naming_an_unknown_segment_is_reported():
    problem = one_problem(event({"traffic.segments.news.share": 0.5}))
    assert problem.path == 'events[0].set."traffic.segments.news.share"'
    assert "no item 'news'" in problem.message and "news-mobile" in problem.fix


def test_an_event_may_not_rename_a_segment():
    problem = one_problem(event({"traffic.segments.news-mobile.name": "news"}))
    assert "cannot change during a run" in problem.message


# ---- the command line ----

SEGMENTS_TOML = """\
[run]
name = "bad-traffic"
rounds = 2
auctions_per_round = 100

[market]
bidders_per_auction = 2

[traffic]
curve = [1.0, 2.0]
[[traffic.segments]]
name = "news-mobile"
share = 0.6
[[traffic.segments]]
name = "sports-desktop"
share = 0.5

[[populations]]
name = "a"
size = 10
strategy = "truthful"
values = { dist = "uniform", low = 0.0, high = 1.0 }
targets = ["news-mobile"]
"""


def test_the_command_line_exits_2_before_writing_anything(tmp_path, monkeypatch, capsys):
    file = tmp_path / "scenario.toml"
    file.write_text(SEGMENTS_TOML)
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["bidscape", "run", str(file), "--out", str(out), "-q"])
    with pytest.raises(SystemExit) as exited:
        cli_main()
    assert exited.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith("error: ") and "traffic.segments" in line and "add up to 1.1" in line
    assert not out.exists()


# ---- click-through rates and their prediction ----

def with_ctrs(raw: dict) -> dict:
    """RAW as a position auction with click-through rates: news-mobile's base ctr 0.4, sports-desktop's
    unset (1); sports advertisers clicked 1.5 times as often; predictions with noise 0.3."""
    raw["mechanism"] = {"type": "gsp", "slot_ctrs": [0.5, 0.3], "ctr_prediction": {"noise": 0.3}}
    raw["traffic"]["segments"][0]["ctr"] = 0.4
    raw["populations"][1]["ctr_multiplier"] = 1.5
    return raw


CTRS = with_ctrs(copy.deepcopy(RAW))


def ctr_changed(edit) -> dict:
    raw = copy.deepcopy(CTRS)
    edit(raw)
    return raw


def test_click_through_rates_parse():
    scenario = Scenario.from_dict(copy.deepcopy(CTRS))
    assert [s.ctr for s in scenario.traffic.segments] == [0.4, None]
    assert [p.ctr_multiplier for p in scenario.populations] == [1.0, 1.5, 1.0]
    assert scenario.mechanism.ctr_prediction.noise == 0.3
    assert [scenario.click_factor(p, 0) for p in range(3)] == pytest.approx([0.4, 0.6, 0.4])
    assert [scenario.click_factor(p, 1) for p in range(3)] == [1.0, 1.5, 1.0]
    dumped = scenario.to_dict()
    assert dumped["mechanism"]["ctr_prediction"] == {"noise": 0.3}
    assert "ctr_multiplier" not in dumped["populations"][0] and dumped["populations"][1]["ctr_multiplier"] == 1.5
    assert Scenario.from_dict(dumped) == scenario
    integers = ctr_changed(lambda r: r["populations"][1].update(ctr_multiplier=2)
                           or r["mechanism"].update(ctr_prediction={"noise": 0}))
    scenario = Scenario.from_dict(integers)
    assert scenario.populations[1].ctr_multiplier == 2.0 and scenario.mechanism.ctr_prediction.noise == 0.0


def test_without_click_through_rates_the_scenario_dumps_as_before():
    dumped = Scenario.from_dict(copy.deepcopy(RAW) | {"channels": [{"name": "x"}]}).to_dict()
    assert list(dumped["mechanism"]) == ["type", "reserve", "soft_floor", "slot_ctrs", "pricing"]
    assert list(dumped["channels"][0]["mechanism"]) == ["type", "reserve", "soft_floor", "slot_ctrs", "pricing"]
    assert all("ctr_multiplier" not in p for p in dumped["populations"])
    assert dumped["traffic"]["segments"][1]["ctr"] is None  # as common_value: written when unset
    raw = changed(lambda r: r.pop("traffic"))
    for p in raw["populations"]:
        p.pop("targets", None)
        p.pop("segment_value", None)
    scenario = Scenario.from_dict(raw)
    assert scenario.click_factor(0, 0) == 1.0
    with pytest.raises(IndexError):
        scenario.click_factor(0, 1)


def test_a_channel_may_predict_and_inherits_the_prediction():
    raw = ctr_changed(lambda r: r.update(channels=[
        {"name": "own", "mechanism": {"ctr_prediction": {"noise": 0.1}}},
        {"name": "inherits", "mechanism": {"slot_ctrs": [0.4]}},
        {"name": "banner", "mechanism": {"type": "second_price"}}]))  # ignores the inherited prediction
    scenario = Scenario.from_dict(raw)
    own, inherits, banner = scenario.resolved_channels()
    assert own.mechanism.ctr_prediction.noise == 0.1 and inherits.mechanism.ctr_prediction.noise == 0.3
    assert banner.mechanism.type == "second_price"
    dumped = scenario.to_dict()["channels"]
    assert dumped[0]["mechanism"]["ctr_prediction"] == {"noise": 0.1}
    assert "ctr_prediction" not in dumped[1]["mechanism"]
    assert Scenario.from_dict(scenario.to_dict()) == scenario


def test_the_largest_quality_of_a_lognormal_is_its_largest_draw():
    lognormal = {"dist": "lognormal", "mean": -3.0, "sigma": 0.3}  # largest draw exp(-3 + 8.5 x 0.3) = 0.64
    raw = ctr_changed(lambda r: r["populations"][0].update(quality=lognormal))
    assert Scenario.from_dict(raw).populations[0].quality.sigma == 0.3
    lognormal["mean"] = -0.5  # exp(-0.5 + 2.55) = 7.77, x 0.4 x 0.5 > 1
    problem = one_problem(ctr_changed(lambda r: r["populations"][0].update(quality=lognormal)))
    assert problem.path == "traffic.segments[0].ctr" and "quality up to 7.768" in problem.message


CTR_BAD = [
    ("ctr-zero", lambda r: r["traffic"]["segments"][0].update(ctr=0.0), "traffic.segments[0].ctr",
     ["use a value > 0"]),
    ("ctr-above-one", lambda r: r["traffic"]["segments"][0].update(ctr=1.2), "traffic.segments[0].ctr",
     ["use a value <= 1"]),
    ("ctr-nan", lambda r: r["traffic"]["segments"][0].update(ctr=float("nan")), "traffic.segments[0].ctr",
     ["finite number"]),
    ("ctr-a-word", lambda r: r["traffic"]["segments"][0].update(ctr="0.4"), "traffic.segments[0].ctr",
     ["write a number"]),
    ("ctr-multiplier-zero", lambda r: r["populations"][1].update(ctr_multiplier=0.0),
     "populations[1].ctr_multiplier", ["use a value > 0"]),
    ("ctr-multiplier-huge", lambda r: r["populations"][1].update(ctr_multiplier=1001.0),
     "populations[1].ctr_multiplier", ["use a value <= 1000"]),
    ("ctr-multiplier-infinite", lambda r: r["populations"][1].update(ctr_multiplier=float("inf")),
     "populations[1].ctr_multiplier", ["finite number"]),
    ("noise-negative", lambda r: r["mechanism"].update(ctr_prediction={"noise": -0.1}),
     "mechanism.ctr_prediction.noise", ["use a value >= 0"]),
    ("noise-above-three", lambda r: r["mechanism"].update(ctr_prediction={"noise": 3.5}),
     "mechanism.ctr_prediction.noise", ["use a value <= 3"]),
    ("noise-missing", lambda r: r["mechanism"].update(ctr_prediction={}), "mechanism.ctr_prediction.noise",
     ["required field is missing"]),
    ("noise-misspelt", lambda r: r["mechanism"].update(ctr_prediction={"nois": 0.3}),
     "mechanism.ctr_prediction.nois", ["did you mean 'noise'"]),
    ("channel-noise-infinite", lambda r: r.update(channels=[
        {"name": "x", "mechanism": {"ctr_prediction": {"noise": float("inf")}}}]),
     "channels[0].mechanism.ctr_prediction.noise", ["finite number"]),
    ("prediction-without-position-auction", lambda r: r["mechanism"].update(type="second_price"),
     "mechanism.ctr_prediction", ["for position auctions (gsp, vcg), not 'second_price'", 'type = "gsp"']),
    ("channel-prediction-without-position-auction", lambda r: r.update(channels=[
        {"name": "x", "mechanism": {"type": "first_price", "ctr_prediction": {"noise": 0.1}}}]),
     "channels[0].mechanism.ctr_prediction", ["for position auctions (gsp, vcg), not 'first_price'"]),
    ("click-probability-above-one-by-ctr", lambda r: r["traffic"]["segments"][0].update(ctr=1.0)
     or r["populations"][0].update(ctr_multiplier=2.5),
     "traffic.segments[0].ctr", ["click probabilities above 1", "population 'news'", "ctr 1 (segment "
                                 "'news-mobile') x ctr_multiplier 2.5 x the top slot's ctr 0.5 = 1.25",
                                 "lower ctr or ctr_multiplier so that quality x ctr x ctr_multiplier x the top "
                                 "slot's ctr stays at or below 1"]),
    ("click-probability-above-one-by-multiplier", lambda r: r["populations"][1].update(ctr_multiplier=3.0),
     "populations[1].ctr_multiplier", ["segment 'sports-desktop'", "= 1.5"]),
    ("click-probability-above-one-by-quality", lambda r: r["populations"][2].update(
        quality={"dist": "uniform", "low": 1.0, "high": 2.5}),
     "populations[2].quality", ["quality up to 2.5 (population 'everyone')", "= 1.25"]),
    ("click-probability-above-one-in-a-channel", lambda r: r.update(channels=[
        {"name": "x", "mechanism": {"slot_ctrs": [1.0]}}]) or r["populations"][1].update(ctr_multiplier=1.2),
     "populations[1].ctr_multiplier", ["= 1.2 in channel 'x'"]),
    ("ctr-multiplier-without-traffic", lambda r: r.pop("traffic") and r["populations"][0].pop("targets")
     and r["populations"][1].pop("segment_value") and r["mechanism"].pop("ctr_prediction"),
     "populations[1].ctr_multiplier", ["needs [traffic]", "add a [traffic] section (one segment with share = 1 "
                                       "is enough)"]),
    ("prediction-without-traffic", lambda r: r.pop("traffic") and r["populations"][0].pop("targets")
     and r["populations"][1].pop("segment_value") and r["populations"][1].pop("ctr_multiplier"),
     "mechanism.ctr_prediction", ["needs [traffic]", "one segment with share = 1 is enough"]),
    ("channel-prediction-without-traffic", lambda r: r.pop("traffic") and r["populations"][0].pop("targets")
     and r["populations"][1].pop("segment_value") and r["populations"][1].pop("ctr_multiplier")
     and r["mechanism"].pop("ctr_prediction") and r.update(channels=[
         {"name": "x", "mechanism": {"ctr_prediction": {"noise": 0.1}}}]),
     "channels[0].mechanism.ctr_prediction", ["needs [traffic]"]),
]


@pytest.mark.parametrize("edit, path, expect", [pytest.param(*c[1:], id=c[0]) for c in CTR_BAD])
def test_bad_click_through_rates_are_one_problem_at_the_field(edit, path, expect):
    problem = one_problem(ctr_changed(edit))
    assert problem.path == path, str(problem)
    for text in expect:
        assert text in str(problem)


def test_without_position_auctions_click_probabilities_are_not_bounded():
    raw = ctr_changed(lambda r: r["mechanism"].update(type="second_price")
                      or r["populations"][1].update(ctr_multiplier=1000.0))
    del raw["mechanism"]["ctr_prediction"]
    assert Scenario.from_dict(raw).populations[1].ctr_multiplier == 1000.0


def test_events_and_overrides_may_change_click_through_rates():
    paths = {"traffic.segments.news-mobile.ctr": 0.2, "traffic.segments.1.ctr": 0.5,
             "populations.sports.ctr_multiplier": 1.2, "mechanism.ctr_prediction.noise": 0.5,
             "channels.x.mechanism.ctr_prediction.noise": 0.1}
    assert all(any(fnmatch.fnmatchcase(p, s) for s in SETTABLE_DURING_RUN) for p in paths)
    raw = ctr_changed(lambda r: r.update(channels=[{"name": "x"}], events=[{"at_round": 2, "set": paths}]))
    scenario = Scenario.from_dict(raw)
    assert scenario.events[0].set == paths
    # unset prediction tables are created by the path, at the top level and in a channel
    unset = ctr_changed(lambda r: r.update(channels=[{"name": "x"}]))
    del unset["mechanism"]["ctr_prediction"]
    updated = Scenario.from_dict(unset).with_updates({"mechanism.ctr_prediction.noise": 0.5,
                                                      "channels.x.mechanism.ctr_prediction.noise": 0.1})
    assert updated.mechanism.ctr_prediction.noise == 0.5
    assert updated.resolved_channels()[0].mechanism.ctr_prediction.noise == 0.1
    unset.update(events=[{"at_round": 1, "set": {"mechanism.ctr_prediction.noise": 0.2}}])
    assert Scenario.from_dict(unset).events[0].set == {"mechanism.ctr_prediction.noise": 0.2}


def test_an_event_that_lifts_a_click_probability_above_one_is_reported():
    problem = one_problem(ctr_changed(lambda r: r.update(events=[
        {"at_round": 2, "set": {"populations.sports.ctr_multiplier": 2.5}}])))
    assert problem.path == "events[0] (at round 2): populations[1].ctr_multiplier"
    assert "= 1.25" in problem.message


# ---- a share curve per segment ----

def shares_per_round(share_curves, curve=(1.0, 1.0, 1.0)):
    raw = changed(lambda r: None)
    raw["traffic"] = {"curve": list(curve), "segments": [
        {"name": "a", "share": 0.5, "share_curve": share_curves[0]}, {"name": "b", "share": 0.5}]}
    for population in raw["populations"]:
        population.pop("targets", None)
        population.pop("segment_value", None)
    return raw


def test_a_share_curve_moves_the_split_round_by_round():
    traffic = Scenario.from_dict(shares_per_round([[1.0, 3.0, 0.0]])).traffic
    assert traffic.shares(0) == [0.5, 0.5] and traffic.shares(1) == [1.5, 0.5] and traffic.shares(2) == [0.0, 0.5]
    assert traffic.segment_counts(1000, 0) == [500, 500]
    assert traffic.segment_counts(1000, 1) == [750, 250]  # 1.5 : 0.5, renormalised
    assert traffic.segment_counts(1000, 2) == [0, 1000]
    assert traffic.segment_counts(1000, 4) == [750, 250]  # cycled with the traffic curve


def test_a_share_curve_has_one_factor_per_round_of_the_cycle():
    problem = one_problem(shares_per_round([[1.0, 2.0]]))
    assert problem.path == "traffic.segments[0].share_curve" and "3" in problem.message


def test_some_segment_must_have_a_share_in_every_round_with_traffic():
    raw = shares_per_round([[1.0, 0.0, 1.0]])
    raw["traffic"]["segments"][1]["share_curve"] = [1.0, 0.0, 1.0]
    assert "round 1" in one_problem(raw).message
    raw["traffic"]["curve"] = [1.0, 0.0, 1.0]  # no traffic in that round: fine
    Scenario.from_dict(raw)


def test_without_a_share_curve_the_scenario_dumps_as_before():
    dumped = Scenario.from_dict(RAW).to_dict()
    assert all("share_curve" not in s for s in dumped["traffic"]["segments"])

"""What-if comparisons recover known effects, with intervals that cover at about the nominal rate."""

from __future__ import annotations

import subprocess
from pathlib import Path
import sys

import pytest

import bidscape
from bidscape.analysis.compare import compare, scenario_changes
from bidscape.analysis.events import equal_rounds, identical
from bidscape.errors import InputError
from bidscape.scenario import Scenario

ROUNDS, AUCTIONS = 8, 4000
# Two bidders with values U[0, 1] in a second-price auction: revenue per auction is 1/3
# without a reserve and 1/3 + r^2 - 4r^3/3 = 5/12 with r = 0.5 (Myerson's optimum).
EFFECT = (5 / 12 - 1 / 3) * ROUNDS * AUCTIONS
RELATIVE = (5 / 12) / (1 / 3) - 1


def reserve_scenario() -> Scenario:
    return Scenario.from_toml("data/scenarios/reserve_price.toml").with_updates(
        {"events": [], "run.rounds": ROUNDS, "run.auctions_per_round": AUCTIONS, "run.record_agents": "none",
         "run.auction_sample_rate": 0.0})


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    root = tmp_path_factory.mktemp("arms")
    scenario = reserve_scenario()
    for arm, reserve in (("baseline", 0.0), ("treatment", 0.5)):
        for seed in range(1, 41):
            bidscape.run(scenario.with_updates({"mechanism.reserve": reserve}), out=root / arm / f"seed-{seed}",
                         seed=seed)
    return root


def covered(row) -> bool:
    return row["ci_low"] <= EFFECT <= row["ci_high"]


def test_interval_over_rounds_covers_the_known_effect_at_about_the_nominal_rate(arms):
    # 40 single-seed comparisons, each with a 95% batch-means interval over its 8 rounds.
    # Covering fewer than 34 of 40 has probability < 0.3% if the true rate is 95%.
    hits = 0
    for seed in range(1, 41):
        result = compare(arms / "baseline" / f"seed-{seed}", arms / "treatment" / f"seed-{seed}", ["revenue"])
        row = result.table.row(0, named=True)
        assert row["method"].startswith("batch means")
        hits += covered(row)
    assert hits >= 34
    assert hits <= 40


def test_interval_over_seeds_covers_the_known_effect(arms):
    # 8 disjoint groups of 5 paired seeds; P(at most 5 of 8 cover | 95%) < 0.6%.
    hits = 0
    for g in range(8):
        seeds = range(5 * g + 1, 5 * g + 6)
        result = compare([arms / "baseline" / f"seed-{s}" for s in seeds],
                         [arms / "treatment" / f"seed-{s}" for s in seeds], ["revenue"])
        row = result.table.row(0, named=True)
        assert row["method"] == "paired seeds (n=5, t interval)"
        hits += covered(row)
    assert hits >= 6


def test_group_comparison_recovers_absolute_and_relative_effects(arms):
    result = compare(arms / "baseline", arms / "treatment")
    assert result.seeds == list(range(1, 41))
    revenue = result.table.filter(result.table["metric"] == "revenue").row(0, named=True)
    assert revenue["ci_low"] <= EFFECT <= revenue["ci_high"]
    assert revenue["relative_ci_low"] <= RELATIVE <= revenue["relative_ci_high"]
    assert revenue["p_value"] < 1e-6
    sold = result.table.filter(result.table["metric"] == "sold_share").row(0, named=True)
    assert sold["ci_low"] <= -0.25 <= sold["ci_high"]  # the reserve leaves P(both < 0.5) = 1/4 unsold
    assert result.scenario_changes == [("mechanism.reserve", 0.0, 0.5)]
    assert result.by_round.height == 2 * ROUNDS
    assert result.per_seed.filter(result.per_seed["metric"] == "revenue").height == 40


def test_common_random_numbers_make_identical_arms_exactly_equal(tmp_path):
    scenario = reserve_scenario()
    for arm in ("a", "b"):
        for seed in (1, 2, 3):
            bidscape.run(scenario, out=tmp_path / arm / f"seed-{seed}", seed=seed)
    result = compare(tmp_path / "a", tmp_path / "b", ["revenue", "welfare"])
    for row in result.table.iter_rows(named=True):
        assert row["difference"] == 0.0 and row["ci_low"] == 0.0 and row["ci_high"] == 0.0


def test_unpaired_seeds_are_left_out_and_reported(arms, tmp_path):
    result = compare([arms / "baseline" / "seed-1", arms / "baseline" / "seed-2"],
                     [arms / "treatment" / "seed-2", arms / "treatment" / "seed-3"], ["revenue"])
    assert result.seeds == [2]
    assert result.unpaired == {"baseline": [1], "treatment": [3]}
    with pytest.raises(InputError, match="no seed is in both arms"):
        compare(arms / "baseline" / "seed-1", arms / "treatment" / "seed-2")
    with pytest.raises(InputError, match="share runs"):
        compare(arms / "baseline", arms / "baseline")
    with pytest.raises(InputError, match="unknown metric"):
        compare(arms / "baseline", arms / "treatment", ["revenu"])


def test_html_report_is_self_contained(arms, tmp_path):
    result = compare(arms / "baseline", arms / "treatment")
    path = tmp_path / "report.html"
    result.to_html(path)
    text = path.read_text()
    assert "<svg" in text and "<script" not in text
    assert "mechanism.reserve" in text and "revenue" in text
    assert result.segments is None and result.segments_by_round is None  # no [traffic]: no segment section
    assert "By segment" not in text


def test_scenario_changes_lists_nested_differences():
    assert scenario_changes({"run": {"seed": 1, "rounds": 2}, "mechanism": {"reserve": 0.0}},
                            {"run": {"seed": 5, "rounds": 2}, "mechanism": {"reserve": 0.3}}) == [
        ("mechanism.reserve", 0.0, 0.3)]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bidscape.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_compare_command(arms, tmp_path):
    result = cli("compare", arms / "baseline", arms / "treatment", "--report", tmp_path / "r.html",
                 "--csv", tmp_path / "r.csv")
    assert result.returncode == 0, result.stderr
    assert "revenue" in result.stdout and "40 paired seed(s)" in result.stdout
    assert (tmp_path / "r.html").is_file() and (tmp_path / "r.csv").is_file()
    assert "by segment" not in result.stdout and not (tmp_path / "r-segments.csv").exists()
    bad = cli("compare", arms / "baseline", tmp_path / "missing")
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_run_pair_command(tmp_path):
    out = tmp_path / "pair"
    result = cli("run-pair", "data/scenarios/reserve_price.toml", "--treatment", "mechanism.reserve=0.5",
                 "--set", "events=[]", "--set", "run.rounds=4", "--set", "run.auctions_per_round=2000",
                 "--seeds", "3", "--workers", "1", "--out", out, "-q")
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in (out / "treatment").iterdir()) == ["seed-1", "seed-2", "seed-3"]
    assert "mechanism.reserve: 0.0 -> 0.5" in result.stdout
    bad = cli("run-pair", "data/scenarios/reserve_price.toml", "--treatment", "mechanism.reserv=0.5",
              "--seeds", "2", "--out", tmp_path / "bad", "-q")
    assert bad.returncode == 2 and "reserv" in bad.stderr


# ---- events that make the arms equal over some rounds (reserve_price.toml raises the reserve at round 5) ----

PER_AUCTION = {0.0: 1 / 3, 0.5: 5 / 12}  # revenue per auction, two U[0, 1] bidders, second price


def run_pair(out, *extra, cwd=None):
    return cli("run-pair", "data/scenarios/reserve_price.toml", "--treatment", "mechanism.reserve=0.5",
               "--set", "run.auctions_per_round=4000", "--set", "populations.bidders.size=200",
               "--seeds", "4", "--workers", "1", "-q", *(["--out", out] if out else []), *extra, cwd=cwd)


@pytest.fixture(scope="module")
def readme_pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("readme") / "pair"
    return out, run_pair(out)


def test_run_pair_on_the_readme_example_measures_the_whole_effect_of_the_reserve(readme_pair):
    # The scenario's event sets the reserve to 0.5 at round 5. Held (the default), the treatment
    # differs from the baseline in all 10 rounds: +25% revenue, not the +11.1% of arms that are
    # equal in rounds 5-9 (baseline 1/3 then 5/12, treatment 5/12 throughout).
    out, result = readme_pair
    assert result.returncode == 0, result.stderr
    assert "dropped from both arms events[0] at round 5 set mechanism.reserve = 0.5" in result.stdout
    assert "WARNING" not in result.stdout
    revenue = compare(out / "baseline", out / "treatment", ["revenue"]).table.row(0, named=True)
    auctions = 10 * 4000  # per seed
    assert revenue["ci_low"] <= (PER_AUCTION[0.5] - PER_AUCTION[0.0]) * auctions <= revenue["ci_high"]
    assert abs(revenue["relative"] - 0.25) < 0.01  # 5/12 over 1/3; the interval above is the test's tolerance
    diluted = PER_AUCTION[0.5] / ((PER_AUCTION[0.0] + PER_AUCTION[0.5]) / 2) - 1  # +11.1%
    assert revenue["relative_ci_low"] > diluted
    baseline = bidscape.Run(out / "baseline" / "seed-1")
    assert baseline.manifest["scenario"]["events"] == []
    assert set(baseline.market["reserve"].to_list()) == {0.0}


def test_run_pair_without_hold_warns_in_the_terminal_and_the_report_with_the_event_and_rounds(tmp_path):
    result = run_pair(tmp_path / "pair", "--no-hold")
    assert result.returncode == 0, result.stderr
    line = ("the arms are equal on mechanism.reserve in rounds 5-9 (5 of 10) because events[0] at round 5 sets "
            "mechanism.reserve = 0.5 in both arms")
    assert result.stdout.count("WARNING") == 1 and line in " ".join(result.stdout.split())
    report = (tmp_path / "pair" / "report.html").read_text()
    assert "class='warning'" in report and "rounds 5-9" in report and "events[0] at round 5" in report
    comparison = compare(tmp_path / "pair" / "baseline", tmp_path / "pair" / "treatment", ["revenue"])
    assert [o.rounds for o in comparison.overlaps] == [(5, 6, 7, 8, 9)]
    revenue = comparison.table.row(0, named=True)
    assert revenue["ci_low"] <= (PER_AUCTION[0.5] - PER_AUCTION[0.0]) * 5 * 4000 <= revenue["ci_high"]  # rounds 0-4


def test_run_pair_refuses_a_treatment_that_changes_nothing(tmp_path):
    result = cli("run-pair", "data/scenarios/reserve_price.toml", "--treatment", "mechanism.reserve=0.0",
                 "--seeds", "2", "--out", tmp_path / "pair", "-q")
    assert result.returncode == 2 and "changes nothing" in result.stderr
    assert not (tmp_path / "pair").exists()


def test_equal_rounds_follow_the_events_round_by_round():
    base = reserve_scenario().with_updates({"run.rounds": 10, "events": [
        {"at_round": 3, "set": {"mechanism.reserve": 0.2}}, {"at_round": 7, "set": {"mechanism.reserve": 0.5}},
        {"at_round": 0, "set": {"populations.bidders.values": {"dist": "uniform", "low": 0.0, "high": 2.0}}}]})
    treated = base.with_updates({"mechanism.reserve": 0.5}).to_dict()
    [overlap] = equal_rounds(base.to_dict(), treated)  # 0.0 -> 0.2 (round 3) -> 0.5 (7) against 0.5 -> 0.2 -> 0.5
    assert overlap.key == "mechanism.reserve" and overlap.rounds == tuple(range(3, 10)) and not overlap.everywhere
    assert overlap.events == ("events[0] at round 3 sets mechanism.reserve = 0.2 in both arms",
                              "events[1] at round 7 sets mechanism.reserve = 0.5 in both arms")
    assert equal_rounds(base.to_dict(), base.to_dict()) == [] and identical(base.to_dict(), base.to_dict())
    # an event at round 0 overrides the base values in both arms: the arms never differ on them
    values = base.with_updates({"populations.bidders.values": {"dist": "uniform", "low": 0.0, "high": 3.0}})
    assert equal_rounds(base.to_dict(), values.to_dict()) == [] and identical(base.to_dict(), values.to_dict())
    # events in one arm only; the values differ in every round (U[0, 1] against U[0, 2]): not listed
    held = base.with_updates({"events": [], "mechanism.reserve": 0.5}).to_dict()
    [overlap] = equal_rounds(held, treated)
    assert overlap.rounds == (0, 1, 2, 7, 8, 9) and "in rounds 0-2, 7-9 (6 of 10)" in overlap.message()
    assert overlap.events[-1] == "events[1] at round 7 sets mechanism.reserve = 0.5 in the treatment"
    assert not identical(held, treated)


def test_the_dashboard_ab_page_shows_the_warning():
    testing = pytest.importorskip("streamlit.testing.v1")
    script = """
import polars as pl
from bidscape.dashboards.views import ab
table = pl.DataFrame({"metric": ["revenue"], "baseline": [1.0], "treatment": [1.1], "difference": [0.1],
                      "relative": [0.1], "method": ["paired seeds (n=2, t interval)"]})
ab.show({"table": table, "seeds": [1, 2], "warnings": ["the arms are equal on mechanism.reserve in rounds 5-9"]}, 0.95)
"""
    at = testing.AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception
    assert any("equal on mechanism.reserve in rounds 5-9" in e.value for e in at.error)


def small_pair(out, treatment="mechanism.reserve=0.5", *extra, cwd=None):
    return cli("run-pair", Path("data/scenarios/reserve_price.toml").resolve(), "--treatment", treatment,
               "--set", "events=[]", "--set", "run.rounds=4", "--set", "run.auctions_per_round=1000", "--seeds", "2",
               "--workers", "1", "-q", *(["--out", out] if out else []), *extra, cwd=cwd)


def test_run_pair_writes_to_runs_pair_by_default_and_prints_it(tmp_path):
    result = small_pair(None, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "into runs/pair (runs/pair/baseline, runs/pair/treatment)" in result.stdout
    assert "report: runs/pair/report.html" in result.stdout
    again = cli("compare", "runs/pair/baseline", "runs/pair/treatment", "--report", "ab.html", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ab.html").is_file()
    resumed = small_pair(None, cwd=tmp_path)  # the same command resumes: nothing to redo
    assert resumed.returncode == 0, resumed.stderr


def test_run_pair_replaces_only_a_run_pair_folder_and_only_with_overwrite(tmp_path):
    out = tmp_path / "pair"
    assert small_pair(out).returncode == 0
    other = small_pair(out, "mechanism.reserve=0.25")
    assert other.returncode == 2 and "holds a different sweep" in other.stderr and "--overwrite" in other.stderr
    replaced = small_pair(out, "mechanism.reserve=0.25", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert bidscape.Run(out / "treatment" / "seed-1").manifest["scenario"]["mechanism"]["reserve"] == 0.25
    (out / "notes.txt").write_text("mine")  # not a run-pair's file: never deleted
    refused = small_pair(out, "mechanism.reserve=0.5", "--overwrite")
    assert refused.returncode == 2 and "notes.txt" in refused.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "treatment" / "seed-1").is_dir()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("x")
    for extra in ((), ("--overwrite",)):
        result = small_pair(plain, "mechanism.reserve=0.5", *extra)
        assert result.returncode == 2 and "--overwrite only replaces a run-pair folder" in result.stderr
    assert sorted(p.name for p in plain.iterdir()) == ["data.csv"]


def test_run_pair_says_whether_the_treatment_holds(tmp_path):
    held = small_pair(tmp_path / "a")
    assert "the treatment holds for the whole run (no event sets a treated key)" in " ".join(held.stdout.split())
    kept = small_pair(tmp_path / "b", "mechanism.reserve=0.5", "--no-hold")
    assert "--no-hold: the scenario's events fire in both arms as written" in " ".join(kept.stdout.split())


# ---- by segment ----

# Three truthful bidders of 60 with values c x U[0, 1] in second price: revenue per auction is
# E[c] (n - 1) / (n + 1) = E[c] / 2 (docs/context.md). The treatment moves the news segment's common
# value from U[0.5, 1.5] to U[1, 2]: E[c] 1 -> 1.5, so news revenue x 1.5; sports is untouched.
SEGMENT_SCENARIO = """\
[run]
name = "segments"
rounds = 10
auctions_per_round = 2000
record_agents = "none"
auction_sample_rate = 0.0

[mechanism]
type = "second_price"

[market]
bidders_per_auction = 3

[traffic]
segments = [{ name = "news", share = 0.5, common_value = { dist = "uniform", low = 0.5, high = 1.5 } },
            { name = "sports", share = 0.5 }]

[[populations]]
name = "all"
size = 60
strategy = "truthful"
values = { dist = "uniform", low = 0.0, high = 1.0 }
"""
NEWS_TREATED = {"dist": "uniform", "low": 1.0, "high": 2.0}
NEWS_RATIO = 1.5 / 1.0  # E[c'] / E[c]


@pytest.fixture(scope="module")
def segment_arms(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment-arms")
    (root / "segments.toml").write_text(SEGMENT_SCENARIO)
    scenario = Scenario.from_toml(root / "segments.toml")
    treated = scenario.with_updates({"traffic.segments.news.common_value": NEWS_TREATED})
    for seed in range(1, 6):
        bidscape.run(scenario, out=root / "baseline" / f"seed-{seed}", seed=seed)
        bidscape.run(treated, out=root / "treatment" / f"seed-{seed}", seed=seed)
    return root


def effect(result, segment: str, metric: str) -> dict:
    return result.segments.filter((result.segments["segment"] == segment)
                                  & (result.segments["metric"] == metric)).row(0, named=True)


def test_effects_by_segment_recover_the_common_value_ratio(segment_arms):
    result = compare(segment_arms / "baseline", segment_arms / "treatment")
    assert result.segments["segment"].unique(maintain_order=True).to_list() == ["news", "sports"]
    news = effect(result, "news", "revenue")
    assert news["method"] == "paired seeds (n=5, t interval)"
    # the 95% interval is the tolerance (its half-width is about 0.2%: the test has power)
    assert news["relative_ci_low"] <= NEWS_RATIO - 1 <= news["relative_ci_high"]
    assert news["relative_ci_high"] - news["relative_ci_low"] < 0.01
    per_auction = effect(result, "news", "revenue_per_auction")  # E[c] / 2; se about 0.0012 over 5 x 10,000
    assert per_auction["baseline"] == pytest.approx(0.5, abs=0.005)
    assert per_auction["treatment"] == pytest.approx(0.75, abs=0.0075)
    # sports sees the same auctions in both arms (common random numbers): no change, up to rounding
    sports = effect(result, "sports", "revenue")
    rounding = 1e-9 * sports["baseline"]
    assert sports["ci_low"] - rounding <= 0 <= sports["ci_high"] + rounding
    assert abs(sports["difference"]) <= rounding
    assert effect(result, "news", "efficiency")["difference"] == pytest.approx(0, abs=1e-12)  # truthful: 1 and 1
    assert effect(result, "news", "clicks")["method"] == "not recorded"  # single item: no clicks
    assert result.segments_by_round.height == 2 * 2 * 10  # arms x segments x rounds
    # the market table is today's: whole-market revenue moves by half the news effect
    revenue = result.table.filter(result.table["metric"] == "revenue").row(0, named=True)
    assert revenue["difference"] == pytest.approx(news["difference"], rel=1e-9)


def test_one_seed_gets_batch_means_by_segment(segment_arms):
    result = compare(segment_arms / "baseline" / "seed-1", segment_arms / "treatment" / "seed-1")
    news = effect(result, "news", "revenue")
    assert news["method"] == "batch means over rounds (5 batches)"
    assert news["relative_ci_low"] <= NEWS_RATIO - 1 <= news["relative_ci_high"]


def test_metrics_by_segment_follow_the_metrics_asked_for(segment_arms, arms):
    result = compare(segment_arms / "baseline", segment_arms / "treatment", ["revenue", "clicks"])
    assert result.table["metric"].to_list() == ["revenue"]
    assert result.segments["metric"].to_list() == ["revenue", "clicks"] * 2
    with pytest.raises(InputError, match="clicks are by segment"):
        compare(arms / "baseline", arms / "treatment", ["revenue", "clicks"])


def test_compare_command_prints_and_writes_the_effects_by_segment(segment_arms, tmp_path):
    result = cli("compare", segment_arms / "baseline", segment_arms / "treatment", "--report", tmp_path / "r.html",
                 "--csv", tmp_path / "r.csv")
    assert result.returncode == 0, result.stderr
    assert "by segment" in result.stdout and "news" in result.stdout and "sports" in result.stdout
    assert "r-segments.csv" in result.stdout
    rows = (tmp_path / "r-segments.csv").read_text().splitlines()
    assert rows[0].startswith("segment,metric,") and len(rows) == 1 + 2 * 7
    report = (tmp_path / "r.html").read_text()
    assert "<h2>By segment</h2>" in report and "<td>news</td>" in report and report.count("<svg") == 4


def test_run_pair_treats_one_segment_by_name(segment_arms, tmp_path):
    result = cli("run-pair", segment_arms / "segments.toml",
                 "--treatment", "traffic.segments.news.common_value.high=2.5", "--set", "run.rounds=4",
                 "--set", "run.auctions_per_round=1000", "--seeds", "2", "--workers", "1", "--out", tmp_path / "pair",
                 "-q")
    assert result.returncode == 0, result.stderr
    assert "by segment" in result.stdout
    assert "<h2>By segment</h2>" in (tmp_path / "pair" / "report.html").read_text()


def test_scenario_changes_look_inside_named_tables():
    base = {"traffic": {"segments": [{"name": "news", "share": 0.6, "ctr": 0.02}, {"name": "sports", "share": 0.4}]},
            "populations": [{"name": "a", "size": 10}]}
    treat = {"traffic": {"segments": [{"name": "news", "share": 0.6, "ctr": 0.03}, {"name": "sports", "share": 0.4}]},
             "populations": [{"name": "a", "size": 20}]}
    assert scenario_changes(base, treat) == [("populations.a.size", 10, 20),
                                             ("traffic.segments.news.ctr", 0.02, 0.03)]
    # a segment added or renamed is a change of the whole list
    treat["traffic"]["segments"].append({"name": "games", "share": 0.0})
    assert scenario_changes(base, treat)[-1][0] == "traffic.segments"

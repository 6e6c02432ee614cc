"""What-if comparisons recover known effects, with intervals that cover at about the nominal rate."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bidscape
from bidscape.analysis.compare import compare, scenario_changes
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

"""Values per conversion (``value_per = "conversion"`` with a ``conversion_rate``): the checks, the
expected value folded into the value tables, the ``conversions`` column, and target_cpa on it.

Tolerances: 4 standard errors (a false alarm at most once in 15,000 runs); each test says where
its standard error comes from.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import bidscape
from bidscape import InputError, Scenario
from bidscape.cli import main as cli_main
from bidscape.loop.simulation import Simulation
from scenario_testing import one_problem

Z = 4.0
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 1.0}


def population(name: str = "a", size: int = 200, **fields) -> dict:
    return {"name": name, "size": size, "strategy": "truthful", "values": UNIFORM, **fields}


def scenario(populations: list[dict], mechanism: str = "second_price", rounds: int = 2, auctions: int = 20_000,
             bidders: int = 4, seed: int = 1) -> dict:
    mech = {"type": mechanism} | ({"slot_ctrs": [0.3, 0.2, 0.1]} if mechanism in ("gsp", "vcg") else {})
    return {"run": {"seed": seed, "rounds": rounds, "auctions_per_round": auctions, "record_agents": "none",
                    "auction_sample_rate": 0.0},
            "mechanism": mech, "market": {"bidders_per_auction": bidders}, "populations": populations}


# ---- the fields and their checks ----

def test_the_fields_parse_and_are_left_out_when_unset():
    plain = Scenario.from_dict(scenario([population()]))
    assert "value_per" not in plain.to_dict()["populations"][0]
    assert "conversion_rate" not in plain.to_dict()["populations"][0]
    assert plain.conversion_rates() is None
    valued = Scenario.from_dict(scenario([population(value_per="conversion", conversion_rate=0.05), population("b")]))
    assert {k: valued.to_dict()["populations"][0][k] for k in ("value_per", "conversion_rate")} == {
        "value_per": "conversion", "conversion_rate": 0.05}
    assert Scenario.from_dict(valued.to_dict()) == valued
    rates = valued.conversion_rates()
    assert rates[0] == 0.05 and math.isnan(rates[1])
    # "click" in a position auction and "impression" in a single-item one say what unset says
    Scenario.from_dict(scenario([population(value_per="click")], "gsp"))
    Scenario.from_dict(scenario([population(value_per="impression")]))


@pytest.mark.parametrize("fields, mechanism, path, expect", [
    ({"value_per": "conversion"}, "second_price", "populations[0].conversion_rate", "needs a conversion rate"),
    ({"value_per": "conversion", "conversion_rate": 0.0}, "gsp", "populations[0].conversion_rate", ""),
    ({"value_per": "conversion", "conversion_rate": 1.5}, "gsp", "populations[0].conversion_rate", ""),
    ({"conversion_rate": 0.1}, "second_price", "populations[0].conversion_rate", 'only with value_per = "conversion"'),
    ({"value_per": "click", "conversion_rate": 0.1}, "gsp", "populations[0].conversion_rate", "value_per is 'click'"),
    ({"value_per": "click"}, "second_price", "populations[0].value_per", "single-item auction without clicks"),
    ({"value_per": "impression"}, "vcg", "populations[0].value_per", "where values are per click"),
    ({"value_per": "clicks"}, "gsp", "populations[0].value_per", ""),
], ids=["no-rate", "rate-0", "rate-above-1", "rate-without-conversion", "rate-with-click", "click-without-clicks",
        "impression-in-position", "misspelt"])
def test_bad_fields_are_one_problem_at_the_field(fields, mechanism, path, expect):
    problem = one_problem(scenario([population(**fields), population("b")], mechanism))
    assert problem.path == path, problem
    assert expect in problem.message, problem


def test_a_channel_without_clicks_is_named():
    raw = scenario([population(value_per="click"), population("b")], "gsp")
    raw["channels"] = [{"name": "search"}, {"name": "display", "mechanism": {"type": "first_price"}}]
    problem = one_problem(raw)
    assert problem.path == "populations[0].value_per" and "channel 'display' runs first_price" in problem.message
    raw["channels"][1]["populations"] = ["b"]  # population a no longer bids on display
    Scenario.from_dict(raw)


def test_overrides_and_events_may_set_the_rate():
    base = Scenario.from_dict(scenario([population(value_per="conversion", conversion_rate=0.05)]))
    assert base.with_updates({"populations.a.conversion_rate": 0.2}).populations[0].conversion_rate == 0.2
    with pytest.raises(InputError):
        base.with_updates({"populations.a.conversion_rate": 2.0})
    raw = base.to_dict() | {"events": [{"at_round": 1, "set": {"populations.a.conversion_rate": 0.2}}]}
    sim = Simulation(Scenario.from_dict(raw), threads=1)
    before, after = sim.step(), sim.step()
    # values x 4 from round 1 on: revenue per round x 4, up to two rounds' sampling error (20,000
    # truthful auctions: the revenue's relative standard error is about 0.25% a round; 4 se of a ratio)
    assert abs(after.revenue / before.revenue / 4.0 - 1.0) < 4 * math.sqrt(2) * 0.0025


def test_the_command_line_exits_2_before_writing_anything(tmp_path, monkeypatch, capsys):
    file = tmp_path / "scenario.toml"
    file.write_text('[[populations]]\nname = "a"\nsize = 10\nstrategy = "truthful"\n'
                    'values = { dist = "uniform", low = 0.0, high = 1.0 }\nvalue_per = "conversion"\n')
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["bidscape", "run", str(file), "--out", str(out), "-q"])
    with pytest.raises(SystemExit) as exited:
        cli_main()
    assert exited.value.code == 2
    assert "populations[0].conversion_rate" in capsys.readouterr().err
    assert not out.exists()


# ---- the model: expected values in the tables ----

def test_values_per_conversion_are_values_times_the_rate():
    """The tables hold value x rate, so the same draws give c times the bids, prices and welfare."""
    rate = 0.2
    plain = Simulation(Scenario.from_dict(scenario([population()], rounds=1)), threads=1)
    valued = Simulation(Scenario.from_dict(scenario([population(value_per="conversion", conversion_rate=rate)],
                                                    rounds=1)), threads=1)
    np.testing.assert_allclose(valued.state.value_tables, rate * plain.state.value_tables, rtol=1e-15)
    a, b = plain.step(), valued.step()
    for name in ("revenue", "welfare", "max_welfare"):
        assert getattr(b, name) == pytest.approx(rate * getattr(a, name), rel=1e-9), name
    assert b.sold == a.sold


def test_truthful_second_price_revenue_is_c_times_the_second_of_n_uniforms(tmp_path):
    """n = 4 truthful bidders, values per conversion U[0, 1], rate c: each bids c v, so revenue per
    auction is c (n - 1) / (n + 1). The second highest of n uniforms is Beta(n - 1, 2), variance
    2 (n - 1) / ((n + 1)^2 (n + 2)); auctions draw values independently, so se = c sd / sqrt(N)."""
    n, c = 4, 0.3
    run = bidscape.run(Scenario.from_dict(scenario([population(value_per="conversion", conversion_rate=c)],
                                                   rounds=4, bidders=n)), out=tmp_path / "run")
    auctions = int(run.market["auctions"].sum())
    per_auction = float(run.market["revenue"].sum()) / auctions
    se = c * math.sqrt(2 * (n - 1) / ((n + 1) ** 2 * (n + 2))) / math.sqrt(auctions)
    assert abs(per_auction - c * (n - 1) / (n + 1)) < Z * se, (per_auction, se)
    assert run.summary["market"]["efficiency"] == pytest.approx(1.0, abs=1e-12)


# ---- the conversions column ----

@pytest.mark.parametrize("mechanism", ["gsp", "second_price"])
def test_expected_conversions_are_clicks_or_wins_times_the_rate(mechanism, tmp_path):
    rate = 0.05
    raw = scenario([population(value_per="conversion", conversion_rate=rate), population("b")], mechanism,
                   auctions=5_000)
    run = bidscape.run(Scenario.from_dict(raw), out=tmp_path / "run")
    rows = run.populations.sort("round")
    a, b = rows.filter(pl.col("population") == "a"), rows.filter(pl.col("population") == "b")
    counted = a["clicks"] if mechanism == "gsp" else a["wins"]
    assert counted.sum() > 0
    np.testing.assert_array_equal(a["conversions"].to_numpy(), counted.to_numpy() * rate)
    assert b["conversions"].null_count() == len(b)  # b values no conversions
    summary = {p["population"]: p for p in run.summary["populations"]}
    assert summary["a"]["conversions"] == pytest.approx(float(a["conversions"].sum()), rel=1e-12)
    assert summary["a"]["cost_per_conversion"] == pytest.approx(summary["a"]["spend"] / summary["a"]["conversions"])
    assert summary["b"]["conversions"] is None and summary["b"]["cost_per_conversion"] is None


def test_without_conversion_values_there_is_no_conversions_column(tmp_path):
    run = bidscape.run(Scenario.from_dict(scenario([population()], auctions=1_000)), out=tmp_path / "run")
    assert "conversions" not in run.populations.columns
    assert "conversions" not in run.summary["populations"][0]


def test_the_run_prints_conversions(tmp_path, monkeypatch, capsys):
    file = tmp_path / "scenario.toml"
    file.write_text('[run]\nrounds = 2\nauctions_per_round = 1000\n[market]\nbidders_per_auction = 3\n'
                    '[[populations]]\nname = "a"\nsize = 10\nstrategy = "truthful"\n'
                    'values = { dist = "uniform", low = 0.0, high = 1.0 }\n'
                    'value_per = "conversion"\nconversion_rate = 0.1\n')
    monkeypatch.setattr("sys.argv", ["bidscape", "run", str(file), "--out", str(tmp_path / "out")])
    cli_main()
    printed = capsys.readouterr().out
    assert "conversions" in printed and "cost/conv" in printed


# ---- target_cpa on values per conversion ----

def test_target_cpa_meets_its_cost_per_conversion_in_a_position_auction():
    """200 target_cpa agents, value 1 per conversion and conversion rate 0.05 per click, so the
    value they win is their expected conversions; 800 truthful competitors with values per
    click U[0, 0.5]; VCG with 3 slots. Run spend <= cpa x conversions, within Z standard errors of
    the (agent, round) cells' x = conversions - spend / cpa (``test_autobidders.ratio_tolerance``);
    the textbook bid cpa x rate pays less per conversion and converts less."""
    rounds, cpa, rate = 40, 4.0, 0.05

    def play(strategy: dict):
        raw = scenario([{"name": "auto", "size": 200, "values": {"dist": "constant", "value": 1.0},
                         "value_per": "conversion", "conversion_rate": rate} | strategy,
                        population("others", 800, values={"dist": "uniform", "low": 0.0, "high": 0.5})],
                       "vcg", rounds=rounds, bidders=5, seed=3)
        simulation = Simulation(Scenario.from_dict(raw), threads=1)
        part = simulation.state.population_slice(0)
        spend, converted, clicks = [], [], []
        while not simulation.finished:
            simulation.step()
            spend.append(simulation.state.spend[part].copy())
            converted.append(simulation.state.value[part].copy())
            clicks.append(simulation.state.clicks[part].copy())
        return np.array(spend), np.array(converted), np.array(clicks)

    spend, converted, clicks = play({"strategy": "target_cpa", "params": {"cpa": cpa}})
    np.testing.assert_allclose(converted, clicks * rate, rtol=1e-12)  # value won = expected conversions
    x = (converted - spend / cpa).ravel()
    tolerance = Z * x.std() * math.sqrt(x.size) / (spend.sum() / cpa)
    assert tolerance < 0.01
    cost = spend.sum() / converted.sum()
    assert cost / cpa - 1 < tolerance, (cost, tolerance)  # the constraint holds
    assert cost / cpa - 1 > -tolerance, (cost, tolerance)  # and binds: no conversions left on the table
    textbook_spend, textbook_converted, _ = play({"strategy": "constant_shade", "params": {"multiplier": cpa}})
    assert textbook_spend.sum() / textbook_converted.sum() < 0.9 * cpa
    assert converted.sum() > 1.05 * textbook_converted.sum()

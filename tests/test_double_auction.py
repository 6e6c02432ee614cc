"""Market games (double auctions, Gode & Sunder 1993): kernels equal the reference,
ZI-C efficiency, individual rationality, determinism, the run-folder contract, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidscape.errors import InputError
from bidscape.games import GAMES, game_of, game_of_file, game_of_manifest
from bidscape.games.double_auction import GameScenario, competitive_equilibrium, run_game, simulate, summary
from bidscape.games.double_auction.call_market import call_round
from bidscape.games.double_auction.continuous import continuous_round
from bidscape.games.double_auction.reference import reference_call, reference_continuous

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "double_auction.toml"


def game(mechanism="continuous", buyers="zi_c", sellers=None, *, seed=1, rounds=10, count=20, units=3,
         steps=2000, calls=1, buyer_values=None, seller_costs=None, price_low=1.0, price_high=200.0):
    """The brief's market: 20 buyers (values U[50, 200]) and 20 sellers (costs U[1, 150]), 3 units each."""
    return GameScenario.from_dict({
        "run": {"name": "test", "seed": seed, "rounds": rounds},
        "market_game": {"mechanism": mechanism, "steps_per_round": steps, "calls_per_round": calls,
                        "price_low": price_low, "price_high": price_high},
        "traders": [
            {"name": "buyers", "side": "buy", "count": count, "units": units, "strategy": buyers,
             "values": buyer_values or {"dist": "uniform", "low": 50, "high": 200}},
            {"name": "sellers", "side": "sell", "count": count, "units": units, "strategy": sellers or buyers,
             "values": seller_costs or {"dist": "uniform", "low": 1, "high": 150}},
        ]})


# ---- kernels equal the plain-Python reference, exactly ----

@st.composite
def instances(draw):
    n = draw(st.integers(2, 8))
    side = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.int8)
    side[0], side[1] = 0, 1  # at least one buyer and one seller
    units = np.array(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)), np.int64)
    # few distinct numbers, so that prices and values tie often (truthful orders), plus free floats
    number = st.one_of(st.sampled_from([0.0, 5.0, 10.0, 20.0]), st.floats(0, 30, allow_nan=False))
    values = np.full((n, 3), np.nan)
    for i in range(n):
        row = sorted(draw(st.lists(number, min_size=int(units[i]), max_size=int(units[i]))), reverse=bool(side[i] == 0))
        values[i, :units[i]] = row
    low = draw(st.sampled_from([0.0, 1.0, 8.0]))
    return {
        "run_key": np.uint64(draw(st.integers(0, 2**64 - 1))),
        "round": draw(st.integers(0, 1000)),
        "side": side,
        "strategy": np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int8),
        "units": units,
        "values": values,
        "price_low": low,
        "price_high": low + draw(st.sampled_from([1.0, 12.0, 25.0])),
        "steps": draw(st.integers(0, 80)),
        "calls": draw(st.integers(1, 6)),
    }


def kernel_outputs(kernel, case, *extra):
    room = min(int(case["units"][case["side"] == 0].sum()), int(case["units"][case["side"] == 1].sum()))
    traded = np.full(case["side"].size, -7, np.int64)  # the kernel must reset it
    out = (np.empty(room, np.int64), np.empty(room), np.empty(room, np.int64), np.empty(room, np.int64),
           np.empty(room), np.empty(room))
    count = kernel(case["run_key"], case["round"], case["side"], case["strategy"], case["units"], case["values"],
                   case["price_low"], case["price_high"], *extra, traded, *out)
    trades = [(int(s), float(p), int(b), int(se), float(v), float(c))
              for s, p, b, se, v, c in zip(*(a[:count] for a in out))]
    return trades, traded.tolist()


def reference_args(case):
    return (int(case["run_key"]), case["round"], case["side"].tolist(), case["strategy"].tolist(),
            case["units"].tolist(), case["values"].tolist(), case["price_low"], case["price_high"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_continuous_kernel_equals_reference(case):
    expected = reference_continuous(*reference_args(case), case["steps"])
    assert kernel_outputs(continuous_round, case, case["steps"]) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_call_kernel_equals_reference(case):
    expected = reference_call(*reference_args(case), case["calls"])
    assert kernel_outputs(call_round, case, case["calls"]) == expected


def test_reference_comparison_sees_trades():
    """The random instances above are not vacuous: the brief's market trades in both mechanisms."""
    for mechanism in ("continuous", "call"):
        result = simulate(game(mechanism, rounds=2, count=4))
        assert result.trades.height > 0


# ---- economics ----

def efficiency_over_seeds(seeds=range(10), **kwargs):
    """Mean efficiency per seed (each over its periods) and the standard error across seeds.

    Seeds are independent runs (fresh values, fresh orders), so the standard error across
    seeds is honest even though periods within a run share their values."""
    per_seed = np.array([np.mean(simulate(game(seed=s, **kwargs)).efficiency) for s in seeds])
    return per_seed.mean(), per_seed.std(ddof=1) / math.sqrt(per_seed.size)


def test_zi_c_cda_is_highly_efficient_and_zi_u_is_not():
    # Gode & Sunder (1993) report 97-99% for ZI-C in the CDA and much less for ZI-U. We ask for
    # more than 90% at three standard errors (10 seeds x 10 periods; measured 0.980, se 0.001).
    zi_c, se_c = efficiency_over_seeds(mechanism="continuous", buyers="zi_c")
    assert zi_c - 3 * se_c > 0.90, (zi_c, se_c)
    # ZI-U traders trade extra-marginal units at a loss: clearly lower (measured 0.73, se 0.01)
    zi_u, se_u = efficiency_over_seeds(mechanism="continuous", buyers="zi_u")
    assert zi_u + 3 * se_u < 0.90, (zi_u, se_u)
    assert zi_u + 3 * se_u < zi_c - 3 * se_c - 0.1, (zi_u, se_u, zi_c, se_c)


def test_zi_c_call_market_with_repeated_calls_is_highly_efficient():
    # 20 calls per period: unmatched units come back with fresh ZI-C orders (measured 0.987, se 0.001)
    mean, se = efficiency_over_seeds(mechanism="call", buyers="zi_c", calls=20)
    assert mean - 3 * se > 0.90, (mean, se)
    # one call per period: ZI-C orders are shaded (bids below values, asks above costs), so a
    # single sealed call trades only part of the equilibrium quantity (measured 0.43, se 0.006)
    once, se_once = efficiency_over_seeds(mechanism="call", buyers="zi_c", calls=1)
    assert once + 3 * se_once < mean - 3 * se


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("values", ["uniform", "ties"])
def test_truthful_call_market_is_fully_efficient_at_the_equilibrium_price(seed, values):
    if values == "ties":  # constant values and costs tie across traders: the tie rule matters
        scenario = game("call", "truthful", seed=seed, rounds=3, count=5,
                        buyer_values=[[30, 20, 10]] * 5, seller_costs=[5, 20, 25])
    else:
        scenario = game("call", "truthful", seed=seed, rounds=3)
    result = simulate(scenario)
    eq = result.equilibrium
    assert eq.quantity > 0
    market = result.market
    assert market["efficiency"].to_list() == pytest.approx([1.0] * 3, rel=1e-12)
    assert market["trades"].to_list() == [eq.quantity] * 3
    assert (result.trades["price"] >= eq.price_low).all() and (result.trades["price"] <= eq.price_high).all()
    assert result.trades["price"].to_list() == pytest.approx([eq.price] * result.trades.height)


def test_competitive_equilibrium_by_hand():
    eq = competitive_equilibrium(np.array([10.0, 8.0, 6.0, 2.0]), np.array([1.0, 3.0, 7.0, 9.0]))
    # pairs (10,1) (8,3) trade; (6,7) does not: interval [max(3, 6), min(8, 7)] = [6, 7]
    assert (eq.quantity, eq.price_low, eq.price_high, eq.max_surplus) == (2, 6.0, 7.0, 14.0)
    assert math.isnan(competitive_equilibrium(np.array([1.0]), np.array([2.0])).price)


@pytest.mark.parametrize("mechanism", ["continuous", "call"])
def test_zi_c_never_trades_at_a_loss_and_volume_never_exceeds_units(mechanism):
    result = simulate(game(mechanism, "zi_c", rounds=10, calls=10))
    trades = result.trades
    assert trades.height > 0
    assert (trades["buyer_value"] >= trades["price"]).all()
    assert (trades["price"] >= trades["seller_cost"]).all()
    assert (result.agents["profit"] >= 0).all()
    assert (result.agents["units_traded"] <= 3).all()
    per_trader = pl.concat([trades.select("round", agent="buyer"), trades.select("round", agent="seller")])
    assert per_trader.group_by("round", "agent").len()["len"].max() <= 3
    assert (result.market["trades"] <= result.equilibrium.quantity + 60).all()
    assert (result.market["trades"] <= 60).all()  # 20 traders x 3 units on each side
    assert all(p["losing_trades"] == 0 for p in result.summary["populations"])
    # the agents table and the trades table agree
    assert result.agents["units_traded"].sum() == 2 * trades.height


def test_zi_u_does_trade_at_a_loss():
    """The individual-rationality check above can fail: unconstrained traders do lose."""
    trades = simulate(game("continuous", "zi_u", rounds=3)).trades
    assert ((trades["buyer_value"] < trades["price"]) | (trades["price"] < trades["seller_cost"])).any()


# ---- run folders ----

def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    scenario = game("continuous", rounds=4)
    first = run_game(scenario, tmp_path / "a")
    second = run_game(scenario, tmp_path / "b")
    other = run_game(scenario.with_updates({"run.seed": 2}), tmp_path / "c")
    for name in ("market.arrow", "trades.arrow", "agents.arrow"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        assert (first / name).read_bytes() != (other / name).read_bytes(), name


@pytest.mark.parametrize("mechanism", ["continuous", "call"])
def test_run_folder_contract(tmp_path, mechanism):
    scenario = game(mechanism, rounds=3, calls=5)
    out = run_game(scenario, tmp_path / "run")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["kind"] == "market_game"
    assert manifest["seed"] == 1
    assert manifest["scenario"] == scenario.to_dict()
    assert GameScenario.from_dict(manifest["scenario"]) == scenario  # the resolved scenario reloads
    assert manifest["finished"] and manifest["started"] and manifest["wall_seconds"] >= 0
    tables = {name: pl.read_ipc(out / f"{name}.arrow") for name in ("market", "trades", "agents")}
    assert {name: frame.height for name, frame in tables.items()} == manifest["rows"]
    assert tables["market"].height == 3 and tables["agents"].height == 3 * 40
    assert tables["market"].columns == [
        "round", "trades", "mean_price", "price_std", "first_price", "last_price", "surplus", "max_surplus",
        "efficiency", "equilibrium_price", "equilibrium_price_low", "equilibrium_price_high",
        "equilibrium_quantity"]
    assert tables["trades"].columns == ["round", "step", "price", "buyer", "seller", "buyer_value", "seller_cost"]
    assert tables["agents"].columns == ["round", "agent", "population", "side", "units_traded", "profit"]
    assert set(tables["agents"]["population"].cast(pl.String)) == {"buyers", "sellers"}
    # the files hold what the in-memory API returns
    memory = simulate(scenario)
    for name, frame in tables.items():
        assert frame.equals(getattr(memory, name)), name
    s = summary(out)
    assert s == manifest["summary"] == memory.summary
    assert s["market"]["trades"] == tables["trades"].height
    assert s["market"]["mean_efficiency"] == pytest.approx(tables["market"]["efficiency"].mean())


def test_failed_run_is_marked_failed(tmp_path):
    def explode(n):
        raise RuntimeError("boom in period")

    with pytest.raises(RuntimeError, match="boom"):
        run_game(game(rounds=3), tmp_path / "run", progress=explode)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"]["message"] == "boom in period"
    assert manifest["finished"] is not None
    with pytest.raises(InputError, match="not complete"):
        summary(tmp_path / "run")
    # a non-empty folder is only replaced with overwrite=True
    with pytest.raises(InputError, match="--overwrite"):
        run_game(game(rounds=1), tmp_path / "run")
    run_game(game(rounds=1), tmp_path / "run", overwrite=True)
    assert summary(tmp_path / "run")["market"]["rounds"] == 1


def test_example_scenario_runs(tmp_path):
    assert game_of_file(EXAMPLE) is GAMES.get("double_auction")
    scenario = GameScenario.from_toml(EXAMPLE, ["run.rounds=2"])
    assert scenario.run.rounds == 2
    out = run_game(scenario, tmp_path / "example")
    assert summary(out)["market"]["mean_efficiency"] > 0.8
    call = GameScenario.from_toml(EXAMPLE, ["market_game.mechanism=call", "market_game.calls_per_round=20",
                                            "run.rounds=2", "traders.buyers.count=5"])
    assert call.traders[0].count == 5 and simulate(call).trades.height > 0


# ---- bad input names the field and the fix ----

def valid_raw():
    return game().to_dict()


def problems_of(raw) -> list:
    with pytest.raises(InputError) as caught:
        GameScenario.from_dict(raw)
    return caught.value.problems


def test_unknown_key_gets_a_suggestion():
    raw = valid_raw()
    raw["market_game"]["mechansim"] = raw["market_game"].pop("mechanism")
    (problem,) = problems_of(raw)
    assert problem.path == "market_game.mechansim"
    assert "unknown key 'mechansim'" in problem.message
    assert "did you mean 'mechanism'?" in problem.fix
    raw = valid_raw()
    raw["traders"][1]["cuont"] = raw["traders"][1].pop("count")
    (problem,) = problems_of(raw)  # a misspelt required key is one mistake, not two
    assert problem.path == "traders[1].cuont" and "did you mean 'count'?" in problem.fix


def test_unknown_strategy_and_mechanism():
    raw = valid_raw()
    raw["traders"][0]["strategy"] = "zi-c"
    (problem,) = problems_of(raw)
    assert problem.path == "traders[0].strategy"
    assert "'zi-c'" in problem.message and "did you mean 'zi_c'?" in problem.fix and "truthful" in problem.fix
    raw = valid_raw()
    raw["market_game"]["mechanism"] = "cda"
    (problem,) = problems_of(raw)
    assert problem.path == "market_game.mechanism" and "'cda'" in problem.message
    assert "continuous" in problem.fix and "call" in problem.fix


@pytest.mark.parametrize("field,value", [("count", 0), ("units", -1), ("count", "5"), ("count", True)])
def test_bad_counts(field, value):
    raw = valid_raw()
    raw["traders"][1][field] = value
    (problem,) = problems_of(raw)
    assert problem.path == f"traders[1].{field}" and repr(value) in problem.message


def test_price_range_and_sides():
    raw = valid_raw()
    raw["market_game"]["price_low"] = 200.0
    (problem,) = problems_of(raw)
    assert problem.path == "market_game.price_high" and "200" in problem.message and "price_low" in problem.fix
    raw = valid_raw()
    raw["traders"][1]["side"] = "buy"
    raw["traders"][1]["name"] = "more buyers"
    (problem,) = problems_of(raw)
    assert problem.path == "traders" and 'side = "sell"' in problem.message + problem.fix
    raw = valid_raw()
    raw["traders"][1]["name"] = "buyers"
    (problem,) = problems_of(raw)
    assert problem.path == "traders[1].name" and "twice" in problem.message
    raw = valid_raw()
    raw["traders"] = raw["traders"][:1]
    assert problems_of(raw)[0].path == "traders"


def test_bad_values():
    raw = valid_raw()
    raw["traders"][0]["values"] = [100, 90]  # units = 3
    (problem,) = problems_of(raw)
    assert problem.path == "traders[0].values" and "units = 3" in problem.message
    raw["traders"][0]["values"] = [[100, 90, 80]] * 3  # count = 20
    (problem,) = problems_of(raw)
    assert problem.path == "traders[0].values" and "count = 20" in problem.message
    raw["traders"][0]["values"] = [100, "ninety", 80]
    (problem,) = problems_of(raw)
    assert problem.path == "traders[0].values" and "'ninety'" in problem.message
    raw["traders"][0]["values"] = {"dist": "uniform", "low": 50, "hihg": 200}
    problem = problems_of(raw)[0]
    assert problem.path == "traders[0].values.hihg" and "did you mean 'high'?" in problem.fix
    raw["traders"][0]["values"] = {"dist": "normal", "mean": 1}
    assert problems_of(raw)[0].path == "traders[0].values.dist"


def test_files_and_overrides(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        GameScenario.from_toml(tmp_path / "missing.toml")
    path = tmp_path / "game.toml"
    path.write_text(EXAMPLE.read_text())
    with pytest.raises(InputError) as caught:
        GameScenario.from_toml(path, ["market_game.steps_per_round=0"])
    assert caught.value.problems[0].path == "market_game.steps_per_round"
    assert str(path) in str(caught.value)
    path.write_text("[run\n")
    with pytest.raises(InputError, match="not valid TOML"):
        GameScenario.from_toml(path)
    assert game_of_file(path) is None


def test_the_registry_tells_games_from_auction_scenarios_and_runs(tmp_path, write_scenario):
    double_auction = GAMES.get("double_auction")
    assert game_of({"market_game": {}, "traders": []}) is double_auction
    assert game_of({"populations": []}) is None and game_of(None) is None
    assert game_of_file(write_scenario()) is None and game_of_file(tmp_path / "missing.toml") is None
    out = run_game(game(rounds=1), tmp_path / "run")
    manifest = json.loads((out / "manifest.json").read_text())
    assert game_of_manifest(manifest) is double_auction and game_of_manifest({"kind": "run"}) is None
    assert double_auction.output_files() == ("manifest.json", "market.arrow", "trades.arrow", "agents.arrow")

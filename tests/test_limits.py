"""Numbers and names a user can type (issue "Trust I", items 6, 16, 17, 18, 19).

- Names that become folders are single safe path components (run and sweep names).
- Money stays finite: inputs are bounded (``tests/test_scenario_errors.py``), and a round
  whose money is not finite stops the run there, naming the round and population.
- A run that cannot fit in memory is refused before it starts, with the estimate and the
  fix; ``--no-size-check`` / ``size_check=False`` tries anyway. The memory figure is injected
  (``bidscape.sizing.available_memory``), so nothing big is ever allocated here.
- What ``validate`` accepts runs: an agency next to a position auction it is not in.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import bidscape
from bidscape import InputError, Scenario, sizing
from bidscape.cli import main as cli_main
from bidscape.loop.finite import NonFiniteMoney
from bidscape.loop.simulation import Simulation, StrategyError
from bidscape.mechanisms import MECHANISMS
from bidscape.sweep import SweepSpec, load_sweep, run_sweep


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """``bidscape ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr("sys.argv", ["bidscape", *map(str, args)])
    try:
        cli_main()
        code = 0
    except SystemExit as exited:
        code = exited.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def play(scenario: Scenario) -> Simulation:
    simulation = Simulation(scenario)
    try:
        while not simulation.finished:
            simulation.step()
    finally:
        simulation.close()
    return simulation


# ---- money stays finite (item 16) ----

def test_a_round_whose_money_overflows_stops_naming_round_and_population(write_scenario):
    """Values the bounds do not see (set behind the scenario's back) overflow the round's revenue."""
    simulation = Simulation(Scenario.from_toml(write_scenario()))
    simulation.state.value_tables[1, :] = 1e308  # population "b": every bid 1e308, two of them overflow a sum
    with pytest.raises(NonFiniteMoney, match=r"round 0, channel 'main' \(welfare inf\): population 'b' "
                                             r"\(strategy 'adaptive_pacing'\) spent [0-9.]+ for a value of inf"):
        simulation.step()


def test_a_multiplier_above_the_bound_stops_the_round(write_scenario, monkeypatch):
    from bidscape.bidders.truthful import Truthful

    monkeypatch.setattr(Truthful, "decide", lambda self, r: self.agents.multiplier.fill(1e7))
    with pytest.raises(StrategyError, match=r"population 'a' set a bid multiplier of 10000000.0; "
                                            r"multipliers must be >= 0 and <= 1e\+06"):
        play(Scenario.from_toml(write_scenario()))


def test_summary_is_standard_json(write_scenario, tmp_path, monkeypatch):
    """A NaN in the summary (here a strategy's regret) is written as null, not as NaN."""
    from bidscape.bidders.truthful import Truthful

    monkeypatch.setattr(Truthful, "regret", lambda self: np.full(self.agents.size, np.nan))
    result = bidscape.run(Scenario.from_toml(write_scenario()), out=tmp_path / "out")
    text = (tmp_path / "out" / "manifest.json").read_text()

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    summary = json.loads(text, parse_constant=refuse)["summary"]
    assert summary["populations"][0]["mean_regret"] is None
    assert result.summary["market"]["revenue"] > 0


@pytest.mark.parametrize("mean, sigma, fits", [(0.0, 1.0, True), (20.0, 1.5, True), (30.0, 1.0, False),
                                               (0.0, 30.0, False), (-1000.0, 100.0, False), (34.0, 0.0, True)])
def test_lognormal_bound_is_about_what_it_draws(mean, sigma, fits):
    from bidscape.markets.distributions import LogNormal

    raw = {"dist": "lognormal", "mean": mean, "sigma": sigma}
    if not fits:
        with pytest.raises(ValueError, match="above 1e\\+15"):
            LogNormal.model_validate(raw)
        return
    dist = LogNormal.model_validate(raw)
    assert dist.quantile_table().max() <= 1e15
    assert np.isfinite(dist.sample(np.random.default_rng(0), 100_000)).all()
    assert math.exp(dist.log_largest()) <= 1e15


def test_numpy_numbers_from_python_are_numbers(write_scenario):
    scenario = Scenario.from_toml(write_scenario()).with_updates({"run.rounds": np.int64(2),
                                                                  "mechanism.reserve": np.float32(0.25)})
    assert scenario.run.rounds == 2 and scenario.mechanism.reserve == 0.25
    with pytest.raises(InputError, match=r"run\.rounds: input should be a valid integer \(got '2'\)"):
        scenario.with_updates({"run.rounds": "2"})


def test_numbers_written_as_integers_still_fill_float_fields(write_scenario, tiny_scenario_text):
    text = tiny_scenario_text.replace("reserve = 0.1", "reserve = 1").replace("step = 0.5", "step = 1")
    scenario = Scenario.from_toml(write_scenario(text))
    assert scenario.mechanism.reserve == 1.0 and scenario.populations[1].params["step"] == 1.0


# ---- names (item 6) ----

def test_sweep_name_must_be_a_folder_name(tmp_path, write_scenario):
    write_scenario()
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[sweep]\nname = ".."\nscenario = "scenario.toml"\nseeds = 1\n'
                     '[grid]\n"mechanism.reserve" = [0.1]\n')
    with pytest.raises(InputError, match=r"sweep\.name: cannot be a folder name \(it would leave the output folder\)"):
        load_sweep(sweep)
    with pytest.raises(InputError, match=r"sweep\.name: .*\(got '\.\./up'\)"):
        SweepSpec.from_scenario(tmp_path / "scenario.toml", {"a": {}}, [1], "../up")


def test_sweep_name_from_an_unsafe_file_name_is_made_safe(tmp_path, write_scenario):
    write_scenario()
    sweep = tmp_path / "my sweep (v2).toml"
    sweep.write_text('[sweep]\nscenario = "scenario.toml"\nseeds = 1\n[grid]\n"mechanism.reserve" = [0.1]\n')
    assert load_sweep(sweep).name == "my_sweep__v2_"


def test_a_grid_too_large_is_refused_before_its_points_are_listed(tmp_path, write_scenario):
    write_scenario()
    axes = "\n".join(f'"mechanism.x{i}" = [{", ".join(map(str, range(10)))}]' for i in range(8))  # 10^8 points
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'[sweep]\nscenario = "scenario.toml"\nseeds = 1\n[grid]\n{axes}\n')
    with pytest.raises(InputError, match=r"grid: 100,000,000 variant\(s\) x 1 seed\(s\) = 100,000,000 runs"):
        load_sweep(sweep)


def test_a_seed_count_too_large_is_refused(tmp_path, write_scenario):
    write_scenario()
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[sweep]\nscenario = "scenario.toml"\nseeds = 1_000_000_000_000\n'
                     '[grid]\n"mechanism.reserve" = [0.1]\n')
    with pytest.raises(InputError, match=r"sweep\.seeds: a seed count must be at most 100000"):
        load_sweep(sweep)


# ---- memory and time, estimated before a run starts (item 17) ----

@pytest.fixture
def little_memory(monkeypatch):
    """Pretend the machine has 100 MB free: the tiny scenario (a few MB) fits, 10^7 agents do not."""
    monkeypatch.setattr(sizing, "available_memory", lambda: 100 * 10**6)


def test_a_run_that_cannot_fit_is_refused_with_the_estimate_and_the_fix(write_scenario, tmp_path, little_memory,
                                                                       monkeypatch, capsys):
    file = write_scenario()
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, "run", file, "--out", out, "-q", "--set", "populations.a.size=10000000")
    assert code == 2, err
    (line,) = [line for line in err.splitlines() if line.strip()]
    assert line.startswith("error: ") and "populations[0].size: this run needs about" in line
    assert "10,000,020 agents" in line and "100.0 MB is available" in line
    assert "use fewer agents (at most about" in line and "--no-size-check" in line
    assert not out.exists(), "refused before the folder is made"
    code, _, err = run_cli(monkeypatch, capsys, "validate", file, "--set", "populations.a.size=10000000")
    assert code == 2 and "this run needs about" in err


def test_no_size_check_tries_anyway(write_scenario, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sizing, "available_memory", lambda: 1000)  # nothing fits
    file = write_scenario()
    code, _, err = run_cli(monkeypatch, capsys, "run", file, "--out", tmp_path / "out", "-q")
    assert code == 2 and "--no-size-check" in err
    code, out, err = run_cli(monkeypatch, capsys, "run", file, "--out", tmp_path / "out", "-q", "--no-size-check")
    assert code == 0, err
    assert bidscape.Run(tmp_path / "out").summary["market"]["auctions"] == 3000
    with pytest.raises(InputError, match="size_check=False"):
        bidscape.run(Scenario.from_toml(file), out=tmp_path / "api")
    assert not (tmp_path / "api").exists()
    assert bidscape.run(Scenario.from_toml(file), out=tmp_path / "api", size_check=False).path.is_dir()


def test_a_market_game_that_cannot_fit_is_refused(tmp_path, little_memory, monkeypatch, capsys):
    game = tmp_path / "game.toml"
    game.write_text('[market_game]\nmechanism = "call"\n'
                    '[[traders]]\nname = "buyers"\nside = "buy"\ncount = 10_000_000\nunits = 2\n'
                    'values = { dist = "uniform", low = 50.0, high = 200.0 }\n'
                    '[[traders]]\nname = "sellers"\nside = "sell"\ncount = 10\nvalues = [10.0]\n')
    code, _, err = run_cli(monkeypatch, capsys, "validate", game)
    assert code == 2
    assert "traders[0].count: this run needs about" in err and "use fewer traders (at most about" in err


def test_the_sample_of_auctions_counts_and_is_named(write_scenario, little_memory):
    scenario = Scenario.from_toml(write_scenario(), ["run.auctions_per_round=100000000", "run.auction_sample_rate=1"])
    with pytest.raises(InputError, match=r"run\.auction_sample_rate: this run needs about 12\.\d GB.*"
                                         r"sample fewer auctions"):
        sizing.check_fits(scenario)


def test_an_event_that_adds_auctions_counts(write_scenario, little_memory):
    """The largest phase of a run is what must fit, events included."""
    raw = Scenario.from_toml(write_scenario()).to_dict()
    raw["run"]["auction_sample_rate"] = 1.0
    raw["events"] = [{"at_round": 2, "set": {"run.auctions_per_round": 10_000_000}}]
    with pytest.raises(InputError, match=r"run\.auction_sample_rate: this run needs about 1\.\d GB"):
        sizing.check_fits(Scenario.from_dict(raw))


def test_a_sweep_that_fits_one_at_a_time_names_the_workers(write_scenario, tmp_path, monkeypatch):
    file = write_scenario()
    spec = SweepSpec.from_scenario(file, {"a": {}, "b": {"mechanism.reserve": 0.2}}, [1, 2], "s")
    one = sizing.estimate(spec.variants[0].scenario).bytes
    monkeypatch.setattr(sizing, "available_memory", lambda: int(one * 2.5))
    with pytest.raises(InputError, match=r"--workers: this sweep needs about .* \(4 runs at once x .*"
                                         r"run fewer at once \(--workers 2\)"):
        run_sweep(spec, tmp_path / "out", workers=4, progress=False)
    assert not (tmp_path / "out").exists()
    result = run_sweep(spec, tmp_path / "out", workers=1, progress=False)  # one at a time, in this process
    assert result.complete == 4


def test_a_long_run_says_so_before_it_starts(write_scenario, tmp_path, monkeypatch, capsys):
    big = Scenario.from_toml(write_scenario(), ["run.rounds=1000", "run.auctions_per_round=1000000000"])
    note = sizing.long_run_note(sizing.estimate(big))
    assert note is not None and "this run will take about" in note and "days" in note
    assert sizing.long_run_note(sizing.estimate(Scenario.from_toml(write_scenario()))) is None
    monkeypatch.setattr(sizing, "LONG_RUN_SECONDS", 0)  # the tiny run counts as long: the CLI says so
    code, out, err = run_cli(monkeypatch, capsys, "run", write_scenario(), "--out", tmp_path / "out", "-q")
    assert code == 0, err
    assert "note: this run will take about" in out


def test_a_long_sweep_says_so_with_its_workers(write_scenario):
    file = write_scenario()
    spec = SweepSpec.from_scenario(file, {"a": {}, "b": {"run.rounds": 2_000_000}}, [1, 2, 3, 4], "s")
    one, four = sizing.sweep_estimate(spec, workers=1), sizing.sweep_estimate(spec, workers=4)
    assert one.seconds == pytest.approx(4 * sum(sizing.estimate(v.scenario).seconds for v in spec.variants))
    assert four.seconds == pytest.approx(one.seconds / 4)
    assert sizing.long_run_note(four, "this sweep").startswith("this sweep will take about")
    short = SweepSpec.from_scenario(file, {"a": {}}, [1, 2], "s")
    assert sizing.long_run_note(sizing.sweep_estimate(short, workers=1), "this sweep") is None


def test_the_estimate_grows_with_what_the_run_keeps(write_scenario):
    base = Scenario.from_toml(write_scenario(), ["run.record_agents=none"])
    learners = base.with_updates({"populations.a.strategy": "exp3", "populations.a.params": {"arms": 50}})
    recorded = base.with_updates({"run.record_agents": "agent"})
    size = {name: sizing.estimate(s).parts["populations[0].size"] for name, s in
            (("base", base), ("learners", learners), ("recorded", recorded))}
    assert size["learners"] - size["base"] == 40 * 64 * 50  # 64 bytes per arm and agent
    assert size["recorded"] > size["base"]


# ---- what validate accepts must run (item 19) ----

def agency_next_to(mechanism: str, bidders) -> dict:
    """An agency in a second-price channel; a channel running ``mechanism`` that it is not in."""
    population = {"size": 20, "values": {"dist": "uniform", "low": 0.0, "high": 1.0}}
    return {
        "run": {"rounds": 2, "auctions_per_round": 300, "record_agents": "none"},
        "mechanism": {"slot_ctrs": [0.3, 0.2]},
        "populations": [{"name": "clients", "strategy": "agency", **population},
                        {"name": "others", "strategy": "truthful", **population}],
        "channels": [{"name": "open", "populations": ["clients", "others"], "bidders_per_auction": 4},
                     {"name": "search", "populations": ["others"], "bidders_per_auction": bidders,
                      "mechanism": {"type": mechanism}}],
    }


@pytest.mark.parametrize("bidders", [4, "all"])
@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_an_agency_runs_next_to_any_channel_it_is_not_in(mechanism, bidders):
    scenario = Scenario.from_dict(agency_next_to(mechanism, bidders))  # validates
    simulation = play(scenario)
    assert simulation.round == 2


def test_an_agency_inside_a_position_auction_is_refused_by_validate():
    raw = agency_next_to("gsp", 4)
    raw["channels"][1]["populations"] = ["clients", "others"]
    with pytest.raises(InputError, match=r"populations\[0\]\.strategy: agencies coordinate single-item auctions"):
        Scenario.from_dict(raw)

"""Bad input (DESIGN.md section 3): one message naming the field, the bad value and the fix; exit 2.

Every case in ``BAD_INPUT`` is checked by ``Scenario.from_toml`` (an ``InputError`` with
exactly one problem, at the expected field path) and by the command line's ``main()`` in
this process (``bidscape run``: exit code 2, that one message on stderr, no output folder).
One case of each kind (``REPRESENTATIVE``) also goes through a real ``python -m bidscape.cli``
subprocess; doing all of them that way costs ~0.4 s of interpreter start-up each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bidscape import InputError, Scenario
from bidscape.cli import main as cli_main


def case(name, path, expect, replace=(), append="", sets=()):
    """``replace``: (old, new) edits of the tiny scenario; ``append``: TOML added at its end;
    ``sets``: ``--set`` overrides; ``path``: the field path the one problem must name;
    ``expect``: substrings of the message (the path, the bad value, the fix)."""
    return pytest.param(tuple(replace), append, tuple(sets), path, tuple(expect), id=name)


def event(at_round, table):
    return f"\n[[events]]\nat_round = {at_round}\nset = {table}\n"


BAD_INPUT = [
    # ---- unknown keys ----
    case("unknown-key", "run.roundz", ["run.roundz", "unknown key 'roundz'", "did you mean 'rounds'"],
         replace=[("rounds = 3", "roundz = 3")]),
    case("unknown-section", "markett", ["markett", "unknown key 'markett'", "did you mean 'market'"],
         replace=[("[market]", "[markett]")]),
    case("misspelt-required-key", "populations[0].sise",
         ["populations[0].sise", "unknown key 'sise'", "did you mean 'size'"],
         replace=[("size = 40", "sise = 40")]),
    case("unknown-distribution-key", "populations[0].values.hihg",
         ["populations[0].values.hihg", "did you mean 'high'", "allowed keys here: dist, high, low"],
         replace=[("high = 1.0 }", "hihg = 1.0 }")]),
    case("unknown-strategy-param", "populations[1].params.stepp",
         ["populations[1].params.stepp", "unknown key 'stepp'", "did you mean 'step'"],
         replace=[("params = { step = 0.5 }", "params = { stepp = 0.5 }")]),
    case("param-of-a-strategy-without-params", "populations[0].params.step",
         ["populations[0].params.step", "unknown key 'step'", "this table takes no keys"],
         replace=[('strategy = "truthful"', 'strategy = "truthful"\nparams = { step = 0.5 }')]),
    # ---- wrong types ----
    case("rounds-is-a-word", "run.rounds", ["run.rounds", "'three'", "write an integer"],
         replace=[("rounds = 3", 'rounds = "three"')]),
    case("rounds-is-fractional", "run.rounds", ["run.rounds", "2.5", "write an integer"],
         replace=[("rounds = 3", "rounds = 2.5")]),
    case("size-is-a-bool", "populations[0].size", ["populations[0].size", "True", "write an integer"],
         replace=[("size = 40", "size = true")]),
    case("size-is-a-quoted-number", "populations[0].size", ["populations[0].size", "'40'", "write an integer"],
         replace=[("size = 40", 'size = "40"')]),
    case("reserve-is-a-word", "mechanism.reserve", ["mechanism.reserve", "'low'", "write a number"],
         replace=[("reserve = 0.1", 'reserve = "low"')]),
    case("reserve-is-a-bool", "mechanism.reserve", ["mechanism.reserve", "True", "write a number"],
         replace=[("reserve = 0.1", "reserve = true")]),
    case("name-is-a-number", "populations[0].name", ["populations[0].name", "7", "write a quoted string"],
         replace=[('name = "a"', "name = 7")]),
    case("values-is-not-a-table", "populations[0].values", ["populations[0].values", "1.0", "write a table"],
         replace=[('values = { dist = "uniform", low = 0.0, high = 1.0 }', "values = 1.0")]),
    case("record-agents-not-an-option", "run.record_agents",
         ["run.record_agents", "'agents'", "did you mean 'agent'", "'population'"],
         replace=[('record_agents = "agent"', 'record_agents = "agents"')]),
    # ---- negative (or zero) sizes and budgets, out-of-range numbers ----
    case("size-negative", "populations[0].size", ["populations[0].size", "-5", "use a value >= 1"],
         replace=[("size = 40", "size = -5")]),
    case("size-zero", "populations[1].size", ["populations[1].size", "(got 0)", "use a value >= 1"],
         replace=[("size = 20", "size = 0")]),
    case("auctions-negative", "run.auctions_per_round", ["run.auctions_per_round", "-1000", "use a value >= 1"],
         replace=[("auctions_per_round = 1000", "auctions_per_round = -1000")]),
    case("budget-negative", "populations[1].budget.low", ["populations[1].budget.low", "-5.0", "use a value >= 0"],
         replace=[("low = 5.0", "low = -5.0")]),
    case("budget-constant-negative", "populations[1].budget.value",
         ["populations[1].budget.value", "-1.0", "use a value >= 0"],
         replace=[('budget = { dist = "uniform", low = 5.0, high = 10.0 }',
                   'budget = { dist = "constant", value = -1.0 }')]),
    case("budget-high-below-low", "populations[1].budget", ["populations[1].budget", "high (1.0)", "swap them"],
         replace=[("high = 10.0", "high = 1.0")]),
    case("budget-infinite", "populations[1].budget.high", ["populations[1].budget.high", "inf", "finite number"],
         replace=[("high = 10.0", "high = inf")]),
    case("values-nan", "populations[1].values.mean", ["populations[1].values.mean", "nan", "finite number"],
         replace=[("mean = -0.5", "mean = nan")]),
    case("reserve-negative", "mechanism.reserve", ["mechanism.reserve", "-0.1", "use a value >= 0"],
         replace=[("reserve = 0.1", "reserve = -0.1")]),
    case("seed-negative", "run.seed", ["run.seed", "-3", "use a value >= 0"],
         replace=[("seed = 3", "seed = -3")]),
    case("sample-rate-above-one", "run.auction_sample_rate", ["run.auction_sample_rate", "1.5", "use a value <= 1"],
         replace=[("auction_sample_rate = 0.05", "auction_sample_rate = 1.5")]),
    case("no-populations", "populations", ["populations", "add at least one item"], sets=["populations=[]"]),
    # ---- bidders per auction ----
    case("more-bidders-than-agents", "market.bidders_per_auction",
         ["market.bidders_per_auction", "61 bidders per auction but only 60 agents", 'use at most 60, or "all"'],
         replace=[("bidders_per_auction = 4", "bidders_per_auction = 61")]),
    case("zero-bidders", "market.bidders_per_auction",
         ["market.bidders_per_auction", "(got 0)", 'use e.g. 8, or "all"'],
         replace=[("bidders_per_auction = 4", "bidders_per_auction = 0")]),
    case("bidders-a-word", "market.bidders_per_auction", ["market.bidders_per_auction", "'some'", '"all"'],
         replace=[("bidders_per_auction = 4", 'bidders_per_auction = "some"')]),
    # ---- unknown names ----
    case("unknown-mechanism", "mechanism.type",
         ["mechanism.type", "unknown mechanism 'second_prize'", "did you mean 'second_price'",
          "first_price, gsp, second_price", "bidscape list mechanisms"],
         replace=[('type = "second_price"', 'type = "second_prize"')]),
    case("unknown-strategy", "populations[0].strategy",
         ["populations[0].strategy", "unknown strategy 'truthfull'", "did you mean 'truthful'",
          "bidscape list strategies"],
         replace=[('strategy = "truthful"', 'strategy = "truthfull"')]),
    case("unknown-strategy-far-from-any", "populations[0].strategy",
         ["populations[0].strategy", "unknown strategy 'zzz'", "use one of: adaptive_pacing, ", "truthful"],
         replace=[('strategy = "truthful"', 'strategy = "zzz"')]),
    case("strategy-name-looks-like-markup", "populations[0].strategy",
         ["populations[0].strategy", "unknown strategy '[/b]'", "use one of"],
         replace=[('strategy = "truthful"', 'strategy = "[/b]"')]),
    case("unknown-distribution", "populations[1].values.dist",
         ["populations[1].values.dist", "unknown distribution 'lognormall'", "did you mean 'lognormal'"],
         replace=[('dist = "lognormal"', 'dist = "lognormall"')]),
    # ---- other semantic checks ----
    case("budgeted-strategy-without-budget", "populations[1].budget",
         ["populations[1].budget", "'adaptive_pacing' needs a budget", "add e.g. budget ="],
         replace=[('budget = { dist = "uniform", low = 5.0, high = 10.0 }\n', "")]),
    case("duplicate-population-name", "populations[1].name",
         ["populations[1].name", "'a' is used twice", "give each population its own name"],
         replace=[('name = "b"', 'name = "a"')]),
    # ---- --set overrides ----
    case("set-unknown-key", "run.roundz", ["run.roundz", "did you mean 'rounds'"], sets=["run.roundz=5"]),
    case("set-negative-size", "populations[1].size", ["populations[1].size", "-1", "use a value >= 1"],
         sets=["populations.b.size=-1"]),
    case("set-wrong-type", "run.rounds", ["run.rounds", "'ten'", "write an integer"], sets=["run.rounds=ten"]),
    case("set-unknown-strategy", "populations[0].strategy", ["populations[0].strategy", "did you mean 'truthful'"],
         sets=["populations.a.strategy=truthfull"]),
    case("set-unknown-population", "populations.c", ["populations.c", "no item 'c'", "a, b"],
         sets=["populations.c.size=5"]),
    case("set-without-value", "--set", ["--set", "'run.rounds'", "key.path=value"], sets=["run.rounds"]),
    case("set-into-a-value", "mechanism.type.x", ["mechanism.type.x", "is a value, not a table"],
         sets=["mechanism.type.x=1"]),
    # ---- scheduled events ----
    case("event-negative-reserve", "events[0] (at round 1): mechanism.reserve",
         ["events[0]", "mechanism.reserve", "-0.5", "use a value >= 0"],
         append=event(1, '{ "mechanism.reserve" = -0.5 }')),
    case("event-wrong-type", "events[0] (at round 1): mechanism.reserve",
         ["events[0]", "mechanism.reserve", "'high'", "write a number"],
         append=event(1, '{ "mechanism.reserve" = "high" }')),
    case("event-unknown-mechanism", "events[0] (at round 2): mechanism.type",
         ["events[0]", "unknown mechanism 'first_prize'", "did you mean 'first_price'"],
         append=event(2, '{ "mechanism.type" = "first_prize" }')),
    case("event-unknown-path", "events[0] (at round 1): mechanism.reserv",
         ["events[0]", "mechanism.reserv", "did you mean 'reserve'"],
         append=event(1, '{ "mechanism.reserv" = 0.5 }')),
    case("event-path-fixed-during-run", 'events[0].set."run.rounds"',
         ['events[0].set."run.rounds"', "cannot change during a run", "mechanism.*"],
         append=event(1, '{ "run.rounds" = 5 }')),
    case("event-unknown-population", 'events[0].set."populations.c.params.step"',
         ["events[0]", "no item 'c'"], append=event(1, '{ "populations.c.params.step" = 0.1 }')),
    case("event-too-many-bidders", "events[0] (at round 1): market.bidders_per_auction",
         ["events[0]", "market.bidders_per_auction", "only 60 agents"],
         append=event(1, '{ "market.bidders_per_auction" = 100 }')),
    case("event-after-the-last-round", "events[0].at_round",
         ["events[0].at_round", "round 3 never comes", "use a round below 3"],
         append=event(3, '{ "mechanism.reserve" = 0.5 }')),
    case("event-misspelt-set", "events[0].sett", ["events[0].sett", "did you mean 'set'"],
         append='\n[[events]]\nat_round = 1\nsett = { "mechanism.reserve" = 0.5 }\n'),
    case("second-event-bad", "events[1] (at round 2): mechanism.reserve", ["events[1]", "mechanism.reserve"],
         append=event(1, '{ "mechanism.reserve" = 0.5 }') + event(2, '{ "mechanism.reserve" = -1.0 }')),
    case("event-changes-a-learners-grid", "events[0] (at round 1): populations[0].params",
         ["events[0] (at round 1): populations[0].params", "'exp3'", "cannot change during a run"],
         replace=[('strategy = "truthful"', 'strategy = "exp3"\nparams = { arms = 4 }')],
         append=event(1, '{ "populations.a.params.arms" = 5 }')),
    # ---- names that become folder names (issue item 6) ----
    case("run-name-climbs-out", "run.name", ["run.name", "'../../x'", "leave the output folder", "letters, digits"],
         sets=["run.name=../../x"]),
    case("run-name-absolute", "run.name", ["run.name", "'/tmp/x'", "leave the output folder"],
         replace=[('name = "tiny"', 'name = "/tmp/x"')]),
    case("run-name-dot-dot", "run.name", ["run.name", "'..'", "leave the output folder"], sets=['run.name=".."']),
    case("run-name-300-characters", "run.name", ["run.name", "300 characters", "at most 100"],
         sets=["run.name=" + "n" * 300]),
    # ---- strict types (issue item 18) ----
    case("experimental-is-a-word", "run.experimental", ["run.experimental", "'yes'", "true or false"],
         replace=[("rounds = 3", 'rounds = 3\nexperimental = "yes"')]),
    case("param-is-a-quoted-number", "populations[1].params.step",
         ["populations[1].params.step", "'0.5'", "write a number"],
         replace=[("params = { step = 0.5 }", 'params = { step = "0.5" }')]),
    case("param-bool-is-a-word", "populations[1].params.replan",
         ["populations[1].params.replan", "'yes'", "true or false"],
         replace=[("params = { step = 0.5 }", 'params = { step = 0.5, replan = "yes" }')]),
    case("slot-ctrs-of-booleans", "mechanism.slot_ctrs[0]", ["mechanism.slot_ctrs[0]", "True", "write a number"],
         replace=[("reserve = 0.1", "reserve = 0.1\nslot_ctrs = [true]")]),
    case("size-written-as-a-float", "populations[0].size", ["populations[0].size", "10000000000.0", "write an integer"],
         replace=[("size = 40", "size = 1e10")]),
    # ---- numbers so large that money or counts would overflow (issue items 16, 17) ----
    case("multiplier-overflows", "populations[0].params.multiplier",
         ["populations[0].params.multiplier", "1.7e+308", "must be at most 1e+06", "overflow"],
         replace=[('strategy = "truthful"', 'strategy = "constant_shade"\nparams = { multiplier = 1.7e308 }')]),
    case("lognormal-values-overflow", "populations[1].values",
         ["populations[1].values", "lognormal(mean = 1000, sigma = 0.4)", "above 1e+15", "use mean <="],
         replace=[("mean = -0.5", "mean = 1000.0")]),
    case("lognormal-value-scale-overflows", "populations[0].value_scale",
         ["populations[0].value_scale", "lognormal(mean = 1000", "use mean <="],
         replace=[('values = { dist = "uniform", low = 0.0, high = 1.0 }',
                   'values = { dist = "uniform", low = 0.0, high = 1.0 }\n'
                   'value_scale = { dist = "lognormal", mean = 1000.0, sigma = 1.0 }')]),
    case("budget-too-large", "populations[1].budget.high", ["populations[1].budget.high", "1e+16", "<= 1e+15"],
         replace=[("high = 10.0", "high = 1e16")]),
    case("reserve-too-large", "mechanism.reserve", ["mechanism.reserve", "1e+300", "<= 1e+15"],
         replace=[("reserve = 0.1", "reserve = 1e300")]),
    case("rounds-too-many", "run.rounds", ["run.rounds", "1000000000000", "at most 2147483647"],
         replace=[("rounds = 3", "rounds = 1_000_000_000_000")]),
    case("size-two-to-the-63", "populations[0].size", ["populations[0].size", "9223372036854775807", "at most"],
         replace=[("size = 40", "size = 9223372036854775807")]),
    case("auctions-too-many", "run.auctions_per_round", ["run.auctions_per_round", "1000000000000000", "at most"],
         replace=[("auctions_per_round = 1000", "auctions_per_round = 1_000_000_000_000_000")]),
]


def scenario_text(base: str, replace, append: str) -> str:
    text = base
    for old, new in replace:
        assert text.count(old) == 1, f"the edit {old!r} must match the tiny scenario exactly once"
        text = text.replace(old, new)
    return text + append


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def complete_manifests(root: Path) -> list[Path]:
    return [m for m in root.rglob("manifest.json") if json.loads(m.read_text()).get("status") == "complete"]


@pytest.mark.parametrize("replace, append, sets, path, expect", BAD_INPUT)
def test_bad_input_is_one_problem_at_the_field(replace, append, sets, path, expect, write_scenario,
                                               tiny_scenario_text):
    file = write_scenario(scenario_text(tiny_scenario_text, replace, append))
    with pytest.raises(InputError) as raised:
        Scenario.from_toml(file, list(sets))
    problems = raised.value.problems
    assert [p.path for p in problems] == [path], raised.value.render()
    assert problems[0].fix, f"no fix offered: {raised.value.render()}"
    for text in expect:
        assert text in raised.value.render()


def run_args(file: Path, out: Path, sets) -> list[str]:
    return ["run", str(file), "--out", str(out), "-q", *[arg for s in sets for arg in ("--set", s)]]


def assert_one_message(stderr: str, expect) -> None:
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for text in expect:
        assert text in lines[0]


@pytest.mark.parametrize("replace, append, sets, path, expect", BAD_INPUT)
def test_bad_input_exits_2_with_one_message(replace, append, sets, path, expect, write_scenario,
                                            tiny_scenario_text, tmp_path, monkeypatch, capsys):
    file = write_scenario(scenario_text(tiny_scenario_text, replace, append))
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["bidscape", *run_args(file, out, sets)])
    with pytest.raises(SystemExit) as exited:
        cli_main()
    assert exited.value.code == 2
    assert_one_message(capsys.readouterr().err, expect)
    assert not out.exists(), "invalid input must not create the output folder"


REPRESENTATIVE = ["unknown-key", "size-is-a-bool", "size-negative", "budget-negative", "more-bidders-than-agents",
                  "unknown-mechanism", "unknown-strategy", "set-unknown-key", "event-unknown-mechanism"]


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_bad_input_through_the_console_script(name, write_scenario, tiny_scenario_text, bidscape_cli, tmp_path):
    replace, append, sets, path, expect = next(c.values for c in BAD_INPUT if c.id == name)
    file = write_scenario(scenario_text(tiny_scenario_text, replace, append))
    out = tmp_path / "out"
    result = bidscape_cli(*run_args(file, out, sets))
    assert result.returncode == 2, result.stderr
    assert_one_message(result.stderr, expect)
    assert not out.exists()


@pytest.mark.parametrize("name", ["unknown-key", "size-negative", "unknown-mechanism", "event-negative-reserve",
                                  "set-unknown-population"])
def test_validate_reports_the_same_problem(name, write_scenario, tiny_scenario_text, bidscape_cli):
    replace, append, sets, path, expect = next(c.values for c in BAD_INPUT if c.id == name)
    file = write_scenario(scenario_text(tiny_scenario_text, replace, append))
    result = bidscape_cli("validate", file, *[arg for s in sets for arg in ("--set", s)])
    assert result.returncode == 2, result.stderr
    assert len(error_lines(result.stderr)) == 1
    assert all(text in result.stderr for text in expect), result.stderr
    assert "ok" not in result.stdout


def test_missing_scenario_file(bidscape_cli, tmp_path):
    result = bidscape_cli("run", tmp_path / "nope.toml", "--out", tmp_path / "out")
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert "nope.toml" in line and "does not exist" in line and "check the path" in line
    assert not (tmp_path / "out").exists()


def test_toml_syntax_error_names_file_and_line(write_scenario, tiny_scenario_text, bidscape_cli, tmp_path):
    broken = tiny_scenario_text.replace("[market]", "[market")
    line_number = tiny_scenario_text.splitlines().index("[market]") + 1
    file = write_scenario(broken, name="broken.toml")
    for command in (["validate", file], ["run", file, "--out", tmp_path / "out"]):
        result = bidscape_cli(*command)
        assert result.returncode == 2, result.stderr
        (line,) = error_lines(result.stderr)
        assert "broken.toml" in line and "not valid TOML" in line and f"line {line_number}" in line
        assert "Fix:" in line
    assert not (tmp_path / "out").exists()


def _unwritable_out(tmp_path: Path, kind: str) -> tuple[Path, str]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    if kind == "inside-a-file":
        return blocker / "run", "cannot write to"
    if kind == "is-a-file":
        return blocker, "exists and is not a folder"
    return Path("/proc/bidscape-test-no-such-dir/run"), "cannot write to"


@pytest.mark.parametrize("kind", ["inside-a-file", "is-a-file", "under-proc"])
def test_unwritable_output_folder(kind, write_scenario, bidscape_cli, tmp_path):
    out, message = _unwritable_out(tmp_path, kind)
    result = bidscape_cli("run", write_scenario(), "--out", out, "-q")
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: ") and "--out" in line and message in line and "Fix:" in line
    assert (tmp_path / "a-file").read_text() == "not a folder"
    assert out.is_file() if kind == "is-a-file" else not out.exists()
    assert complete_manifests(tmp_path) == []


def test_bad_option_value_is_a_usage_error_not_a_traceback(write_scenario, bidscape_cli, tmp_path):
    result = bidscape_cli("run", write_scenario(), "--out", tmp_path / "out", "--seed", "abc")
    assert result.returncode == 2
    assert "--seed" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_valid_override_can_fix_a_bad_file(write_scenario, tiny_scenario_text, bidscape_cli):
    """--set is applied before validation, so it can repair a field (and names the field if not)."""
    file = write_scenario(tiny_scenario_text.replace("size = 40", "size = -5"))
    assert bidscape_cli("validate", file).returncode == 2
    fixed = bidscape_cli("validate", file, "--set", "populations.a.size=40")
    assert fixed.returncode == 0, fixed.stderr
    assert "60 agents" in fixed.stdout

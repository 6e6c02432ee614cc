"""benchmarks/interleaved.py, the A/B harness speed claims use: its cases are valid scenarios, a worker
times one with the bidscape it imports, and bad options are refused with the fix."""

import importlib.util
import json
from pathlib import Path

import pytest

from bidscape import Scenario

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("interleaved", ROOT / "benchmarks" / "interleaved.py")
interleaved = importlib.util.module_from_spec(spec)
spec.loader.exec_module(interleaved)


def test_every_case_is_a_valid_scenario_and_modifiers_switches_them_on():
    for case in interleaved.CASES:
        scenario = Scenario.from_dict(interleaved.scenario(case, 100, 1_000, 4, 2))
        assert scenario.run.auctions_per_round == 1_000
    modifiers = Scenario.from_dict(interleaved.scenario("modifiers", 100, 1_000, 4, 2))
    assert [p.strategy for p in modifiers.populations] == ["truthful", "throttling"]
    assert modifiers.populations[0].reserve is not None and sum(p.size for p in modifiers.populations) == 100


def test_a_worker_times_a_round_with_the_bidscape_it_imports(capsys):
    interleaved.main(["--worker", "second_price", "--agents", "200", "--auctions", "1000", "--repeats", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ms"] > 0 and Path(result["bidscape"]) == ROOT


@pytest.mark.parametrize("argv, message", [
    ([], "--baseline is required"),
    (["--baseline", "/"], "no bidscape/ package there"),
    (["--baseline", str(ROOT), "--runs", "0"], "must be at least 1"),
])
def test_bad_options_are_refused_with_the_fix(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        interleaved.parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err

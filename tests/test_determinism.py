"""Same scenario and seed: byte-identical Arrow files, whatever the threads or batch size."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bidscape
from bidscape import Scenario
from bidscape.loop import simulation

ARROW_FILES = ("market.arrow", "agents.arrow", "auctions.arrow")

SCENARIO = """
[run]
name = "determinism"
seed = 42
rounds = 4
auctions_per_round = 30000
record_agents = "agent"
auction_sample_rate = 0.01

[mechanism]
type = "second_price"
reserve = 0.2

[market]
bidders_per_auction = 6

[[populations]]
name = "paced"
size = 700
strategy = "adaptive_pacing"
values = { dist = "lognormal", mean = 0.0, sigma = 0.6 }
value_scale = { dist = "uniform", low = 0.5, high = 1.5 }
budget = { dist = "uniform", low = 20.0, high = 60.0 }

[[populations]]
name = "shaders"
size = 300
strategy = "constant_shade"
values = { dist = "uniform", low = 0.0, high = 2.0 }
params = { multiplier = 0.8 }

[[events]]
at_round = 2
set = { "mechanism.type" = "first_price" }
"""


def arrow_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ARROW_FILES}


@pytest.fixture
def scenario_file(tmp_path) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    return path


def test_same_seed_same_bytes_and_other_seed_other_bytes(scenario_file, tmp_path):
    first = bidscape.run(Scenario.from_toml(scenario_file), out=tmp_path / "a")
    again = bidscape.run(Scenario.from_toml(scenario_file), out=tmp_path / "b")
    other = bidscape.run(Scenario.from_toml(scenario_file), out=tmp_path / "c", seed=43)
    assert arrow_bytes(first.path) == arrow_bytes(again.path)
    assert arrow_bytes(first.path)["agents.arrow"] != arrow_bytes(other.path)["agents.arrow"]


def test_batch_size_does_not_change_results(scenario_file, tmp_path, monkeypatch):
    reference = bidscape.run(Scenario.from_toml(scenario_file), out=tmp_path / "a")
    monkeypatch.setattr(simulation, "BATCH_AUCTIONS", 7_001)  # several uneven batches per round
    batched = bidscape.run(Scenario.from_toml(scenario_file), out=tmp_path / "b")
    assert arrow_bytes(reference.path) == arrow_bytes(batched.path)


def test_thread_count_does_not_change_results(scenario_file, tmp_path):
    outputs = []
    for threads in ("1", "2"):
        out = tmp_path / f"threads-{threads}"
        environment = {**os.environ, "NUMBA_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-m", "bidscape.cli", "run", str(scenario_file), "--out", str(out), "-q"],
                       check=True, env=environment, capture_output=True)
        outputs.append(arrow_bytes(out))
    assert outputs[0] == outputs[1]

"""Shared fixtures: a tiny valid scenario file, the real command line in a subprocess, the dashboard under AppTest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# 60 agents in two populations (one paced with budgets), 3 rounds x 1,000 auctions: runs in
# well under a second once numba's cache is warm.
TINY_SCENARIO = """\
[run]
name = "tiny"
seed = 3
rounds = 3
auctions_per_round = 1000
record_agents = "agent"
auction_sample_rate = 0.05

[mechanism]
type = "second_price"
reserve = 0.1

[market]
bidders_per_auction = 4

[[populations]]
name = "a"
size = 40
strategy = "truthful"
values = { dist = "uniform", low = 0.0, high = 1.0 }

[[populations]]
name = "b"
size = 20
strategy = "adaptive_pacing"
values = { dist = "lognormal", mean = -0.5, sigma = 0.4 }
budget = { dist = "uniform", low = 5.0, high = 10.0 }
params = { step = 0.5 }
"""


@pytest.fixture(scope="session")
def tiny_scenario_text() -> str:
    return TINY_SCENARIO


@pytest.fixture
def write_scenario(tmp_path):
    """``write_scenario(text=TINY_SCENARIO, name="scenario.toml") -> Path`` in ``tmp_path``."""

    def write(text: str = TINY_SCENARIO, name: str = "scenario.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def bidscape_cli(tmp_path):
    """``bidscape_cli(*args) -> CompletedProcess``: ``python -m bidscape.cli ARGS`` run in ``tmp_path``."""

    def invoke(*args, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
        return subprocess.run([sys.executable, "-m", "bidscape.cli", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout, env=env)

    return invoke


@pytest.fixture
def fail_in_round(monkeypatch):
    """``fail_in_round(r, error)``: the ``truthful`` strategy raises ``error`` when asked to decide round ``r``."""
    from bidscape.bidders.truthful import Truthful

    original = Truthful.decide

    def arrange(failing_round: int, error: BaseException) -> None:
        def decide(self, round_index):
            if round_index == failing_round:
                raise error
            original(self, round_index)

        monkeypatch.setattr(Truthful, "decide", decide)

    return arrange


@pytest.fixture
def app(root, monkeypatch):
    """The dashboard (``streamlit.testing.v1.AppTest``, not yet run) on the requesting module's ``root`` fixture."""
    from streamlit.testing.v1 import AppTest

    from bidscape.dashboards import APP, data
    from dashboard_testing import TIMEOUT

    monkeypatch.setenv(data.ROOT_ENV, str(root))
    data.clear_caches()
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)

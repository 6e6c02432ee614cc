"""Smaller command-line promises: `list strategies` defaults, `validate` on a sweep file, help
without `<bool>`, the dashboard hint only when Streamlit is missing."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bidscape import cli

SWEEP_EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "sweeps" / "reserve.toml"


def test_list_strategies_shows_factory_defaults_never_pydantic_internals(bidscape_cli):
    result = bidscape_cli("list", "strategies")
    assert result.returncode == 0, result.stderr
    assert "PydanticUndefined" not in result.stdout
    assert "bins=" in result.stdout and "multiplier=required" in result.stdout


def test_default_of_a_factory_field_is_the_factorys_value():
    from pydantic import BaseModel, Field

    from bidscape.llm.params import LlmProxyParams

    class Params(BaseModel):
        needed: float
        grid: list[float] = Field(default_factory=lambda: [0.5, 1.0])
        step: float = 0.1

    # llm_proxy's bins has a default_factory: its value is what a scenario gets when it leaves bins out
    assert cli._default(LlmProxyParams.model_fields["bins"]) == "{'value_scale': 2, 'budget': 2}"
    assert [cli._default(f) for f in Params.model_fields.values()] == ["required", "[0.5, 1.0]", "0.1"]


def test_validate_recognises_a_sweep_file_and_checks_every_variant(bidscape_cli, tmp_path):
    result = bidscape_cli("validate", SWEEP_EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:") and "sweep 'reserve-sweep'" in result.stdout
    assert "4 variant(s) x 3 seed(s) = 12 runs" in " ".join(result.stdout.split()) and "reserve_price.toml" in result.stdout
    scenario = SWEEP_EXAMPLE.parent.parent / "scenarios" / "reserve_price.toml"
    bad = tmp_path / "bad.toml"  # the second variant is invalid: validate must resolve every one
    bad.write_text(f'[sweep]\nscenario = "{scenario.as_posix()}"\nseeds = 2\n'
                   '[[variants]]\nname = "ok"\n[[variants]]\nname = "negative"\nset = { "mechanism.reserve" = -1.0 }\n')
    result = bidscape_cli("validate", bad)
    assert result.returncode == 2 and "variant 'negative'" in result.stderr and "mechanism.reserve" in result.stderr
    assert "populations" not in result.stderr and result.stdout == ""
    result = bidscape_cli("validate", SWEEP_EXAMPLE, "--set", "run.rounds=2")
    assert result.returncode == 2 and "--set" in result.stderr and "[sweep] set" in result.stderr


def _commands() -> list[list[str]]:
    group = cli.typer.main.get_command(cli.app)
    return [[]] + [[name] for name in group.commands]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "bidscape")
def test_help_shows_no_bool_placeholder_on_flags(command):
    result = CliRunner().invoke(cli.app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output
    if command == ["run"]:  # options with values keep their type
        assert "<int>" in result.output and "--overwrite" in result.output


def test_dashboard_hint_only_when_streamlit_is_missing(monkeypatch):
    real = importlib.util.find_spec
    if real("streamlit") is not None:
        assert cli._dashboard_hint() == ""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "streamlit" else real(name, *a))
    assert cli._dashboard_hint() == "(needs: pip install 'bidscape[dashboard]')"


def test_run_prints_no_install_hint_when_the_dashboard_is_installed(write_scenario, bidscape_cli, tmp_path):
    pytest.importorskip("streamlit")
    result = bidscape_cli("run", write_scenario(), "--out", tmp_path / "out", "-q")
    assert result.returncode == 0, result.stderr
    assert "bidscape dashboard" in result.stdout and "needs:" not in result.stdout
    assert os.path.isdir(tmp_path / "out")

"""The command line (DESIGN.md section 3) end to end, and what a failed or interrupted run leaves.

Commands run as ``python -m bidscape.cli`` subprocesses (exit codes, stdout, stderr); runs
that must fail mid-way are made to fail by patching a strategy, in this process through
``bidscape.api.run`` and in a subprocess through ``bidscape.cli.main``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import bidscape
from bidscape import InputError, Scenario

MANIFEST_KEYS = {"status", "scenario", "seed", "version", "started", "finished", "wall_seconds", "rows"}
MARKET_COLUMNS = {"round", "auctions", "sold", "revenue", "welfare", "mean_price", "reserve"}
AGENT_COLUMNS = {"round", "agent", "population", "spend", "wins", "value", "utility", "budget_remaining",
                 "multiplier"}
AUCTION_COLUMNS = {"round", "auction", "winner", "price", "top_bid", "second_bid"}
TABLE_COLUMNS = {"market": MARKET_COLUMNS, "agents": AGENT_COLUMNS, "auctions": AUCTION_COLUMNS}

DEMO_SIZES = ["--set", "run.auctions_per_round=2000", "--set", "run.rounds=3",
              "--set", "populations.paced.size=500", "--set", "populations.brand.size=100"]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def read(folder: Path, table: str) -> pl.DataFrame:
    return pl.read_ipc(folder / f"{table}.arrow")


# ---- demo ----

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "bidscape.cli", "demo", "--out", str(root / "run"), *DEMO_SIZES],
                            cwd=root, capture_output=True, text=True, timeout=300, env=env)
    return result, root / "run"


def test_demo_exits_0_and_says_where_the_files_are(demo_run):
    result, folder = demo_run
    assert result.returncode == 0, result.stderr
    assert "600 agents" in result.stdout and "3 rounds x 2,000 auctions" in result.stdout
    assert str(folder) in result.stdout
    assert "What the demo found" in result.stdout


def test_demo_manifest_is_complete(demo_run):
    _, folder = demo_run
    m = manifest(folder)
    assert MANIFEST_KEYS <= set(m)
    assert m["status"] == "complete"
    assert m["version"] == bidscape.__version__
    assert m["seed"] == m["scenario"]["run"]["seed"] == 7
    assert m["finished"] >= m["started"] and m["wall_seconds"] >= 0
    sizes = {p["name"]: p["size"] for p in m["scenario"]["populations"]}
    assert sizes == {"paced": 500, "brand": 100}
    assert m["scenario"]["run"]["rounds"] == 3 and m["scenario"]["run"]["auctions_per_round"] == 2000
    assert "error" not in m


@pytest.mark.parametrize("table", ["market", "agents", "auctions"])
def test_demo_tables_have_the_contract_columns(demo_run, table):
    _, folder = demo_run
    frame = read(folder, table)
    assert TABLE_COLUMNS[table] <= set(frame.columns)
    assert frame.height == manifest(folder)["rows"][table]
    expected_rows = {"market": 3, "agents": 3 * 2}  # the demo records per population: 2 rows a round
    if table in expected_rows:
        assert frame.height == expected_rows[table]
    else:  # ~0.1% of 6,000 auctions
        assert frame.height < 60


def test_demo_records_per_population_and_its_findings_come_from_that_table(demo_run):
    result, folder = demo_run
    assert manifest(folder)["scenario"]["run"]["record_agents"] == "population"
    assert read(folder, "agents")["agent"].null_count() == 3 * 2  # no per-agent rows
    paced = read(folder, "populations").filter(pl.col("population") == "paced").sort("round")
    left = paced["budget_remaining"][-1] / paced["budget"][-1]
    assert f"{left:.1%} of the total was left at the end" in result.stdout
    assert (f"multiplier from {paced['multiplier'][0]:.2f} to {paced['multiplier'][-1]:.2f}" in result.stdout)
    assert "populations.arrow" in result.stdout and "run.record_agents=agent" in result.stdout


def test_demo_market_adds_up(demo_run):
    _, folder = demo_run
    market = read(folder, "market")
    assert market["round"].to_list() == [0, 1, 2]
    assert market["auctions"].to_list() == [2000] * 3
    assert (market["reserve"] == 0.3).all()
    agents = read(folder, "agents").group_by("round").agg(pl.col("spend").sum()).sort("round")
    assert agents["spend"].to_list() == pytest.approx(market["revenue"].to_list(), rel=1e-9)


# ---- run: --seed, --set, --out, --overwrite ----

def test_run_with_seed_and_set(write_scenario, bidscape_cli, tmp_path):
    file = write_scenario()
    base = bidscape_cli("run", file, "--out", tmp_path / "base", "-q")
    seeded = bidscape_cli("run", file, "--out", tmp_path / "seeded", "-q", "--seed", "11",
                          "--set", "run.rounds=2", "--set", "populations.b.size=30", "--set", "mechanism.reserve=0.2")
    assert base.returncode == 0 and seeded.returncode == 0, seeded.stderr
    m = manifest(tmp_path / "seeded")
    assert m["status"] == "complete" and m["seed"] == 11 and m["scenario"]["run"]["seed"] == 11
    assert m["scenario"]["run"]["rounds"] == 2
    assert [p["size"] for p in m["scenario"]["populations"]] == [40, 30]
    market = read(tmp_path / "seeded", "market")
    assert market.height == 2 and (market["reserve"] == 0.2).all()
    assert read(tmp_path / "seeded", "agents").height == 2 * 70
    # the seed reaches the simulation: same settings, other seed, other outcomes
    reseeded = bidscape_cli("run", file, "--out", tmp_path / "reseeded", "-q", "--seed", "12",
                            "--set", "run.rounds=2", "--set", "populations.b.size=30", "--set", "mechanism.reserve=0.2")
    assert reseeded.returncode == 0
    assert read(tmp_path / "reseeded", "market")["revenue"].to_list() != market["revenue"].to_list()


def test_set_reaches_any_field(write_scenario, bidscape_cli, tmp_path):
    sets = ["run.name=renamed", "run.record_agents=population", "run.auction_sample_rate=0",
            "mechanism.type=first_price", "market.bidders_per_auction=all",
            'populations.a.values={ dist = "constant", value = 0.5 }', "populations.b.params.step=0.25",
            "populations.1.budget.high=20.0", 'events=[{ at_round = 1, set = { "mechanism.reserve" = 0.3 } }]']
    result = bidscape_cli("run", write_scenario(), "--out", tmp_path / "out", "-q",
                          *[arg for s in sets for arg in ("--set", s)])
    assert result.returncode == 0, result.stderr
    s = manifest(tmp_path / "out")["scenario"]
    assert s["run"]["name"] == "renamed" and s["run"]["record_agents"] == "population"
    assert s["mechanism"]["type"] == "first_price" and s["market"]["bidders_per_auction"] == "all"
    assert s["populations"][0]["values"] == {"dist": "constant", "value": 0.5}
    assert s["populations"][1]["params"]["step"] == 0.25 and s["populations"][1]["budget"]["high"] == 20.0
    assert s["events"] == [{"at_round": 1, "set": {"mechanism.reserve": 0.3}}]
    assert read(tmp_path / "out", "agents").height == 3 * 2  # one row per population per round
    assert read(tmp_path / "out", "auctions").height == 0
    market = read(tmp_path / "out", "market")
    assert market["reserve"].to_list() == [0.1, 0.3, 0.3]
    assert (market["bidders_per_auction"] == 60).all()


def test_existing_run_folder_is_not_overwritten_without_flag(write_scenario, bidscape_cli, tmp_path):
    file, out = write_scenario(), tmp_path / "out"
    assert bidscape_cli("run", file, "--out", out, "-q").returncode == 0
    before = (out / "manifest.json").read_text()
    refused = bidscape_cli("run", file, "--out", out, "-q", "--seed", "99")
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--overwrite" in refused.stderr
    assert (out / "manifest.json").read_text() == before
    replaced = bidscape_cli("run", file, "--out", out, "-q", "--seed", "99", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    m = manifest(out)
    assert m["status"] == "complete" and m["seed"] == 99


def test_overwrite_only_replaces_run_folders(write_scenario, bidscape_cli, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = bidscape_cli("run", write_scenario(), "--out", out, "-q", "--overwrite")
    assert result.returncode == 2
    assert "not a bidscape run folder" in result.stderr
    assert (out / "notes.txt").read_text() == "keep me" and not (out / "manifest.json").exists()


def test_demo_refuses_an_existing_folder_too(bidscape_cli, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "manifest.json").write_text('{"status": "complete"}')
    result = bidscape_cli("demo", "--out", out, *DEMO_SIZES)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (out / "manifest.json").read_text() == '{"status": "complete"}'


# ---- validate and list ----

def test_validate_ok_does_not_run(write_scenario, bidscape_cli, tmp_path):
    result = bidscape_cli("validate", write_scenario(), "--set", "run.rounds=5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:") and "60 agents" in result.stdout and "5 rounds" in result.stdout
    assert result.stderr == ""
    assert not list(tmp_path.rglob("manifest.json")) and not (tmp_path / "runs").exists()


def test_validate_failing(write_scenario, tiny_scenario_text, bidscape_cli):
    file = write_scenario(tiny_scenario_text.replace('type = "second_price"', 'type = "vickrey"'))
    result = bidscape_cli("validate", file)
    assert result.returncode == 2
    assert "mechanism.type" in result.stderr and "'vickrey'" in result.stderr and "bidscape list mechanisms" in result.stderr
    assert "ok" not in result.stdout


def test_list_mechanisms(bidscape_cli):
    result = bidscape_cli("list", "mechanisms")
    assert result.returncode == 0
    assert "first_price" in result.stdout and "second_price" in result.stdout
    assert "pays its bid" in result.stdout  # the one-line docs


def test_list_strategies(bidscape_cli):
    result = bidscape_cli("list", "strategies")
    assert result.returncode == 0
    for name in ("truthful", "constant_shade", "adaptive_pacing"):
        assert name in result.stdout
    assert "step=0.1" in result.stdout and "multiplier=required" in result.stdout  # the params column


@pytest.mark.parametrize("kind, expect", [("bogus", "use mechanisms or strategies"),
                                          ("strategie", "did you mean 'strategies'"),
                                          ("mechanism", "did you mean 'mechanisms'")])
def test_list_unknown_kind(bidscape_cli, kind, expect):
    result = bidscape_cli("list", kind)
    assert result.returncode == 2
    assert f"cannot list '{kind}'" in result.stderr and expect in result.stderr
    assert result.stdout == ""


# ---- events ----

EVENTS = """
[[events]]
at_round = 2
set = { "mechanism.reserve" = 0.5 }

[[events]]
at_round = 1
set = { "mechanism.type" = "first_price" }
"""


@pytest.fixture(scope="module")
def event_run(tmp_path_factory, tiny_scenario_text):
    root = tmp_path_factory.mktemp("events")
    (root / "events.toml").write_text(tiny_scenario_text.replace("rounds = 3", "rounds = 4") + EVENTS)
    result = subprocess.run([sys.executable, "-m", "bidscape.cli", "run", "events.toml", "--out", "run", "-q"],
                            cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return root / "run"


def test_event_sets_reserve_from_its_round_on(event_run):
    market = read(event_run, "market")
    assert market["reserve"].to_list() == [0.1, 0.1, 0.5, 0.5]
    auctions = read(event_run, "auctions").filter(pl.col("winner") >= 0)
    assert (auctions.filter(pl.col("round") >= 2)["price"] >= 0.5).all()
    assert (auctions.filter(pl.col("round") < 2)["price"] < 0.5).any()


def test_event_switches_the_mechanism(event_run):
    market = read(event_run, "market")
    assert market["mechanism"].to_list() == ["second_price", "first_price", "first_price", "first_price"]
    sold = read(event_run, "auctions").filter(pl.col("winner") >= 0)
    first_price = sold.filter(pl.col("round") >= 1)
    second_price = sold.filter(pl.col("round") == 0)
    assert first_price.height > 0 and second_price.height > 0
    assert first_price["price"].to_list() == first_price["top_bid"].to_list()  # pays its own bid
    assert (second_price["price"] < second_price["top_bid"]).any()
    # the resolved scenario in the manifest keeps the events
    assert len(manifest(event_run)["scenario"]["events"]) == 2


# ---- failed and interrupted runs ----

def _assert_failed(folder: Path, error_type: str, message: str, rounds_written: int) -> dict:
    m = manifest(folder)
    assert MANIFEST_KEYS <= set(m)
    assert m["status"] == "failed"
    assert m["error"]["type"] == error_type and message in m["error"]["message"]
    assert "Traceback" in m["error"]["traceback"]
    assert m["finished"] is not None and "summary" not in m
    assert m["rows"]["market"] == rounds_written
    assert read(folder, "market")["round"].to_list() == list(range(rounds_written))  # what it wrote is readable
    with pytest.raises(InputError, match="not complete"):
        bidscape.Run(folder)
    return m


def test_strategy_error_mid_run_leaves_failed(fail_in_round, write_scenario, tmp_path):
    from bidscape.api import run

    fail_in_round(2, RuntimeError("strategy broke in round 2"))
    scenario = Scenario.from_toml(write_scenario(), ["run.rounds=4"])
    with pytest.raises(RuntimeError, match="strategy broke"):
        run(scenario, out=tmp_path / "out")
    _assert_failed(tmp_path / "out", "RuntimeError", "strategy broke in round 2", rounds_written=2)


def test_keyboard_interrupt_mid_run_leaves_failed(fail_in_round, write_scenario, tmp_path):
    from bidscape.api import run

    fail_in_round(2, KeyboardInterrupt())
    scenario = Scenario.from_toml(write_scenario(), ["run.rounds=4"])
    with pytest.raises(KeyboardInterrupt):
        run(scenario, out=tmp_path / "out")
    m = _assert_failed(tmp_path / "out", "Interrupted", "interrupted by SIGINT", rounds_written=2)
    assert m["error"]["signal"] == "SIGINT"


def test_error_while_finishing_files_is_not_complete(write_scenario, tmp_path, monkeypatch):
    """A file that cannot be finished (disk full at close) fails the run instead of completing it."""
    import pyarrow.ipc as ipc

    from bidscape.api import run

    close = ipc.RecordBatchFileWriter.close

    def close_then_fail(self):
        close(self)
        raise OSError("disk full")

    monkeypatch.setattr(ipc.RecordBatchFileWriter, "close", close_then_fail)
    with pytest.raises(OSError, match="disk full"):
        run(Scenario.from_toml(write_scenario()), out=tmp_path / "out")
    assert manifest(tmp_path / "out")["status"] == "failed"
    assert manifest(tmp_path / "out")["error"]["message"] == "disk full"


FAILING_CLI = """
import sys
from bidscape.bidders.truthful import Truthful
original = Truthful.decide
def decide(self, round_index):
    if round_index == 1:
        raise {error}
    original(self, round_index)
Truthful.decide = decide
from bidscape.cli import main
sys.argv = ["bidscape", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("error, code, said", [
    ('RuntimeError("strategy broke in round 1")', 1, "run failed: RuntimeError: strategy broke in round 1"),
    ("KeyboardInterrupt()", 130, "interrupted"),
])
def test_cli_failed_run_exit_code_and_manifest(error, code, said, write_scenario, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", FAILING_CLI.format(error=error), "run", str(write_scenario()),
                             "--out", str(out), "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == code, result.stderr
    assert said in result.stderr and 'status = "failed"' in result.stderr
    m = manifest(out)
    assert m["status"] == "failed" and m["rows"]["market"] == 1
    assert m["error"]["type"] == {"KeyboardInterrupt": "Interrupted"}.get(error.split("(")[0], error.split("(")[0])


# ---- what the user typed, named with the fix (issue "Trust I", item 20) ----

def _main(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``bidscape ARGS`` in this process: (exit code, the one error line)."""
    from bidscape.cli import main

    monkeypatch.setattr("sys.argv", ["bidscape", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return exited.value.code, lines[0]


@pytest.mark.parametrize("args, expect", [
    (["run", "{file}", "--seed", "abc"], ["--seed: 'abc' is not a whole number", "Fix: write a whole number, e.g."]),
    (["run", "{file}", "--seed=1.5"], ["--seed: '1.5' is not a whole number"]),
    (["sweep", "{file}", "--workers", "0"], ["--workers: '0' is not a whole number >= 1", "e.g. --workers 1"]),
    (["sweep", "{file}", "--backend", "rey"], ["--backend: 'rey' is not one of: local, ray"]),
    (["run", "{file}", "--sed", "1"], ["'--sed' is not an option of `bidscape run`", "did you mean '--seed'?"]),
    (["validate"], ["SCENARIO.toml: is missing", "bidscape validate --help"]),
])
def test_bad_options_name_the_option_the_value_and_the_fix(args, expect, write_scenario, monkeypatch, capsys):
    file = write_scenario()
    code, line = _main(monkeypatch, capsys, *[a.format(file=file) for a in args])
    assert code == 2
    assert "Fix:" in line
    for text in expect:
        assert text in line


def _scenario_path(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "scenario.toml"
    if kind == "folder":
        path.mkdir()
        (path / "inside.toml").write_text("")
    elif kind == "named-pipe":
        os.mkfifo(path)
    elif kind == "symlink-loop":
        path.symlink_to(tmp_path / "other.toml")
        (tmp_path / "other.toml").symlink_to(path)
    elif kind == "broken-link":
        path.symlink_to(tmp_path / "gone.toml")
    elif kind == "unreadable":
        path.write_text("")
        path.chmod(0)
    return path


@pytest.mark.parametrize("kind, said, fix", [
    ("missing", "does not exist", "check the path"),
    ("folder", "is a folder, not a file", "name a file in it (inside.toml)"),
    ("named-pipe", "is a named pipe, not a file", "save the TOML to a file"),
    ("symlink-loop", "is a symbolic link loop", "point the link at the file itself"),
    ("broken-link", "is a broken symbolic link", "point the link at a file"),
    ("unreadable", "cannot be read (permission denied)", "chmod u+r"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_each_kind_of_unusable_scenario_path_says_what_it_is(command, kind, said, fix, tmp_path, monkeypatch, capsys):
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = _scenario_path(tmp_path, kind)
    code, line = _main(monkeypatch, capsys, command, path, *(["--out", tmp_path / "out"] if command == "run" else []))
    assert code == 2
    assert f"scenario file '{path}' {said}" in line and f"Fix: {fix}" in line
    assert not (tmp_path / "out").exists()


def test_a_byte_order_mark_is_not_a_syntax_error(write_scenario, tiny_scenario_text, monkeypatch, capsys):
    from bidscape.cli import main

    file = write_scenario()
    file.write_bytes(b"\xef\xbb\xbf" + tiny_scenario_text.encode())  # what Notepad writes
    monkeypatch.setattr("sys.argv", ["bidscape", "validate", str(file)])
    main()
    assert "ok" in capsys.readouterr().out
    assert Scenario.from_toml(file).run.name == "tiny"


def test_a_file_that_is_not_utf8_says_so(write_scenario, tiny_scenario_text, monkeypatch, capsys):
    file = write_scenario()
    file.write_bytes(tiny_scenario_text.replace('"tiny"', '"caf\xe9"').encode("latin-1"))
    code, line = _main(monkeypatch, capsys, "validate", file)
    assert code == 2 and "not UTF-8 text (byte 17 on line 2)" in line and "save the file as UTF-8" in line

"""Run folders never lose data (issue "Trust I", items 1-5): what --overwrite may replace and when,
one writer per folder, signals, a full disk, and what a killed run leaves readable.

Runs that must stop mid-way are stopped by patching a strategy (in this process) or by a real
signal to a ``bidscape run`` subprocess.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.ipc as ipc
import pytest

import bidscape
from bidscape import InputError, Scenario
from bidscape.api import run
from bidscape.bidders.truthful import Truthful
from bidscape.outputs import FolderLock, run_state
from bidscape.outputs.tables import read_table, seal

# Long enough to be stopped by a signal mid-run (each round well under a second), small enough
# that the killed process leaves little behind.
SLOW_ROUNDS = """\
[run]
name = "slow"
seed = 1
rounds = 2000
auctions_per_round = 50000
auction_sample_rate = 0.001

[mechanism]
type = "second_price"

[market]
bidders_per_auction = 4

[[populations]]
name = "a"
size = 2000
strategy = "adaptive_pacing"
values = { dist = "uniform", low = 0.0, high = 1.0 }
budget = { dist = "constant", value = 1000.0 }
"""


def manifest(path: Path) -> dict:
    """The manifest of a run folder (or at a manifest path); {} while there is none."""
    path = path if path.name == "manifest.json" else path / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def complete_run(write_scenario, tmp_path):
    return run(Scenario.from_toml(write_scenario()), out=tmp_path / "out")


# ---- 1. --overwrite replaces only a folder that is provably a bidscape run ----

def test_overwrite_refuses_a_folder_whose_manifest_is_not_a_run_manifest(write_scenario, bidscape_cli, tmp_path):
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"manifest_version": 3}')
    (app / "src" / "app.js").write_text("x")
    result = bidscape_cli("run", write_scenario(), "--out", app, "--overwrite", "-q")
    assert result.returncode == 2, result.stderr
    assert "not a bidscape run folder" in result.stderr and "--out" in result.stderr
    assert (app / "src" / "app.js").read_text() == "x"
    assert (app / "manifest.json").read_text() == '{"manifest_version": 3}'
    assert sorted(p.name for p in app.iterdir()) == ["manifest.json", "src"]


def test_overwrite_refuses_a_run_folder_holding_other_files(complete_run, write_scenario):
    folder = complete_run.path
    (folder / "notes.md").write_text("my analysis")
    (folder / "plots").mkdir()
    before = snapshot(folder)
    with pytest.raises(InputError, match=r"not its run's \(notes.md, plots/\)"):
        run(Scenario.from_toml(write_scenario()), out=folder, overwrite=True, seed=9)
    assert snapshot(folder) == before and (folder / "plots").is_dir()


def test_overwrite_replaces_a_run_folder(complete_run, write_scenario):
    folder = complete_run.path
    replaced = run(Scenario.from_toml(write_scenario()), out=folder, overwrite=True, seed=9)
    assert replaced.path == folder and replaced.manifest["seed"] == 9
    assert sorted(p.name for p in folder.parent.iterdir()) == ["out", "scenario.toml"]  # no staging left


# ---- 2. the old run is replaced only once the new one is complete ----

@pytest.mark.parametrize("error", [RuntimeError("broke in round 1"), KeyboardInterrupt()])
def test_failed_replacement_leaves_the_old_run_as_it_was(error, fail_in_round, complete_run, write_scenario):
    folder = complete_run.path
    before = snapshot(folder)
    fail_in_round(1, error)
    with pytest.raises(type(error)) as raised:
        run(Scenario.from_toml(write_scenario()), out=folder, overwrite=True, seed=9)
    assert snapshot(folder) == before
    assert bidscape.Run(folder).manifest["seed"] == 3
    assert sorted(p.name for p in folder.parent.iterdir()) == ["out", "scenario.toml"]
    assert any("is unchanged" in note for note in raised.value.__notes__)


def test_failed_replacement_from_the_cli_says_the_old_run_is_kept(complete_run, write_scenario, bidscape_cli):
    folder = complete_run.path
    before = snapshot(folder)
    overflow = write_scenario().read_text().replace('mean = -0.5, sigma = 0.4', 'mean = 1000.0, sigma = 0.4')
    result = bidscape_cli("run", write_scenario(overflow, "overflow.toml"), "--out", folder, "--overwrite", "-q")
    assert result.returncode in (1, 2), result.stderr
    assert snapshot(folder) == before


# ---- 3. one writer per folder ----

def test_a_second_writer_is_refused_while_the_first_holds_the_folder(complete_run, write_scenario):
    folder = complete_run.path
    lock = FolderLock(folder).acquire()  # as a live run holds it
    try:
        before = snapshot(folder)
        with pytest.raises(InputError, match="is in use"):
            run(Scenario.from_toml(write_scenario()), out=folder, overwrite=True)
        assert snapshot(folder) == before
    finally:
        lock.release()


def test_overwrite_of_a_running_run_is_refused_from_the_cli(write_scenario, bidscape_cli, tmp_path):
    folder = tmp_path / "a"
    writer = subprocess.Popen([sys.executable, "-m", "bidscape.cli", "run", str(write_scenario(SLOW_ROUNDS)),
                               "--out", str(folder), "-q"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: run_state(folder).status == "running")
        result = bidscape_cli("run", write_scenario(), "--out", folder, "--overwrite", "-q")
        assert result.returncode == 2, result.stderr
        assert "in use" in result.stderr and f"pid {writer.pid}" in result.stderr
        assert run_state(folder).status == "running"
    finally:
        writer.kill()
        writer.wait()


def test_a_folder_replaced_mid_run_never_ends_complete(write_scenario, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    original = Truthful.decide

    def decide(self, round_index):
        if round_index == 1:  # someone deletes and recreates the folder while the run writes it
            import shutil
            shutil.rmtree(folder)
            folder.mkdir()
        original(self, round_index)

    monkeypatch.setattr(Truthful, "decide", decide)
    with pytest.raises((RuntimeError, OSError)):
        run(Scenario.from_toml(write_scenario()), out=folder)
    assert run_state(folder).status != "complete"


def test_run_checks_every_listed_file_and_its_rows(complete_run, write_scenario, tmp_path):
    folder = complete_run.path
    other = run(Scenario.from_toml(write_scenario(), ["run.rounds=2"]), out=tmp_path / "other")
    own = (folder / "market.arrow").read_bytes()
    (folder / "market.arrow").write_bytes((other.path / "market.arrow").read_bytes())
    with pytest.raises(InputError, match="market.arrow holds 2 rows where the manifest says 3"):
        bidscape.Run(folder)
    (folder / "market.arrow").write_bytes(own)
    bidscape.Run(folder)
    (folder / "agents.arrow").unlink()
    with pytest.raises(InputError, match="agents.arrow is missing"):
        bidscape.Run(folder)


# ---- 4. SIGTERM, SIGHUP and a full disk ----

@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_a_signal_marks_the_run_failed_and_keeps_its_rounds(signal_name, write_scenario, tmp_path):
    folder = tmp_path / "out"
    writer = subprocess.Popen([sys.executable, "-m", "bidscape.cli", "run", str(write_scenario(SLOW_ROUNDS)),
                               "--out", str(folder), "-q"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: manifest(folder).get("rounds_done", 0) >= 2)
    writer.send_signal(getattr(signal, signal_name))
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 128 + getattr(signal, signal_name)
    assert f"interrupted by {signal_name}" in stderr and 'status = "failed"' in stderr
    m = manifest(folder)
    assert m["status"] == "failed" and m["error"]["message"] == f"interrupted by {signal_name}"
    state = run_state(folder)
    assert state.status == "failed" and state.interrupted
    market = pl.read_ipc(folder / "market.arrow")  # closed files: readable by polars as they are
    assert market.height >= m["rounds_done"] >= 2
    assert market["round"].to_list()[:m["rounds_done"]] == list(range(m["rounds_done"]))


def test_a_full_disk_leaves_no_temporary_manifest_and_says_so(fail_in_round, write_scenario, tmp_path,
                                                               monkeypatch):
    folder = tmp_path / "out"
    fail_in_round(1, RuntimeError("broke in round 1"))
    write_text = Path.write_text
    writes = []

    def full_disk(self, *args, **kwargs):  # the disk fills up after the run has started
        if self.name == "manifest.json.tmp":
            writes.append(self)
            if len(writes) > 1:
                write_text(self, "{partial", encoding="utf-8")
                raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(RuntimeError, match="broke in round 1") as raised:
        run(Scenario.from_toml(write_scenario()), out=folder)
    assert not (folder / "manifest.json.tmp").exists()
    notes = " ".join(raised.value.__notes__)
    assert "could not mark" in notes and "No space left on device" in notes and "marked status" not in notes
    assert run_state(folder).status == "interrupted"  # its manifest still says running; nobody holds the lock


def test_a_disk_full_at_the_start_leaves_nothing_behind(write_scenario, tmp_path, monkeypatch):
    folder = tmp_path / "out"

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        run(Scenario.from_toml(write_scenario()), out=folder)
    assert not folder.exists()


# ---- 5. after SIGKILL, the finished rounds are readable and the folder reads as interrupted ----

def test_a_killed_run_reads_as_interrupted_and_keeps_its_finished_rounds(write_scenario, tmp_path):
    folder = tmp_path / "out"
    writer = subprocess.Popen([sys.executable, "-m", "bidscape.cli", "run", str(write_scenario(SLOW_ROUNDS)),
                               "--out", str(folder), "-q"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    _wait_for(lambda: manifest(folder).get("rounds_done", 0) >= 3)
    writer.kill()
    writer.wait()
    m = manifest(folder)
    assert m["status"] == "running"
    state = run_state(folder)
    assert state.status == "interrupted" and state.interrupted and f"pid {writer.pid}" in state.reason
    with pytest.raises(InputError, match="interrupted"):
        bidscape.Run(folder)
    for table in ("market", "populations", "agents", "auctions"):
        rows = read_table(folder / f"{table}.arrow")  # no footer: read as the stream it contains
        assert rows.num_rows >= m["rows"][table]
    market = read_table(folder / "market.arrow", rows=m["rows"]["market"])
    assert market.column("round").to_pylist() == list(range(m["rounds_done"]))
    # sealed, a table is an ordinary Arrow file again, for polars and pyarrow alike
    assert seal(folder / "agents.arrow", m["rows"]["agents"]) == m["rows"]["agents"]
    agents = pl.scan_ipc(folder / "agents.arrow").select(pl.col("round").max(), pl.len()).collect()
    assert agents.row(0) == (m["rounds_done"] - 1, m["rows"]["agents"])
    assert ipc.open_file(str(folder / "agents.arrow")).count_rows() == m["rows"]["agents"]


def test_the_dashboard_lists_a_killed_run_as_interrupted(write_scenario, tmp_path):
    from bidscape.dashboards.discovery import discover

    complete = run(Scenario.from_toml(write_scenario()), out=tmp_path / "runs" / "done")
    killed = tmp_path / "runs" / "killed"
    killed.mkdir()
    stale = {**complete.manifest, "status": "running", "writer": {"pid": 1, "host": "elsewhere"}}
    del stale["summary"]
    (killed / "manifest.json").write_text(json.dumps(stale))
    found = discover(tmp_path / "runs")
    assert [e.label for e in found.of_kind("run")] == ["done"]
    assert [(s.status, "interrupted" in s.message or "stopped" in s.message) for s in found.skipped] == [
        ("interrupted", True)]


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, ValueError):  # a manifest being replaced
            pass
        time.sleep(0.05)
    raise AssertionError("timed out")


# ---- resume: an interrupted run finishes in its folder, as if it had never stopped ----

# Rounds of ~20 ms, so that the manifest (which records progress every half second) is seen
# mid-run, and the whole run takes a few seconds.
RESUMABLE = (SLOW_ROUNDS.replace("rounds = 2000", "rounds = 100").replace('name = "slow"', 'name = "resumable"')
             .replace("auctions_per_round = 50000", "auctions_per_round = 400000"))


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_resumed_run_ends_byte_identical_to_an_uninterrupted_one(stop, write_scenario, bidscape_cli, tmp_path):
    file = write_scenario(RESUMABLE)
    whole = run(Scenario.from_toml(file), out=tmp_path / "whole")
    folder = tmp_path / "stopped"
    writer = subprocess.Popen([sys.executable, "-m", "bidscape.cli", "run", str(file), "--out", str(folder), "-q"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: manifest(folder).get("rounds_done", 0) >= 3)
    writer.send_signal(getattr(signal, stop))
    writer.wait()
    stopped = manifest(folder)
    assert 3 <= stopped["rounds_done"] < 100 and run_state(folder).interrupted
    result = bidscape_cli("run", "--resume", folder, "-q")
    assert result.returncode == 0, result.stderr
    resumed = bidscape.Run(folder)
    assert resumed.manifest["resumed"][0]["at_round"] == stopped["rounds_done"]
    assert resumed.summary == whole.summary
    for table in ("market", "populations", "agents", "auctions"):
        assert (folder / f"{table}.arrow").read_bytes() == (whole.path / f"{table}.arrow").read_bytes(), table
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in whole.path.iterdir())


def test_an_interrupted_resume_leaves_the_folder_as_it_found_it(fail_in_round, write_scenario, tmp_path):
    folder = tmp_path / "out"
    fail_in_round(2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(Scenario.from_toml(write_scenario()), out=folder)
    before = {name: data for name, data in snapshot(folder).items() if name != "manifest.json"}
    fail_in_round(2, KeyboardInterrupt())  # the resume stops in the same round
    with pytest.raises(KeyboardInterrupt):
        bidscape.api.resume(folder)
    assert {name: data for name, data in snapshot(folder).items() if name != "manifest.json"} == before
    assert run_state(folder).interrupted and manifest(folder)["rounds_done"] == 2


def test_resume_refuses_what_is_not_interrupted(fail_in_round, complete_run, write_scenario, tmp_path):
    with pytest.raises(InputError, match="is complete, not interrupted.*nothing to resume"):
        bidscape.api.resume(complete_run.path)
    fail_in_round(1, RuntimeError("a real error"))
    with pytest.raises(RuntimeError):
        run(Scenario.from_toml(write_scenario()), out=tmp_path / "failed")
    with pytest.raises(InputError, match="is failed, not interrupted.*--overwrite"):
        bidscape.api.resume(tmp_path / "failed")


def test_a_writer_killed_before_its_first_manifest_leaves_a_folder_that_can_be_used(write_scenario, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / ".bidscape-lock").write_text("")  # all that a writer killed at its start leaves
    assert run(Scenario.from_toml(write_scenario()), out=folder).manifest["status"] == "complete"


def test_a_stop_while_the_recorder_opens_leaves_no_running_folder(write_scenario, tmp_path, monkeypatch):
    import pyarrow.ipc

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt()

    monkeypatch.setattr(pyarrow.ipc, "new_file", stopped)
    with pytest.raises(KeyboardInterrupt):
        run(Scenario.from_toml(write_scenario()), out=tmp_path / "out")
    assert run_state(tmp_path / "out").status == "failed" and run_state(tmp_path / "out").interrupted

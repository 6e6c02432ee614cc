"""A sweep that is killed, stopped or interrupted (docs/sweeps.md, "Resuming"): its workers end
with it however it ends, interrupted runs are redone, never failures, and the exit code says the
sweep did not finish. Also the docs' Python snippet run as a plain script.

The process tests start ``bidscape sweep`` with 2 workers on runs long enough to be caught
mid-way (tiny agents, many rounds), kill it, and wait a few seconds at most for the workers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from proc_state import alive

from bidscape.errors import InputError
from bidscape.outputs import run_state
from bidscape.outputs.lock import FolderLock
from bidscape.sweep import SweepSpec, load_sweep, read_index, run_sweep
from bidscape.sweep.index import SweepIndex
from bidscape.sweep.runner import plan

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file() or not hasattr(signal, "SIGKILL"),
                                reason="reads processes from /proc")




def workers_of(pid: int) -> list[int]:
    """The pool workers among ``pid``'s children."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def write_sweep(folder: Path, tiny_scenario_text: str, rounds: int, variants: int = 2) -> Path:
    (folder / "scenario.toml").write_text(tiny_scenario_text.replace("rounds = 3", f"rounds = {rounds}"))
    reserves = ", ".join(str(0.1 * i) for i in range(variants))
    path = folder / "sweep.toml"
    path.write_text(f'[sweep]\nname = "s"\nscenario = "scenario.toml"\nseeds = 2\n'
                    f'[grid]\n"mechanism.reserve" = [{reserves}]\n')
    return path


def start_sweep(sweep: Path, out: Path) -> subprocess.Popen:
    # output through pipes, as a shell pipeline would: they close only when every holder has ended
    return subprocess.Popen([sys.executable, "-m", "bidscape.cli", "sweep", str(sweep), "--out", str(out),
                             "--workers", "2", "-q"], cwd=sweep.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})


def running_runs(out: Path) -> list[Path]:
    """Runs being written and past their start (imports done: a signal there could be swallowed
    by third-party import code that catches everything)."""
    return [folder for folder in out.glob("*/seed-*")
            if (state := run_state(folder)).status == "running" and state.manifest.get("rounds_done", 0) > 0]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_takes_its_workers_along(tmp_path, tiny_scenario_text, signum):
    sweep = write_sweep(tmp_path, tiny_scenario_text, rounds=100_000)  # minutes: caught mid-way
    out = tmp_path / "out"
    process = start_sweep(sweep, out)
    workers: list[int] = []
    try:
        in_flight = wait_for(lambda: len(running_runs(out)) == 2 and running_runs(out), 90, "two runs in flight")
        workers = workers_of(process.pid)
        assert len(workers) == 2
        process.send_signal(signum)
        output = "".join(process.communicate(timeout=15))  # returns once no worker holds the pipes
        wait_for(lambda: not any(alive(pid) for pid in workers), 5, "the workers to end")
    finally:
        for pid in [process.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()
    if signum == signal.SIGTERM:  # stopped like Ctrl-C, with the signal's exit code
        assert process.returncode == 143, output
        said = " ".join(output.split())  # the console wraps long lines (long temporary paths under xdist)
        assert "sweep interrupted" in said and "run the same command again to resume" in said, output
    assert set(read_index(out)["status"]) == {"pending"}
    for folder in in_flight:  # stopped by their workers' SIGTERM, or killed: to be redone either way
        state = run_state(folder)
        assert state.interrupted, (folder, state)
    spec = load_sweep(sweep)
    tasks, _ = plan(spec, out, SweepIndex(out, spec.swept_keys), retry_failed=False)
    assert {Path(task.folder) for task in tasks} >= set(in_flight)


def test_a_worker_interrupted_alone_leaves_the_sweep_unfinished(tmp_path, tiny_scenario_text):
    sweep = write_sweep(tmp_path, tiny_scenario_text, rounds=1500, variants=1)  # two runs of ~3 s
    out = tmp_path / "out"
    process = start_sweep(sweep, out)
    workers: list[int] = []
    try:
        folders = wait_for(lambda: len(running_runs(out)) == 2 and running_runs(out), 90, "two runs in flight")
        workers = workers_of(process.pid)
        os.kill(run_state(folders[0]).manifest["writer"]["pid"], signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        for pid in [process.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 143, stdout + stderr  # not finished: 0 would say it was
    assert re.search(r"1 run\(s\) pending \(a run was interrupted by SIGTERM\).*run the same command again",
                     stdout, re.S), stdout
    index = read_index(out)
    assert sorted(index["status"]) == ["complete", "pending"]
    stopped = index.filter(status="pending")
    assert stopped["error"].item() == "interrupted by SIGTERM"
    assert run_state(out / stopped["path"].item()).interrupted


def test_no_retry_failed_still_redoes_interrupted_runs(tmp_path, write_scenario):
    spec = SweepSpec.from_scenario(write_scenario(), {"a": {}, "b": {"mechanism.reserve": 0.2}}, [1, 2], "s")
    out = tmp_path / "out"
    run_sweep(spec, out, workers=1, progress=False)
    failed, ctrl_c, signalled, killed = "a/seed-1", "a/seed-2", "b/seed-1", "b/seed-2"
    for run_id, status, error in ((failed, "failed", "RuntimeError"), (ctrl_c, "failed", "KeyboardInterrupt"),
                                  (signalled, "failed", "Interrupted"), (killed, "running", None)):
        path = out / run_id / "manifest.json"
        text = path.read_text().replace('"status": "complete"', f'"status": "{status}"')
        if error:
            text = text.replace('"version"', f'"error": {{"type": "{error}", "message": "stop"}}, "version"', 1)
        path.write_text(text)
    assert run_state(out / killed).status == "interrupted"  # says running; nobody holds its lock

    result = run_sweep(spec, out, workers=1, progress=False, retry_failed=False)
    assert result.index.filter(status="failed")["run_id"].to_list() == [failed]
    assert result.failed == 1 and result.complete == 3 and result.exit_code == 1
    for run_id in (ctrl_c, signalled, killed):
        assert run_state(out / run_id).complete, run_id


def test_a_run_another_process_writes_is_left_alone(tmp_path, write_scenario):
    spec = SweepSpec.from_scenario(write_scenario(), {"a": {}}, [1, 2], "s")
    out = tmp_path / "out"
    run_sweep(spec, out, workers=1, progress=False)
    busy = out / "a" / "seed-2"
    manifest = busy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"status": "complete"', '"status": "running"'))
    before = {p.name: p.read_bytes() for p in busy.iterdir() if p.is_file()}
    lock = FolderLock(busy).acquire()  # a live writer
    try:
        result = run_sweep(spec, out, workers=1, progress=False)
        with held(out), pytest.raises(InputError, match=r"--out: .* is in use: another sweep is running on it"):
            run_sweep(spec, out, workers=1, progress=False)
    finally:
        lock.release()
    assert {p.name: p.read_bytes() for p in busy.iterdir() if p.is_file()} == before  # not clobbered
    row = result.index.filter(run_id="a/seed-2")
    assert row["status"].item() == "pending" and row["error"].item().startswith("in use: being written by")
    assert result.pending == 1 and result.exit_code == 1


@contextmanager
def held(folder: Path) -> Iterator[None]:
    """Hold a folder's lock, as a sweep running on it does."""
    lock = FolderLock(folder).acquire()
    try:
        yield
    finally:
        lock.release()


def _snippet() -> str:
    """The Python example of docs/sweeps.md that runs a sweep."""
    text = (REPO / "docs" / "sweeps.md").read_text()
    return next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "run_sweep(" in block)


def _copy_scenario(tmp_path: Path, snippet: str) -> None:
    path = re.search(r'"(data/scenarios/[^"]+\.toml)"', snippet).group(1)
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text(re.sub(r"(?m)^auctions_per_round = .*$", "auctions_per_round = 1_000",
                                        (REPO / path).read_text()))  # small


def run_script(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    (tmp_path / "script.py").write_text(text)
    return subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)


def test_the_docs_snippet_runs_as_a_plain_script(tmp_path):
    snippet = _snippet()
    assert "__main__" not in snippet and "workers=2" in snippet  # as a reader would paste it
    _copy_scenario(tmp_path, snippet)
    result = run_script(tmp_path, snippet + "\nprint('STATUS', sorted(set(result.index['status'])))\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STATUS ['complete']" in result.stdout
    assert "worker process died" not in result.stdout + result.stderr


PLUGIN = """\
from bidscape.bidders import STRATEGIES
from bidscape.bidders.truthful import Truthful
from bidscape.sweep import SweepSpec, run_sweep


class Mine(Truthful):
    name = "mine"


STRATEGIES.register("mine", Mine)
{guard}run_sweep(SweepSpec.from_scenario("scenario.toml", {{"a": {{}}, "b": {{"populations.a.strategy": "mine"}}}},
{indent}                           [1], "p"), "out", workers=2, progress=False)
{indent}print("DONE")
"""


def test_a_plugin_defined_in_an_unguarded_script_is_refused_before_any_run(tmp_path, tiny_scenario_text):
    (tmp_path / "scenario.toml").write_text(tiny_scenario_text)
    result = run_script(tmp_path, PLUGIN.format(guard="", indent=""))
    assert result.returncode == 1
    assert re.search(r'script\.py:\d+ starts a sweep .* outside `if __name__ == "__main__":`.*'
                     r'Fix: put the code that runs the sweep under `if __name__ == "__main__":`', result.stderr)
    assert not (tmp_path / "out").exists()
    guarded = run_script(tmp_path, PLUGIN.format(guard='if __name__ == "__main__":\n    ', indent="    "))
    assert guarded.returncode == 0 and "DONE" in guarded.stdout, guarded.stderr[-3000:]
    assert set(read_index(tmp_path / "out")["status"]) == {"complete"}

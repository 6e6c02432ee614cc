"""Running a sweep: the folder, what is left to do, the backend, the index after every run.

>>> from bidscape.sweep import load_sweep, run_sweep                     # doctest: +SKIP
>>> result = run_sweep(load_sweep("data/sweeps/reserve.toml"), "runs/reserve", workers=2)  # doctest: +SKIP
>>> result.index.group_by("mechanism.reserve").len()                      # doctest: +SKIP

Re-running on the same folder resumes: runs whose folder says "complete" are skipped, the
others run again; an interrupted run is always redone, never kept as a failure, and a run
whose folder another process is writing is left alone (pending). A folder holding a
different sweep, or one another sweep is running on, is refused.

Interruptions: Ctrl-C, SIGTERM and SIGHUP stop the sweep alike (``Interrupted``, a
``KeyboardInterrupt``): nothing new starts, runs in flight stop and stay pending, the index is
written, and the exception goes on (the CLI exits 128 + the signal). A run interrupted in a
worker while the sweep itself goes on stays pending too; ``SweepResult.exit_code`` says so.
"""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

import polars as pl

from bidscape import __version__
from bidscape.errors import InputError, Interrupted, Problem
from bidscape.interrupts import stop_on_signals
from bidscape.outputs import run_state
from bidscape.outputs.lock import FolderLock, FolderLocked
from bidscape.sizing import check_sweep_fits
from bidscape.sweep import backends
from bidscape.sweep.backends import Task
from bidscape.sweep.index import SweepIndex, write_atomically
from bidscape.sweep.spec import SweepSpec, fingerprint_of
from bidscape.sweep.worker import Outcome


@dataclass(frozen=True)
class SweepResult:
    path: Path
    index: pl.DataFrame
    complete: int  # runs complete now, skipped ones included
    failed: int
    pending: int  # not finished: interrupted, or their folder is being written by another process
    skipped: int  # complete before this call
    interrupted_by: Optional[str] = None  # the signal that stopped a run of this sweep, e.g. "SIGTERM"

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0

    @property
    def exit_code(self) -> int:
        """The command's: 0 every run complete; 128 + the signal when an interrupted run is still
        pending (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); else 1 (failed, or left pending)."""
        if self.ok:
            return 0
        if self.pending and self.interrupted_by:
            return Interrupted(self.interrupted_by).exit_code
        return 1


def run_sweep(spec: SweepSpec, out: str | Path, backend: str = "local", workers: Optional[int] = None,
              address: Optional[str] = None, progress: bool = True, retry_failed: bool = True,
              size_check: bool = True) -> SweepResult:
    """Run every variant x seed of ``spec`` into ``out`` (resuming what is there) and return the index.

    ``backend="local"`` uses a process pool of ``workers`` (default: one per CPU; 1 runs in
    this process); ``"ray"`` a local Ray instance, or the cluster at ``address``. Failed runs
    are recorded, not raised. Ctrl-C, SIGTERM and SIGHUP leave a consistent index and raise
    ``KeyboardInterrupt`` (``bidscape.errors.Interrupted`` for the signals). Runs that cannot
    fit in memory as many at once as will run are refused first (``size_check=False``: try anyway).
    """
    out = Path(out)
    backends.check_backend(backend, workers, address)
    if size_check:
        check_sweep_fits(spec, backend, workers, address)
    hide_main, plugin_modules = backends.pool_settings(backend, workers)
    prepare_sweep_folder(out, spec)
    with _sweep_lock(out), stop_on_signals():
        index = SweepIndex(out, spec.swept_keys)
        tasks, skipped = plan(spec, out, index, retry_failed)
        index.write()
        interruptions: list[str] = []  # the signals that stopped runs in workers

        def record(task: Task, outcome: Outcome) -> None:
            status, wall_seconds, error = outcome
            if status == "interrupted":  # stopped mid-run: it still has to be done
                interruptions.append(error)
                status, error = "pending", f"interrupted by {error}"
            index.set(task.run_id, status, wall_seconds, error)
            index.write()
            advance(status)

        with _progress_bar(len(index.rows), skipped + index.count("failed"), index.count("failed"),
                           progress) as advance:
            try:
                if tasks and backend == "ray":
                    backends.run_ray(tasks, workers, address, record)
                elif tasks:
                    backends.run_local(tasks, workers, record, hide_main, tuple(plugin_modules))
            finally:
                frame = index.write()
    return SweepResult(out, frame, index.count("complete"), index.count("failed"), index.count("pending"), skipped,
                       interruptions[0] if interruptions else None)


def prepare_sweep_folder(out: Path, spec: SweepSpec) -> None:
    """Create ``out`` with ``sweep.json``, or check that the sweep there is this one."""
    spec_json = spec.to_json()
    sweep_file = out / "sweep.json"
    if out.exists() and not out.is_dir():
        raise InputError(Problem("--out", f"'{out}' exists and is not a folder", "choose another path"))
    if sweep_file.is_file():
        try:
            stored = json.loads(sweep_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as error:
            raise InputError(Problem("--out", f"'{sweep_file}' is unreadable ({error})",
                                     "use another folder for this sweep")) from None
        difference = _difference(fingerprint_of(stored), spec.fingerprint())
        if difference:
            raise InputError(Problem("--out", f"'{out}' holds a different sweep ({difference})",
                                     "use another folder (--out) for this sweep, or run the sweep that is there"))
        return
    if out.is_dir() and any(out.iterdir()):
        raise InputError(Problem("--out", f"'{out}' is not empty and holds no sweep (no sweep.json)",
                                 "use a new or empty folder"))
    try:
        out.mkdir(parents=True, exist_ok=True)
        document = {**spec_json, "version": __version__,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_atomically(sweep_file, lambda path: path.write_text(json.dumps(document, indent=2)))
    except OSError as error:
        raise InputError(Problem("--out", f"cannot write to '{out}' ({error.strerror or error})",
                                 "choose a folder you can write to")) from None


def plan(spec: SweepSpec, out: Path, index: SweepIndex, retry_failed: bool = True) -> tuple[list[Task], int]:
    """Index rows for every run and the runs still to do (seed by seed, so pairs finish together).

    Returns the tasks and how many runs were already complete.
    """
    todo: dict[str, Task] = {}
    skipped = 0
    for variant, seed in spec.runs:
        key = index.add(variant.name, seed, variant.values)
        scenario = variant.scenario.to_dict()
        state = run_state(out / key)
        if state.complete and state.manifest.get("scenario") == _with_seed(scenario, seed):
            index.set(key, "complete", state.manifest.get("wall_seconds"))
            skipped += 1
        elif state.status == "running":  # another process writes it (never clobbered): left pending
            index.set(key, "pending", error=f"in use: {state.reason}")
        elif state.status == "failed" and not state.interrupted and not retry_failed:
            index.set(key, "failed", error=state.reason)
        else:  # absent, corrupt, interrupted (however), failed, or another scenario
            todo[key] = Task(key, scenario, str(out / key), seed)
    order = {seed: i for i, seed in enumerate(spec.seeds)}
    tasks = sorted(todo.values(), key=lambda task: order[task.seed])  # stable: variants in order
    return tasks, skipped


def _with_seed(scenario: dict[str, Any], seed: int) -> dict[str, Any]:
    scenario = copy.deepcopy(scenario)
    scenario["run"]["seed"] = seed
    return json.loads(json.dumps(scenario))  # as a manifest stores it


def _difference(stored: dict[str, Any], new: dict[str, Any]) -> str:
    if stored["name"] != new["name"]:
        return f"sweep name '{stored['name']}', not '{new['name']}'"
    if stored["seeds"] != new["seeds"]:
        return f"seeds {stored['seeds']}, not {new['seeds']}"
    old_names = [v["name"] for v in stored["variants"]]
    new_names = [v["name"] for v in new["variants"]]
    if old_names != new_names:
        return f"variants {', '.join(old_names)}; this sweep has {', '.join(new_names)}"
    for old, now in zip(stored["variants"], new["variants"]):
        if old["scenario"] != now["scenario"]:
            return f"variant '{now['name']}' resolves to a different scenario"
    return ""


@contextmanager
def _sweep_lock(out: Path) -> Iterator[None]:
    """One sweep at a time on a folder: two would write the same index and run folders."""
    try:
        lock = FolderLock(out).acquire()
    except FolderLocked:
        raise InputError(Problem("--out", f"'{out}' is in use: another sweep is running on it",
                                 "wait for it to finish (the same command then resumes), or use another "
                                 "folder")) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _progress_bar(total: int, done: int, failed: int, enabled: bool) -> Iterator:
    counts = {"failed": failed}
    if not enabled:
        yield lambda status: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                        TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("eta"),
                        TimeRemainingColumn(), console=Console(stderr=True))
    with progress:
        bar = progress.add_task("runs", total=total, completed=done, failed=failed)

        def advance(status: str) -> None:
            if status == "pending":
                return
            counts["failed"] += status == "failed"
            progress.update(bar, advance=1, failed=counts["failed"])

        yield advance

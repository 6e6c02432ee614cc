"""Running a sweep: the folder, what is left to do, the backend, the index after every run.

>>> from bidscape.sweep import load_sweep, run_sweep                     # doctest: +SKIP
>>> result = run_sweep(load_sweep("data/sweeps/reserve.toml"), "runs/reserve", workers=2)  # doctest: +SKIP
>>> result.index.group_by("mechanism.reserve").len()                      # doctest: +SKIP

Re-running on the same folder resumes: runs whose folder says "complete" are skipped, the
others run again. A folder holding a different sweep is refused.
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
from bidscape.errors import InputError, Problem
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
    pending: int  # not finished (the sweep was interrupted)
    skipped: int  # complete before this call

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0


def run_sweep(spec: SweepSpec, out: str | Path, backend: str = "local", workers: Optional[int] = None,
              address: Optional[str] = None, progress: bool = True, retry_failed: bool = True,
              size_check: bool = True) -> SweepResult:
    """Run every variant x seed of ``spec`` into ``out`` (resuming what is there) and return the index.

    ``backend="local"`` uses a process pool of ``workers`` (default: one per CPU; 1 runs in
    this process); ``"ray"`` a local Ray instance, or the cluster at ``address``. Failed runs
    are recorded, not raised; Ctrl-C leaves a consistent index and raises ``KeyboardInterrupt``.
    Runs that cannot fit in memory as many at once as will run are refused first
    (``size_check=False``: try anyway).
    """
    out = Path(out)
    backends.check_backend(backend, workers, address)
    if size_check:
        check_sweep_fits(spec, backend, workers, address)
    prepare_sweep_folder(out, spec)
    index = SweepIndex(out, spec.swept_keys)
    tasks, skipped = plan(spec, out, index, retry_failed)
    index.write()

    def record(task: Task, outcome: Outcome) -> None:
        status, wall_seconds, error = outcome
        if status == "interrupted":  # stopped mid-run: it still has to be done
            status = "pending"
        index.set(task.run_id, status, wall_seconds, error)
        index.write()
        advance(status)

    with _progress_bar(len(index.rows), skipped + index.count("failed"), index.count("failed"),
                       progress) as advance:
        try:
            if tasks and backend == "ray":
                backends.run_ray(tasks, workers, address, record)
            elif tasks:
                backends.run_local(tasks, workers, record)
        finally:
            frame = index.write()
    return SweepResult(out, frame, index.count("complete"), index.count("failed"), index.count("pending"), skipped)


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
        manifest = _manifest(out / key)
        status = manifest.get("status")
        if status == "complete" and manifest.get("scenario") == _with_seed(scenario, seed):
            index.set(key, "complete", manifest.get("wall_seconds"))
            skipped += 1
        elif status == "failed" and not retry_failed:
            index.set(key, "failed", error=_error_line(manifest))
        else:
            todo[key] = Task(key, scenario, str(out / key), seed)
    order = {seed: i for i, seed in enumerate(spec.seeds)}
    tasks = sorted(todo.values(), key=lambda task: order[task.seed])  # stable: variants in order
    return tasks, skipped


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _with_seed(scenario: dict[str, Any], seed: int) -> dict[str, Any]:
    scenario = copy.deepcopy(scenario)
    scenario["run"]["seed"] = seed
    return json.loads(json.dumps(scenario))  # as a manifest stores it


def _error_line(manifest: dict[str, Any]) -> str:
    error = manifest.get("error") or {}
    return f"{error.get('type', 'Error')}: {error.get('message', 'failed')}"


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

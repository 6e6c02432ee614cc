"""Finding runs, groups and sweeps under a folder, reading only ``manifest.json`` and the sweep index.

No Streamlit here: the ``bidscape dashboard`` command checks the folder with it before
starting the server.

- a **run** is a folder with a complete ``manifest.json`` of an auction run;
- a **group** is a folder whose run sub-folders are seeds of one scenario (equal but for
  ``run.seed``, distinct seeds): a sweep variant, ``run-pair``'s baseline or treatment;
- a **sweep** is a folder with ``sweep.json`` (and ``index.arrow``); its variants are groups.

Failed, running, corrupt and non-auction run folders are listed as skipped, with why.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import polars as pl

from bidscape.outputs import MANIFEST_FILE, has_manifest, is_auction_run, run_state

ROOT_ENV = "BIDSCAPE_DASHBOARD_ROOT"
DEFAULT_ROOT = "runs"
MAX_DEPTH = 6  # how deep discovery looks under the root


def root_folder(argv: Optional[Sequence[str]] = None, environ: Optional[dict] = None) -> Path:
    """The folder to show: ``--root DIR`` after ``--`` on the streamlit command line, else
    ``$BIDSCAPE_DASHBOARD_ROOT``, else ``runs``."""
    argv = list(sys.argv if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == "--root" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--root="):
            return Path(arg.split("=", 1)[1])
    environ = os.environ if environ is None else environ
    return Path(environ.get(ROOT_ENV) or DEFAULT_ROOT)


@dataclass(frozen=True)
class Skipped:
    """A run folder the dashboard does not show, and why."""

    label: str
    status: str  # failed | running | interrupted | corrupt | unsupported
    message: str


@dataclass(frozen=True)
class Entry:
    """Something to look at: one run, a group of runs (seeds of one scenario), or a sweep."""

    kind: str  # run | group | sweep
    path: str
    label: str
    runs: int = 1  # run folders found (any status)
    complete: int = 1
    seeds: tuple[int, ...] = ()
    members: tuple[str, ...] = ()  # the paths given to bidscape.analysis
    skipped: tuple[Skipped, ...] = ()
    note: str = ""

    @property
    def source(self) -> tuple[str, ...]:
        return self.members or (self.path,)

    def title(self) -> str:
        if self.kind == "run":
            return f"{self.label} (seed {self.seeds[0]})" if self.seeds else self.label
        if self.kind == "group":
            return f"{self.label} ({self.complete} seed{'s' if self.complete != 1 else ''})"
        return f"{self.label} ({self.complete}/{self.runs} runs complete)"


@dataclass(frozen=True)
class Discovery:
    root: str
    entries: tuple[Entry, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    problem: str = ""  # why nothing can be shown, with the fix

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]

    def find(self, path: str) -> Optional[Entry]:
        return next((e for e in self.entries if e.path == path), None)


def read_manifest(folder: Path) -> tuple[str, Optional[dict], str]:
    """(status, manifest, message) of a run folder as the dashboard sees it (its state from
    ``bidscape.outputs.run_state``, the one manifest reader), without raising."""
    state = run_state(folder)
    if state.status == "corrupt":
        return "corrupt", None, f"{state.reason}; re-run the scenario into a new folder"
    if state.status == "interrupted":
        return "interrupted", state.manifest, (f"{state.reason}; {state.manifest.get('rounds_done', 0)} round(s) "
                                               "finished; re-run it with --overwrite")
    if state.status != "complete":
        return state.status, state.manifest, state.reason
    manifest = state.manifest
    from bidscape.games import game_of_manifest  # the games' modules load only when a folder is read

    game = game_of_manifest(manifest)
    if game is not None:
        return "unsupported", manifest, f"a {game.label} run; the dashboard shows auction runs"
    if not is_auction_run(manifest):
        return "unsupported", manifest, "its manifest has no auction scenario"
    return "complete", manifest, ""


def _scenario_key(manifest: dict) -> str:
    """The scenario without its seed: runs with equal keys are seeds of one group."""
    scenario = json.loads(json.dumps(manifest.get("scenario", {})))
    scenario.get("run", {}).pop("seed", None)
    return json.dumps(scenario, sort_keys=True)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder)
                      if e.is_dir() and not e.name.startswith((".", "__")))
    except OSError:
        return []


def discover(root: str | Path) -> Discovery:
    """Runs, groups and sweeps under ``root`` (reads manifests and sweep files only)."""
    root = Path(root).resolve()
    if not root.exists():
        return Discovery(str(root), problem=f"'{root}' does not exist. Fix: pass a folder of bidscape runs "
                                            "(`bidscape dashboard runs/`), or write one with `bidscape run`")
    if not root.is_dir():
        return Discovery(str(root), problem=f"'{root}' is not a folder. Fix: pass a folder of bidscape runs")
    entries: list[Entry] = []
    skipped: list[Skipped] = []

    def label_of(path: Path) -> str:
        relative = path.relative_to(root)
        return str(relative) if str(relative) != "." else (root.name or str(root))

    def run_entry(folder: Path) -> tuple[Optional[Entry], Optional[dict]]:
        status, manifest, message = read_manifest(folder)
        if status != "complete":
            skipped.append(Skipped(label_of(folder), status, message))
            return None, None
        entry = Entry("run", str(folder), label_of(folder), seeds=(int(manifest.get("seed", 0)),),
                      members=(str(folder),))
        entries.append(entry)
        return entry, manifest

    def visit(folder: Path, depth: int) -> list[Entry]:
        """Adds what is in ``folder``; returns the groups found in it."""
        children = _subfolders(folder)
        runs: list[tuple[Entry, str]] = []
        failed_before = len(skipped)
        found_run_folders = 0
        groups: list[Entry] = []
        for child in children:
            if has_manifest(child):
                found_run_folders += 1
                entry, manifest = run_entry(child)
                if entry is not None:
                    runs.append((entry, _scenario_key(manifest)))
            elif depth < MAX_DEPTH:
                groups.extend(visit(child, depth + 1))
        if runs and not (folder / "sweep.json").is_file():
            seeds = [e.seeds[0] for e, _ in runs]
            only_runs = found_run_folders == len(children)  # a lone run beside other folders is no group
            if (len({key for _, key in runs}) == 1 and len(set(seeds)) == len(seeds)  # seeds of one scenario
                    and (len(runs) > 1 or only_runs)):
                group = Entry("group", str(folder), label_of(folder), runs=found_run_folders, complete=len(runs),
                              seeds=tuple(sorted(seeds)), members=(str(folder),),
                              skipped=tuple(skipped[failed_before:]))
                entries.append(group)
                groups.append(group)
        if (folder / "sweep.json").is_file():
            entries.append(sweep_entry(folder, groups))
        return groups

    def sweep_entry(folder: Path, groups: list[Entry]) -> Entry:
        note, runs, complete = "", 0, sum(g.complete for g in groups)
        index = folder / "index.arrow"
        try:
            statuses = pl.read_ipc(index, columns=["status"]).get_column("status")
            runs = statuses.len()
            complete = int((statuses == "complete").sum())
        except Exception as error:  # no index yet, or unreadable: count what is on disk
            runs = sum(g.runs for g in groups)
            note = f"index.arrow unreadable ({type(error).__name__}); counted the run folders instead"
        members = tuple(g.path for g in groups)
        return Entry("sweep", str(folder), label_of(folder), runs=runs, complete=complete,
                     members=members, skipped=tuple(s for g in groups for s in g.skipped), note=note)

    if has_manifest(root):
        run_entry(root)
    else:
        visit(root, 0)
    order = {"sweep": 0, "group": 1, "run": 2}
    grouped = {e.path for e in entries if e.kind == "group"}
    # runs on their own first, then the seeds of groups
    entries.sort(key=lambda e: (order[e.kind], str(Path(e.path).parent) in grouped, e.label))
    problem = ""
    if not entries:
        what = f" ({len(skipped)} run folder(s) skipped: {skipped[0].label}: {skipped[0].message})" if skipped else ""
        problem = (f"'{root}' holds no complete bidscape run{what}. Fix: write one with "
                   "`bidscape run SCENARIO.toml --out {root}/NAME`, or pass the folder that holds your runs")
    return Discovery(str(root), tuple(entries), tuple(skipped), problem)


def _manifests_under(path: Path, depth: int = 0) -> list[Path]:
    if has_manifest(path):
        return [path / MANIFEST_FILE]
    if depth >= MAX_DEPTH:
        return []
    found: list[Path] = []
    for child in _subfolders(path):
        found.extend(_manifests_under(child, depth + 1))
    return found


def fingerprint(paths: Sequence[str]) -> tuple:
    """Cache key of a source: its run manifests and their modification times."""
    stamps = []
    for path in paths:
        for manifest in _manifests_under(Path(path)):
            try:
                stamps.append((str(manifest), manifest.stat().st_mtime_ns))
            except OSError:
                pass
    return tuple(stamps)

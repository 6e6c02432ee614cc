"""Where runs come from: one run folder, a group of runs (a folder of run folders), or a sweep.

A *group* is the runs of one arm over several seeds: a sweep's variant folder
(``OUT/VARIANT/seed-N/``), the ``baseline`` or ``treatment`` folder of ``run-pair``, or
any folder whose sub-folders are runs. Runs are labelled by their group and seed, so
two groups can be paired seed by seed (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from bidscape.api import Run
from bidscape.errors import InputError, Problem
from bidscape.outputs import has_manifest


@dataclass(frozen=True)
class RunRef:
    """One complete run, with the group it belongs to and its seed."""

    run: Run
    group: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.group}/seed-{self.seed}"


Source = Union[str, Path, Run, RunRef, Iterable]


def is_run_folder(path: Path) -> bool:
    return has_manifest(path)


def is_sweep_folder(path: Path) -> bool:
    return (path / "sweep.json").is_file()


def runs_of(source: Source) -> list[RunRef]:
    """The complete runs a source stands for, ordered by group then seed.

    A lone run is a group of its own, named after its folder; runs in a group folder
    belong to that folder's group.

    ``source`` is a run folder, a group folder, a sweep folder (every variant), a ``Run``,
    or a list of any of these. A folder that holds no run is an input error naming it.
    Incomplete or failed runs inside a group or sweep are skipped; a run folder named on its
    own must be complete.
    """
    if isinstance(source, RunRef):
        return [source]
    if isinstance(source, Run):
        return [RunRef(source, source.path.name, int(source.manifest["seed"]))]
    if isinstance(source, (str, Path)):
        return _runs_in(Path(source))
    refs: list[RunRef] = []
    for item in source:
        refs.extend(runs_of(item))
    return refs


def groups_of(source: Source) -> dict[str, list[RunRef]]:
    """The runs of a source, by group."""
    groups: dict[str, list[RunRef]] = {}
    for ref in runs_of(source):
        groups.setdefault(ref.group, []).append(ref)
    return groups


def _runs_in(path: Path) -> list[RunRef]:
    if not path.exists():
        raise InputError(Problem("", f"'{path}' does not exist", "point to a run, group or sweep folder"))
    if is_run_folder(path):
        run = Run(path)  # raises a clear error when incomplete or corrupt
        return [RunRef(run, path.name, int(run.manifest["seed"]))]
    if not path.is_dir():
        raise InputError(Problem("", f"'{path}' is not a folder", "point to a run, group or sweep folder"))
    refs: list[RunRef] = []
    group = path.name
    candidates = sorted(p for p in path.iterdir() if p.is_dir())
    for child in candidates:
        if is_run_folder(child):
            try:
                run = Run(child)
            except InputError:  # running, failed or corrupt: not part of the group's results
                continue
            refs.append(RunRef(run, group, int(run.manifest["seed"])))
        elif any(is_run_folder(g) for g in child.iterdir() if g.is_dir()):
            refs.extend(_runs_in(child))  # a sweep's variant folders
    if not refs:
        raise InputError(Problem("", f"'{path}' holds no complete bidscape run",
                                 "point to a run folder, a folder of runs, or a sweep folder"))
    return sorted(refs, key=lambda r: (r.group, r.seed))

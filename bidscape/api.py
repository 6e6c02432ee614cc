"""The Python API, mirroring the CLI: ``run(scenario, out=...) -> Run``.

>>> import bidscape
>>> scenario = bidscape.Scenario.from_toml("data/scenarios/second_to_first_price.toml")  # doctest: +SKIP
>>> result = bidscape.run(scenario, out="runs/switch")                                  # doctest: +SKIP
>>> result.market.select("round", "revenue", "mechanism")                               # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import polars as pl

from bidscape import __version__
from bidscape.loop.simulation import Simulation
from bidscape.errors import InputError, Problem
from bidscape.interrupts import stop_on_signals
from bidscape.outputs import MANIFEST_FILE, RunState, is_auction_run, run_state
from bidscape.outputs.columns import TABLES, extra_tables
from bidscape.outputs.recorder import Recorder
from bidscape.outputs.summary import RunTotals
from bidscape.outputs.tables import count_rows
from bidscape.scenario import Scenario
from bidscape.sizing import check_fits



class Run:
    """A finished run folder; its tables as polars frames (read on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        state = run_state(self.path)
        if state.status == "absent":
            raise InputError(Problem("", f"'{self.path}' is not a bidscape run folder (no manifest.json)",
                                     "point to a folder written by `bidscape run`"))
        if state.status == "corrupt":
            raise InputError(Problem("", f"'{self.path}' is corrupt: {state.reason}",
                                     "re-run the scenario into a new folder"))
        if state.status != "complete":
            raise InputError(Problem("", f"run '{self.path}' is not complete: it is {state.status} ({state.reason})",
                                     _incomplete_fix(state)))
        self.manifest: dict[str, Any] = state.manifest
        missing = verify_files(self.path, self.manifest)
        if missing:
            raise InputError(Problem("", f"run '{self.path}' says complete but {missing}",
                                     "re-run the scenario into a new folder (`bidscape run ... --out NEW`)"))

    def scan(self, table: str) -> pl.LazyFrame:
        """A lazy frame over one table (``market``, ``populations``, ``agents``, ``auctions``, or a
        strategy's own); nothing is loaded yet."""
        if table not in TABLES and not (self.path / f"{table}.arrow").is_file():
            raise ValueError(f"unknown table '{table}': use one of {', '.join(TABLES)}")
        return pl.scan_ipc(self.path / f"{table}.arrow")

    @property
    def market(self) -> pl.DataFrame:
        return self.scan("market").collect()

    @property
    def populations(self) -> pl.DataFrame:
        return self.scan("populations").collect()

    @property
    def agents(self) -> pl.DataFrame:
        return self.scan("agents").collect()

    @property
    def auctions(self) -> pl.DataFrame:
        return self.scan("auctions").collect()

    @property
    def summary(self) -> dict[str, Any]:
        return self.manifest["summary"]

    @property
    def scenario(self) -> Scenario:
        return Scenario.from_dict(self.manifest["scenario"], source=str(self.path / MANIFEST_FILE))

    def __repr__(self) -> str:
        return f"Run('{self.path}')"


def default_output_folder(name: str, root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path(root) / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = Path(root) / f"{name}-{stamp}-{suffix}"
    return candidate


def run(scenario: Scenario | str | Path, out: Optional[str | Path] = None, *, overwrite: bool = False,
        seed: Optional[int] = None, progress: bool = False, size_check: bool = True,
        threads: Optional[int] = None) -> Run:
    """Run a scenario to completion and return its output folder as a ``Run``.

    ``threads``: how many threads clear the auctions (default: every core this process may
    use; exact clearing uses at most two, ``bidscape.engine.pipeline``). Outputs are the same
    bytes whatever it is.

    A run that cannot fit in memory is refused before it starts (an ``InputError`` with the
    estimate, ``bidscape.sizing``); ``size_check=False`` tries anyway.

    ``out=None`` writes to a new temporary folder. An existing run folder is only replaced
    with ``overwrite=True``, and only once the new run is complete. A run that fails, or
    is stopped by Ctrl-C, SIGTERM or SIGHUP, leaves its folder with ``status = "failed"`` and
    the error in ``manifest.json`` (or, when replacing, the old run as it was).
    """
    if not isinstance(scenario, Scenario):
        scenario = Scenario.from_toml(scenario)
    if seed is not None:
        scenario = scenario.with_updates({"run.seed": seed})
    if size_check:
        check_fits(scenario)
    if out is None:
        out = Path(tempfile.mkdtemp(prefix=f"bidscape-{scenario.run.name}-"))
    return _play(scenario, Path(out), overwrite=overwrite, progress=progress, threads=threads)


def resume(folder: str | Path, *, progress: bool = False, threads: Optional[int] = None) -> Run:
    """Finish an interrupted run (killed, or stopped by a signal) in its own folder.

    The rounds it finished are played again without being written (every random number is
    a hash of the seed, so they come out the same), then the run goes on from its last whole
    round. The tables end byte-identical to those of a run that was never interrupted
    (strategies that call outside services, such as LLM proxies, are replayed from what they
    answer now: use their replay cache for the same guarantee).
    """
    folder = Path(folder)
    state = run_state(folder)
    if state.manifest is None or not is_auction_run(state.manifest):
        raise InputError(Problem("--resume", f"'{folder}' is not an auction run folder ({state.reason or state.status})",
                                 "point --resume to the folder of an interrupted `bidscape run`"))
    scenario = Scenario.from_dict(state.manifest["scenario"], source=str(folder / MANIFEST_FILE))
    return _play(scenario, folder, progress=progress, resume=True, threads=threads)


def _play(scenario: Scenario, out: Path, *, overwrite: bool = False, progress: bool = False,
          resume: bool = False, threads: Optional[int] = None) -> Run:
    names = [p.name for p in scenario.populations]
    channels = tuple(c.name for c in scenario.resolved_channels())
    with stop_on_signals(), Recorder(out, scenario.to_dict(), names, __version__, overwrite, channels,
                                     extra_tables(scenario), resume=resume) as recorder:
        simulation = Simulation(scenario, threads=threads)
        try:
            totals = RunTotals(simulation)
            with _progress_bar(scenario, progress) as advance:
                done = recorder.manifest["rounds_done"] if resume else 0
                while simulation.round < done:  # what the interrupted run wrote already
                    totals.add(simulation.step(None, advance))
                simulation.attach(recorder)
                while not simulation.finished:
                    totals.add(simulation.step(recorder, advance))
                    recorder.end_round(simulation.round)
        finally:
            simulation.close()
        recorder.complete(totals.summary())
    return Run(out)


def verify_files(folder: Path, manifest: dict[str, Any]) -> str:
    """What is wrong with a complete run's tables ('' when each file the manifest lists holds its rows)."""
    for table, rows in manifest.get("rows", {}).items():
        path = folder / f"{table}.arrow"
        if not path.is_file():
            return f"{path.name} is missing"
        try:
            found = count_rows(path)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            return f"{path.name} is unreadable ({error})"
        if found != rows:
            return f"{path.name} holds {found:,} rows where the manifest says {rows:,}"
    return ""


def _incomplete_fix(state: RunState) -> str:
    if state.status == "running":
        return "wait for it to finish"
    rounds = (state.manifest or {}).get("rounds_done")
    kept = (f"its {rounds} finished round(s) can be read with bidscape.outputs.read_table('{state.folder}/market.arrow'); "
            if state.interrupted and rounds else "")
    return kept + "re-run it (`bidscape run ... --overwrite`)"


def _progress_bar(scenario: Scenario, enabled: bool):
    if not enabled:
        return nullcontext(None)
    from bidscape.progress import auction_progress

    per_round = sum(c.auctions_per_round for c in scenario.resolved_channels())
    return auction_progress(scenario.run.rounds * per_round)

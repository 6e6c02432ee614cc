"""``run-pair``'s arms and folder: the treatment held over the whole run, and a predictable output folder.

**The treatment holds** (the default). A what-if asks "what if KEY were VALUE?", so the arms
must differ on KEY in every round and on nothing else. A scenario event that sets KEY would
otherwise set it to the same value in both arms from its round on (``reserve_price.toml``
raises the reserve to 0.5 at round 5: a treatment of 0.5 would then differ from the baseline
in rounds 0-4 only, and report half the effect). So the events' settings of the treated keys
are dropped from *both* arms: the baseline keeps the scenario's base value of KEY for the whole
run, the treatment VALUE; every other event still fires in both. ``hold=False`` keeps the
events as written; the comparison then names the rounds where the arms are equal.

**The folder** is ``runs/pair`` unless ``--out`` says otherwise. The same command on the same
folder resumes; a folder holding another pair is replaced only with ``--overwrite`` and only
when everything in it is a run-pair's (its runs checked with ``bidscape.outputs.run_state``,
none being written); anything else is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bidscape.analysis.events import drop_event_settings, equal_rounds, identical
from bidscape.errors import InputError, Problem
from bidscape.outputs import is_locked, run_state
from bidscape.outputs.lock import LOCK_FILE
from bidscape.outputs.manifest import foreign_entries
from bidscape.scenario import Scenario

DEFAULT_OUT = Path("runs") / "pair"
ARMS = ("baseline", "treatment")
_PAIR_FILES = {"sweep.json", "index.arrow", "index.csv", "report.html", LOCK_FILE}


def arms(base: Scenario, changes: dict[str, object], hold: bool = True) -> tuple[Scenario, list[str], list[str]]:
    """The baseline scenario to run both arms from, what was done to its events, and warnings.

    Raises an input error when the treatment leaves the arms equal in every round.
    """
    notes = ["--no-hold: the scenario's events fire in both arms as written, also on the treated keys"]
    if hold:
        raw, removed = drop_event_settings(base.to_dict(), list(changes))
        notes = [f"the treatment holds for the whole run: dropped from both arms {line} (--no-hold keeps it)"
                 for line in removed] or ["the treatment holds for the whole run (no event sets a treated key)"]
        if removed:
            base = Scenario.from_dict(raw, source="run-pair baseline")
    treatment = base.with_updates(changes, source="--treatment")
    a, b = base.to_dict(), treatment.to_dict()
    if identical(a, b):
        shown = ", ".join(f"{k} = {v!r}" for k, v in changes.items())
        raise InputError(Problem("--treatment", f"{shown} changes nothing: the arms would have the same settings "
                                 "in every round" + ("" if hold else " (the scenario's events set it)"),
                                 "treat a value that differs from the baseline's"
                                 + ("" if hold else ", or drop --no-hold")))
    return base, notes, [o.message() for o in equal_rounds(a, b)]


def prepare_out(out: Path, overwrite: bool, spec) -> None:
    """Refuse a folder that is neither empty, nor this pair (resumed), nor (with ``overwrite``) another pair."""
    from bidscape.sweep.runner import prepare_sweep_folder

    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    try:
        prepare_sweep_folder(out, spec)  # this very pair: the sweep machinery resumes it
        return
    except InputError as error:
        if not overwrite or not is_pair_folder(out):
            fix = "use --overwrite to replace it, or another --out" if is_pair_folder(out) else \
                "use --out with a new or empty folder (--overwrite only replaces a run-pair folder)"
            raise InputError(Problem("--out", error.problems[0].message, fix)) from None
    _check_replaceable(out)
    shutil.rmtree(out)


def is_pair_folder(out: Path) -> bool:
    import json

    try:
        stored = json.loads((out / "sweep.json").read_text())
        return [v["name"] for v in stored["variants"]] == list(ARMS)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_replaceable(out: Path) -> None:
    """Everything under ``out`` is a run-pair's: its files, and finished (not running) run folders."""
    if is_locked(out):
        raise InputError(Problem("--out", f"'{out}' is in use: another run-pair or sweep is running on it",
                                 "wait for it to finish, or use another --out"))
    foreign = [p.name for p in out.iterdir() if p.name not in _PAIR_FILES and p.name not in ARMS]
    for arm in ARMS:
        folder = out / arm
        if not folder.is_dir():
            continue
        for run in folder.iterdir():
            state = run_state(run)
            if state.status == "running":
                raise InputError(Problem("--out", f"'{run}' is in use: {state.reason}",
                                         "wait for that run to end, or use another --out"))
            if state.status in ("absent", "corrupt"):
                foreign.append(f"{arm}/{run.name}")
            else:
                foreign.extend(f"{arm}/{run.name}/{name}" for name in foreign_entries(run, state.manifest))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(Problem("--out", f"'{out}' holds files that are not a run-pair's ({shown}); "
                                 "--overwrite leaves it untouched", "move those files away, or use another --out"))

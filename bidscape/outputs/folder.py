"""The life of a run folder: claimed and locked, written, then complete or failed.

``RunFolder`` writes straight into a new or empty folder. With ``overwrite`` it replaces only
a folder that is provably a bidscape run (a valid run manifest, nothing but that run's
files, no live writer), and never before the new run has succeeded: the new run is written
into a sibling ``NAME.bidscape-new`` and swapped in on completion (atomically where the OS
can exchange two paths); if the new run fails, the sibling is removed and the old run stays
exactly as it was.

The manifest names its writer (pid, host, start time) and the writer holds an OS lock on the
folder for the whole run, so a second writer is refused, and a folder whose manifest still
says "running" when no process holds its lock reads as ``interrupted``.

Tables are Arrow IPC files written one record batch at a time, so whatever was written
before a kill stays on disk; the footer comes at completion (``tables.py``). After each
round the manifest records how many rounds are whole (``rounds_done``) and how many rows
each table had then (``rows``, at most every ``PROGRESS_SECONDS``), which is where
``--resume`` picks an interrupted run up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.ipc as ipc

from bidscape.errors import InputError, Interrupted, Problem
from bidscape.outputs.lock import LOCK_FILE, FolderLock, FolderLocked, writer_identity
from bidscape.outputs.manifest import MANIFEST_FILE, dumps, foreign_entries, run_state
from bidscape.outputs.tables import WRITE_OPTIONS, whole_batches

STAGING_SUFFIX = ".bidscape-new"
# How often the manifest records the rounds done: a manifest write costs about 3 ms here,
# as much as a whole round of 1e5 auctions, so short rounds are recorded in groups.
PROGRESS_SECONDS = 0.5


class RunFolder:
    """A run's folder: manifest running -> complete | failed, one Arrow writer per table.

    Use as a context manager around a run; ``complete(summary)`` marks success, and any
    exception (Ctrl-C and ``Interrupted`` included), also one while opening the files, marks
    it failed (or, when replacing an old run, leaves the old run as it was).
    """

    def __init__(self, out: Path, schemas: dict[str, pa.Schema], scenario: dict[str, Any], version: str,
                 overwrite: bool = False, *, resume: bool = False, **manifest: Any):
        self.target = Path(out)
        self._locks: list[FolderLock] = []
        self._schemas = schemas
        self._writers: dict[str, Any] = {}
        self._resumed: Optional[dict[str, Any]] = None  # the interrupted run's manifest, when resuming it
        try:
            if resume:
                self._reopen()
                return
            self.out = self._claim(overwrite)  # the target, or a sibling that replaces it on completion
        except BaseException:
            self._release_locks()
            raise
        try:  # from here on, any stop (a signal included) leaves a failed run or nothing
            self.rows = {table: 0 for table in schemas}
            self._clock = self._progress_written = time.perf_counter()
            self.manifest: dict[str, Any] = {
                "status": "running",
                **manifest,
                "version": version,
                "seed": scenario["run"]["seed"],
                "scenario": scenario,
                "started": _timestamp(time.time()),
                "finished": None,
                "wall_seconds": None,
                "writer": writer_identity(),
                "rounds_done": 0,
                "rows": dict(self.rows),  # rows of whole rounds, as of the last ``end_round``
            }
            self._write_manifest()
            for table, schema in schemas.items():
                self._writers[table] = ipc.new_file(str(self.out / f"{table}.arrow"), schema, options=WRITE_OPTIONS)
        except BaseException as error:
            self.fail(error)
            raise

    # ---- claiming the folder ----

    def _claim(self, overwrite: bool) -> Path:
        target = self.target
        self._created = not target.exists()
        if target.exists() and not target.is_dir():
            raise InputError(Problem("--out", f"'{target}' exists and is not a folder", "choose another path"))
        if target.is_dir() and _holds_more_than_a_lock(target):
            if not overwrite:
                raise InputError(Problem("--out", f"output folder '{target}' already exists and is not empty",
                                         "choose another folder, or pass --overwrite to replace the run in it"))
            _check_replaceable(target)
            self._lock(target)
            staging = target.with_name(target.name + STAGING_SUFFIX)
            if staging.exists():  # left by a replacement that was killed
                _check_replaceable(staging)
                self._lock(staging)
                shutil.rmtree(staging)
                self._release_last()
            _make_folder(staging)
            self._created = True
            self._lock(staging)
            return staging
        _make_folder(target)
        self._lock(target)
        return target

    def _reopen(self) -> None:
        """Continue an interrupted run in place: its tables are copied, up to the last whole round,
        into new files beside them (``.NAME.arrow.part``) that replace them only on completion, so
        a resume that is itself interrupted leaves the folder as it found it."""
        folder = self.out = self.target
        state = run_state(folder)
        if not state.interrupted:
            fix = {"complete": "nothing to resume", "running": "wait for it to finish",
                   "failed": "re-run it with --overwrite (a failed run is not resumable: it stopped on an error)"}
            raise InputError(Problem("--resume", f"'{folder}' is {state.status}, not interrupted ({state.reason})",
                                     fix.get(state.status, "point --resume to an interrupted run folder")))
        self._lock(folder)
        old = self._resumed = state.manifest
        if set(old["rows"]) != set(self._schemas):
            raise InputError(Problem("--resume", f"'{folder}' has tables {sorted(old['rows'])}, this version writes "
                                     f"{sorted(self._schemas)}", "re-run it with --overwrite"))
        self.rows = dict(old["rows"])
        self._clock = self._progress_written = time.perf_counter()
        self.manifest = {**old, "status": "running", "writer": writer_identity(), "error": None,
                         "resumed": [*old.get("resumed", []), {"at_round": old["rounds_done"],
                                                                "started": _timestamp(time.time())}]}
        try:
            self._write_manifest()
            for table, schema in self._schemas.items():
                self._writers[table] = writer = ipc.new_file(str(self._part(table)), schema, options=WRITE_OPTIONS)
                _copy_rows(folder / f"{table}.arrow", self.rows[table], writer)
        except BaseException as error:
            self.fail(error)
            raise

    def _part(self, table: str) -> Path:
        return self.out / f".{table}.arrow.part"

    def _lock(self, folder: Path) -> None:
        try:
            self._locks.append(FolderLock(folder).acquire())
        except FolderLocked:
            state = run_state(folder)
            who = state.reason if state.status == "running" else "another process"
            raise InputError(Problem("--out", f"'{folder}' is in use: {who}",
                                     "wait for that run to end, or write this one to another folder")) from None
        except OSError as error:
            raise InputError(Problem("--out", f"cannot lock '{folder}' ({error.strerror or error})",
                                     "choose a folder you can write to")) from None

    def _release_last(self) -> None:
        self._locks.pop().release()

    # ---- writing ----

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if error is not None and self.manifest["status"] == "running":
            self.fail(error)
        return False

    def write_batch(self, table: str, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writers[table].write_batch(batch)
            self.rows[table] += batch.num_rows

    def end_round(self, rounds_done: int) -> None:
        """Every table holds all rows of the first ``rounds_done`` rounds: record it (cheap: a small file)."""
        if self._resumed is not None:  # the tables on disk are still the interrupted run's until completion
            return
        self.manifest["rounds_done"] = rounds_done
        self.manifest["rows"] = dict(self.rows)
        now = time.perf_counter()
        if now - self._progress_written >= PROGRESS_SECONDS:
            self._write_manifest()
            self._progress_written = now

    def complete(self, summary: dict[str, Any]) -> None:
        for writer in self._writers.values():
            writer.close()  # an error here fails the run: never "complete" with a file unfinished
        if not all(lock.still_ours() for lock in self._locks):
            raise RuntimeError(f"the output folder '{self.target}' was removed or replaced while the run "
                               "was writing it; this run's results are lost")
        self.manifest["summary"] = summary
        self.manifest["rows"] = dict(self.rows)
        self.manifest.pop("error", None)
        if self._resumed is not None:
            for table in self._schemas:
                os.replace(self._part(table), self.out / f"{table}.arrow")
        self._finish("complete")
        if self.out != self.target:
            _swap(self.out, self.target)
            self.out = self.target
        self._release_locks()

    def fail(self, error: BaseException) -> None:
        """Close the files and say why the run stopped; never raises (notes on ``error`` say what happened)."""
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # a failed run keeps what it wrote; the manifest tells the truth
                pass
        try:
            if self.out != self.target:  # a replacement that failed: the old run stays as it was
                shutil.rmtree(self.out, ignore_errors=True)
                _note(error, f"'{self.target}' is unchanged: the run that was to replace it did not finish")
                return
            if self._resumed is not None:  # the interrupted run stays as it was, with this stop recorded
                for table in self._schemas:
                    self._part(table).unlink(missing_ok=True)
                self.manifest = {**self._resumed, "resumed": self.manifest.get("resumed", [])}
            elif not (self.out / MANIFEST_FILE).exists():  # it never started: leave nothing that looks like a run
                self._remove_own_files()
                return
            self.manifest["error"] = _describe(error)
            try:
                self._finish("failed")
                _note(error, f"the run folder '{self.out}' is marked status = \"failed\" "
                      "(the error and its traceback are in manifest.json)")
            except (OSError, ValueError) as write_error:
                _note(error, f"could not mark '{self.out}' as failed ({_reason(write_error)}); "
                      "it will read as interrupted")
        finally:
            self._release_locks()

    def _finish(self, status: str) -> None:
        self.manifest["status"] = status
        self.manifest["finished"] = _timestamp(time.time())
        self.manifest["wall_seconds"] = round(time.perf_counter() - self._clock, 3)
        self._write_manifest()

    def _write_manifest(self) -> None:
        """Replace manifest.json atomically; on any error (a full disk) leave no temporary file behind."""
        temporary = self.out / (MANIFEST_FILE + ".tmp")
        try:
            temporary.write_text(dumps(self.manifest), encoding="utf-8")
            os.replace(temporary, self.out / MANIFEST_FILE)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _remove_own_files(self) -> None:
        for name in [f"{table}.arrow" for table in self._writers] + [LOCK_FILE]:
            (self.out / name).unlink(missing_ok=True)
        if self._created:
            try:
                self.out.rmdir()
            except OSError:
                pass

    def _release_locks(self) -> None:
        while self._locks:
            self._release_last()


def _check_replaceable(folder: Path) -> None:
    """Raise unless ``folder`` is a bidscape run folder holding nothing but that run's files."""
    state = run_state(folder)
    if state.status in ("absent", "corrupt"):
        raise InputError(Problem("--out", f"'{folder}' is not a bidscape run folder ({state.reason}); "
                                 "--overwrite only replaces run folders, and leaves this one untouched",
                                 "choose another folder"))
    if state.status == "running":
        raise InputError(Problem("--out", f"'{folder}' is in use: {state.reason}",
                                 "wait for that run to end, or write this one to another folder"))
    foreign = foreign_entries(folder, state.manifest)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(Problem("--out", f"'{folder}' holds files that are not its run's ({shown}); "
                                 "--overwrite leaves it untouched", "move those files away, or choose another folder"))


def _copy_rows(path: Path, rows: int, writer: Any) -> None:
    """Copy the first ``rows`` rows of a table (whole batches: rounds never share one) to ``writer``."""
    try:
        _, batches = whole_batches(path)
        copied = 0
        for batch in batches:
            if copied >= rows:
                break
            writer.write_batch(batch.slice(0, rows - copied))
            copied += min(batch.num_rows, rows - copied)
    except (OSError, ValueError) as error:
        raise InputError(Problem("--resume", f"cannot read '{path}' ({error})", "re-run it with --overwrite")) from None
    if copied < rows:
        raise InputError(Problem("--resume", f"'{path}' holds {copied:,} rows; the manifest recorded {rows:,}",
                                 "re-run it with --overwrite"))


def _holds_more_than_a_lock(folder: Path) -> bool:
    """False for an empty folder, and for one a writer left before its first manifest (killed at
    the start): claiming it then only needs its lock, which ``_lock`` checks."""
    return any(entry.name not in (LOCK_FILE, MANIFEST_FILE + ".tmp") for entry in os.scandir(folder))


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(Problem("--out", f"cannot write to '{folder}' ({error.strerror or error})",
                                 "choose a folder you can write to")) from None


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _swap(new: Path, target: Path) -> None:
    """Put the complete run ``new`` at ``target`` and delete the old run there.

    Linux exchanges the two folders in one step (renameat2), so ``target`` always holds a
    whole run; elsewhere the old run is moved aside first.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None and renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(target),
                                           _RENAME_EXCHANGE) == 0:
        shutil.rmtree(new)  # now the old run
        return
    old = target.with_name(target.name + ".bidscape-old")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old)


def _describe(error: BaseException) -> dict[str, Any]:
    trace = "".join(traceback.format_exception(error))[-4000:]
    if isinstance(error, KeyboardInterrupt) and not isinstance(error, Interrupted):
        error = Interrupted("SIGINT")  # Ctrl-C
    return {
        "type": type(error).__name__,
        "message": str(error) or type(error).__name__,
        **({"signal": error.signal_name} if isinstance(error, Interrupted) else {}),
        "traceback": trace,
    }


def _note(error: BaseException, text: str) -> None:
    if hasattr(error, "add_note"):
        error.add_note(text)


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


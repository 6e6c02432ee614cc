"""Streams a run's outcomes to an output folder (the contract in DESIGN.md, section 3).

``manifest.json`` says ``"running"`` while the run goes, ``"failed"`` (with the error)
if it stops early for any reason, Ctrl-C included, and ``"complete"`` only after every
file is closed. The Arrow files are IPC (Feather v2), zstd-compressed, written one
record batch at a time, so memory stays flat in the number of rounds.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from bidscape.errors import InputError, Problem

OUTPUT_FILES = ("manifest.json", "market.arrow", "agents.arrow", "auctions.arrow")

MARKET_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("auctions", pa.int64()),
    ("sold", pa.int64()),
    ("revenue", pa.float64()),
    ("welfare", pa.float64()),
    ("mean_price", pa.float64()),
    ("reserve", pa.float64()),
    ("mechanism", pa.string()),
    ("bidders_per_auction", pa.int64()),
])

AGENT_COLUMNS = ("spend", "wins", "value", "utility", "budget_remaining", "multiplier")


def agents_schema(population_names: list[str]) -> pa.Schema:
    return pa.schema(
        [("round", pa.int32()), ("agent", pa.int64()),
         ("population", pa.dictionary(pa.int16(), pa.string()))]
        + [(c, pa.float64()) for c in AGENT_COLUMNS]
        + [("agents", pa.int64())]
    )


AUCTIONS_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("auction", pa.int64()),
    ("winner", pa.int64()),
    ("price", pa.float64()),
    ("top_bid", pa.float64()),
    ("second_bid", pa.float64()),
    ("winner_value", pa.float64()),
])


def prepare_output_folder(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse to reuse a non-empty folder unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise InputError(Problem("--out", f"'{out}' exists and is not a folder", "choose another path"))
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(Problem("--out", f"output folder '{out}' already exists and is not empty",
                                     "choose another folder, or pass --overwrite to replace it"))
        if not (out / "manifest.json").exists():
            raise InputError(Problem("--out", f"'{out}' is not a bidscape run folder (no manifest.json); "
                                     "--overwrite only replaces run folders", "choose another folder"))
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(Problem("--out", f"cannot write to '{out}' ({error.strerror or error})",
                                 "choose a folder you can write to")) from None


class Recorder:
    """Use as a context manager around a run; ``complete()`` marks success."""

    def __init__(self, out: Path, scenario: dict[str, Any], population_names: list[str],
                 version: str, overwrite: bool = False):
        self.out = Path(out)
        prepare_output_folder(self.out, overwrite)
        self.population_names = population_names
        self.rows = {"market": 0, "agents": 0, "auctions": 0}
        self._started = time.time()
        self._clock = time.perf_counter()
        self.manifest: dict[str, Any] = {
            "status": "running",
            "version": version,
            "seed": scenario["run"]["seed"],
            "scenario": scenario,
            "started": _timestamp(self._started),
            "finished": None,
            "wall_seconds": None,
            "rows": self.rows,
        }
        self._write_manifest()
        options = ipc.IpcWriteOptions(compression="zstd")
        self._agents_schema = agents_schema(population_names)
        self._writers = {
            "market": ipc.new_file(self.out / "market.arrow", MARKET_SCHEMA, options=options),
            "agents": ipc.new_file(self.out / "agents.arrow", self._agents_schema, options=options),
            "auctions": ipc.new_file(self.out / "auctions.arrow", AUCTIONS_SCHEMA, options=options),
        }
        self._population_dictionary = pa.array(population_names, pa.string())

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if error is not None:
            self.fail(error)
        return False

    # ---- writing ----
    def write_market(self, columns: dict[str, Any]) -> None:
        self._write("market", pa.record_batch(columns, schema=MARKET_SCHEMA))

    def write_agents(self, columns: dict[str, Any], population_codes) -> None:
        population = pa.DictionaryArray.from_arrays(pa.array(population_codes, pa.int16()),
                                                    self._population_dictionary)
        batch = pa.record_batch({**columns, "population": population}, schema=self._agents_schema)
        self._write("agents", batch)

    def write_auctions(self, columns: dict[str, Any]) -> None:
        self._write("auctions", pa.record_batch(columns, schema=AUCTIONS_SCHEMA))

    def _write(self, name: str, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writers[name].write_batch(batch)
            self.rows[name] += batch.num_rows

    # ---- ending ----
    def complete(self, summary: dict[str, Any]) -> None:
        for writer in self._writers.values():
            writer.close()  # an error here fails the run: never "complete" with a file unfinished
        self.manifest["summary"] = summary
        self._finish("complete")

    def fail(self, error: BaseException) -> None:
        self._close_writers()
        self.manifest["error"] = {
            "type": type(error).__name__,
            "message": str(error) or type(error).__name__,
            "traceback": "".join(traceback.format_exception(error))[-4000:],
        }
        self._finish("failed")

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:  # a failed run keeps what it wrote; the manifest tells the truth
                pass

    def _finish(self, status: str) -> None:
        self.manifest["status"] = status
        self.manifest["finished"] = _timestamp(time.time())
        self.manifest["wall_seconds"] = round(time.perf_counter() - self._clock, 3)
        self._write_manifest()

    def _write_manifest(self) -> None:
        temporary = self.out / "manifest.json.tmp"
        temporary.write_text(json.dumps(self.manifest, indent=2, default=_json_default))
        os.replace(temporary, self.out / "manifest.json")


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")

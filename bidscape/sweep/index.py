"""The sweep index: one row per run (``index.arrow``, and ``index.csv`` for people).

Columns: ``run_id`` ("VARIANT/seed-N"), ``variant``, ``seed``, ``path`` (relative to the
sweep folder), ``status`` (complete | failed | pending), ``wall_seconds`` (null unless
complete), ``error`` (a failed run's error, or why a run is still pending; else null), then
one column per swept key, named by the dotted key, holding the variant's value. Both files
are replaced atomically (a temporary file, then ``os.replace``), so a reader never sees half
an index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import polars as pl

from bidscape.errors import InputError, Problem

STATUSES = ("complete", "failed", "pending")
RUN_COLUMNS = {"run_id": pl.String, "variant": pl.String, "seed": pl.Int64, "path": pl.String,
               "status": pl.String, "wall_seconds": pl.Float64, "error": pl.String}


def run_id(variant: str, seed: int) -> str:
    """A run's id, which is also its folder relative to the sweep folder."""
    return f"{variant}/seed-{seed}"


class SweepIndex:
    """The rows of a sweep's index, kept in memory and written after every change."""

    def __init__(self, out: Path, swept_keys: list[str]):
        self.out = Path(out)
        self.swept_keys = list(swept_keys)
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, variant: str, seed: int, values: dict[str, Any]) -> str:
        key = run_id(variant, seed)
        self.rows[key] = {"run_id": key, "variant": variant, "seed": seed, "path": key, "status": "pending",
                          "wall_seconds": None, "error": None, "values": values}
        return key

    def set(self, key: str, status: str, wall_seconds: Optional[float] = None, error: Optional[str] = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        row = self.rows[key]
        row["status"] = status
        row["wall_seconds"] = wall_seconds if status == "complete" else None
        row["error"] = error if status != "complete" else None

    def count(self, status: str) -> int:
        return sum(row["status"] == status for row in self.rows.values())

    def frame(self) -> pl.DataFrame:
        rows = list(self.rows.values())
        columns = [pl.Series(name, [row[name] for row in rows], dtype=dtype) for name, dtype in RUN_COLUMNS.items()]
        columns += [_typed_column(key, [row["values"].get(key) for row in rows]) for key in self.swept_keys]
        return pl.DataFrame(columns)

    def write(self) -> pl.DataFrame:
        frame = self.frame()
        write_atomically(self.out / "index.arrow", lambda path: frame.write_ipc(path, compression="zstd"))
        write_atomically(self.out / "index.csv", lambda path: frame.write_csv(path))
        return frame


def write_atomically(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def read_index(out: str | Path) -> pl.DataFrame:
    """A sweep folder's index as a polars frame; an ``InputError`` naming the folder if it has none."""
    out = Path(out)
    path = out / "index.arrow"
    if not path.is_file():
        raise InputError(Problem("", f"'{out}' has no sweep index (index.arrow)",
                                 "point to a folder written by `bidscape sweep`"))
    try:
        frame = pl.read_ipc(path)
    except Exception as error:  # polars raises several kinds for a damaged file
        raise InputError(Problem("", f"the sweep index '{path}' is corrupt ({error})",
                                 "run the sweep again on the same folder to rewrite it")) from None
    missing = [name for name in RUN_COLUMNS if name not in frame.columns]
    if missing:
        raise InputError(Problem("", f"the sweep index '{path}' lacks columns {', '.join(missing)}",
                                 "run the sweep again on the same folder to rewrite it"))
    return frame


def _typed_column(name: str, values: Iterable[Any]) -> pl.Series:
    """One dtype per column: bool, int, float or string; anything else (or a mix) as text."""
    values = list(values)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Boolean)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Int64)
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series(name, [None if v is None else v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                            for v in values], dtype=pl.String)

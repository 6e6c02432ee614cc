"""The run manifest: its schema, the one reader, and what state a run folder is in.

A folder's state is read, never guessed from one field:

- ``complete``: the manifest says so (the files are checked by ``verify_files``);
- ``failed``: the run stopped with an error; ``interrupted`` is also true when a signal
  stopped it (Ctrl-C, SIGTERM, SIGHUP), since that run never finished rather than went wrong;
- ``running``: the manifest says running and the writer holds the folder's lock;
- ``interrupted``: the manifest says running but no process holds the lock: the writer was
  killed (SIGKILL, a crash, power loss). Every round it finished can still be read
  (``bidscape.outputs.read_table``);
- ``absent`` (no manifest) and ``corrupt`` (unreadable, or not a run manifest).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from bidscape.outputs.lock import LOCK_FILE, is_locked

MANIFEST_FILE = "manifest.json"


class WriterInfo(BaseModel):
    pid: int
    host: str


class RunManifest(BaseModel):
    """What every run manifest holds (auction runs and market games); more keys are allowed."""

    model_config = ConfigDict(extra="allow")

    status: Literal["running", "complete", "failed"]
    version: str
    seed: int
    scenario: dict[str, Any]
    started: str
    finished: Optional[str]
    wall_seconds: Optional[float]
    rows: dict[str, int]
    writer: Optional[WriterInfo] = None  # runs written before the lock existed have none
    error: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class RunState:
    folder: Path
    status: str  # complete | failed | running | interrupted | absent | corrupt
    manifest: Optional[dict[str, Any]]
    reason: str = ""  # one line: the error, who is writing, or why it is corrupt

    @property
    def interrupted(self) -> bool:
        """Stopped before its end without an error of its own: to be redone, never a failure."""
        if self.status == "interrupted":
            return True
        error = (self.manifest or {}).get("error") or {}
        return self.status == "failed" and error.get("type") in ("Interrupted", "KeyboardInterrupt")

    @property
    def complete(self) -> bool:
        return self.status == "complete"


def has_manifest(folder: str | Path) -> bool:
    """Whether ``folder`` is a run folder (it holds a manifest, in whatever state)."""
    return (Path(folder) / MANIFEST_FILE).is_file()


def is_auction_run(manifest: dict[str, Any]) -> bool:
    """Whether a readable manifest is an auction run's (its scenario has populations; a market
    game's says its own ``"kind"``)."""
    return "kind" not in manifest and "populations" in (manifest.get("scenario") or {})


def run_state(folder: str | Path) -> RunState:
    """The state of a run folder, read from its manifest and lock; never raises."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return RunState(folder, "absent", None, f"no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        RunManifest.model_validate(manifest)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return RunState(folder, "corrupt", None, f"{MANIFEST_FILE} is unreadable ({error})")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        return RunState(folder, "corrupt", manifest if isinstance(manifest, dict) else None,
                        f"{MANIFEST_FILE} is not a bidscape run manifest ({where}: {first['msg']})")
    status = manifest["status"]
    if status == "failed":
        error = manifest.get("error") or {}
        return RunState(folder, "failed", manifest, f"{error.get('type', 'Error')}: {error.get('message', '')}")
    if status == "running":
        writer = manifest.get("writer")
        if is_locked(folder, writer):
            who = f"pid {writer['pid']} on {writer['host']}" if writer else "another process"
            return RunState(folder, "running", manifest, f"being written by {who} since {manifest['started']}")
        who = f" (pid {writer['pid']} on {writer['host']})" if writer else ""
        return RunState(folder, "interrupted", manifest,
                        f"its writer{who} stopped without finishing: killed or crashed")
    return RunState(folder, "complete", manifest)


def run_files(manifest: dict[str, Any]) -> set[str]:
    """The names a run folder of this manifest may hold: nothing else is that run's."""
    tables = manifest.get("rows") or {}
    names = {MANIFEST_FILE, MANIFEST_FILE + ".tmp", LOCK_FILE}
    for table in tables:
        names |= {f"{table}.arrow", f".{table}.arrow.part"}
    return names


def foreign_entries(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Entries of ``folder`` that are not files of the run its manifest describes."""
    allowed = run_files(manifest)
    return sorted(entry.name + ("/" if entry.is_dir() else "") for entry in os.scandir(folder)
                  if entry.name not in allowed or not entry.is_file(follow_symlinks=False))


def dumps(manifest: dict[str, Any]) -> str:
    """Standard JSON (no NaN or Infinity: JavaScript's JSON.parse rejects them)."""
    return json.dumps(manifest, indent=2, default=_json_default, allow_nan=False)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None, so that it is standard JSON (``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"a non-finite number ({value}) cannot go into a manifest")
        return value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")

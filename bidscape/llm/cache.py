"""On-disk replay cache of chat completions.

One JSON file per request, ``<dir>/<key[:2]>/<key>.json``, the key being the SHA-256 of
the canonical JSON of ``(model, messages, temperature)``. A file holds the request and the
model's reply text, so a run can be replayed offline and entries can be read by people.

Writes are atomic (a temporary file in the same folder, fsync, ``os.replace``): a crash
leaves either no entry or a whole one. An entry that cannot be read or does not match its
request (truncated, hand-edited, a hash collision) is a *corrupt* lookup: callers treat it
as a miss and report it; a later successful store replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

FORMAT = 1


def request_key(model: str, messages: list[dict[str, str]], temperature: float) -> str:
    canonical = json.dumps({"model": model, "messages": messages, "temperature": float(temperature)},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Lookup:
    """A cache lookup: ``reply`` on a hit; on a miss ``reply`` is None and ``corrupt`` may say why."""

    key: str
    reply: Optional[str] = None
    corrupt: Optional[str] = None

    @property
    def hit(self) -> bool:
        return self.reply is not None


class ReplayCache:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, model: str, messages: list[dict[str, str]], temperature: float) -> Lookup:
        key = request_key(model, messages, temperature)
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return Lookup(key)
        except OSError as error:
            return Lookup(key, corrupt=f"cannot read cache entry {path} ({error.strerror or error})")
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return Lookup(key, corrupt=f"corrupt cache entry {path} (not JSON: {error})")
        problem = _check_entry(entry, key, model, messages, temperature)
        if problem:
            return Lookup(key, corrupt=f"corrupt cache entry {path} ({problem})")
        return Lookup(key, reply=entry["reply"])

    def put(self, model: str, messages: list[dict[str, str]], temperature: float, reply: str) -> str:
        key = request_key(model, messages, temperature)
        entry = {"format": FORMAT, "key": key, "model": model, "temperature": float(temperature),
                 "messages": messages, "reply": reply}
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(entry, ensure_ascii=False, indent=1).encode("utf-8")
        handle, temporary = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        return key


def _check_entry(entry: Any, key: str, model: str, messages: list[dict[str, str]], temperature: float) -> str:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("format") != FORMAT:
        return f"unknown format {entry.get('format')!r}"
    if entry.get("key") != key:
        return "key does not match the file name"
    if not isinstance(entry.get("reply"), str):
        return "no reply text"
    if entry.get("model") != model or entry.get("messages") != messages or entry.get("temperature") != float(temperature):
        return "stored request differs from this one"
    return ""

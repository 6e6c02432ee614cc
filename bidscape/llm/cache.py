"""On-disk replay cache of chat completions.

One JSON file per request, ``<dir>/<key[:2]>/<key>.json``, the key being the SHA-256 of
the canonical JSON of everything that can change an answer (``cache_request``): the
endpoint, the model, the messages, the temperature, the output-token limit and the
response format. Two servers never share entries by accident; to share them on purpose,
give both the same endpoint name (the strategy's ``cache_endpoint``). A file holds the
request and the model's reply text, so a run can be replayed offline and entries can be
read by people. Only replies that passed validation are stored (the caller's job).

Writes are atomic (a temporary file in the same folder, fsync, ``os.replace``): a crash
leaves either no entry or a whole one. An entry that cannot be read or does not match its
request (truncated, hand-edited, oversized, a hash collision) is a *corrupt* lookup:
callers treat it as a miss and report it; a later successful store replaces it. An entry
written by an older bidscape (format 1, keyed by model, messages and temperature only) is
never used: its lookup is a miss that says so (``outdated``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

FORMAT = 2


def cache_request(endpoint: str, model: str, messages: list[dict[str, str]], temperature: float,
                  max_tokens: Optional[int], response_format: Optional[dict[str, Any]]) -> dict[str, Any]:
    """What a cache entry is keyed on (the name of the token-limit field is not: it does not change answers)."""
    return {"endpoint": endpoint, "model": model, "messages": messages, "temperature": float(temperature),
            "max_tokens": max_tokens, "response_format": response_format}


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def request_key(request: dict[str, Any]) -> str:
    return _digest(request)


def _format1_key(request: dict[str, Any]) -> str:
    return _digest({"model": request["model"], "messages": request["messages"], "temperature": request["temperature"]})


@dataclass(frozen=True)
class Lookup:
    """A cache lookup: ``reply`` on a hit; on a miss ``reply`` is None and ``corrupt`` or ``outdated`` may say why."""

    key: str
    reply: Optional[str] = None
    corrupt: Optional[str] = None
    outdated: Optional[str] = None

    @property
    def hit(self) -> bool:
        return self.reply is not None


class ReplayCache:
    def __init__(self, directory: str | Path, max_reply_bytes: int = 1 << 20):
        self.directory = Path(directory)
        self.max_reply_bytes = max_reply_bytes
        # JSON escapes a byte in at most 6 characters; the request takes far less than 1 MiB
        self._max_file_bytes = 6 * max_reply_bytes + (1 << 20)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, request: dict[str, Any]) -> Lookup:
        key = request_key(request)
        path = self.path(key)
        try:
            size = path.stat().st_size
            if size > self._max_file_bytes:
                return Lookup(key, corrupt=f"corrupt cache entry {path} ({size} bytes, more than a reply of "
                              f"max_reply_bytes = {self.max_reply_bytes} can take)")
            raw = path.read_bytes()
        except FileNotFoundError:
            old = self.path(_format1_key(request))
            if old.exists():
                return Lookup(key, outdated=f"no entry for this request; {old} was written by an older bidscape "
                              "(cache keys now include the endpoint and the request settings): record again")
            return Lookup(key)
        except OSError as error:
            return Lookup(key, corrupt=f"cannot read cache entry {path} ({error.strerror or error})")
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            return Lookup(key, corrupt=f"corrupt cache entry {path} (not JSON: {type(error).__name__})")
        problem = _check_entry(entry, key, request, self.max_reply_bytes)
        if problem:
            return Lookup(key, corrupt=f"corrupt cache entry {path} ({problem})")
        return Lookup(key, reply=entry["reply"])

    def put(self, request: dict[str, Any], reply: str) -> str:
        key = request_key(request)
        entry = {"format": FORMAT, "key": key, "request": request, "reply": reply}
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


def _check_entry(entry: Any, key: str, request: dict[str, Any], max_reply_bytes: int) -> str:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("format") != FORMAT:
        return f"unknown format {entry.get('format')!r}"
    if entry.get("key") != key:
        return "key does not match the file name"
    reply = entry.get("reply")
    if not isinstance(reply, str):
        return "no reply text"
    if len(reply.encode("utf-8", "surrogatepass")) > max_reply_bytes:
        return f"reply larger than max_reply_bytes = {max_reply_bytes}"
    if entry.get("request") != request:
        return "stored request differs from this one"
    return ""

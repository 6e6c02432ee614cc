"""A minimal OpenAI-compatible chat-completions client (standard library only).

``ChatClient(base_url, model).complete(messages)`` POSTs ``{base_url}/chat/completions``
and returns the first choice's ``message.content``. Connection failures, timeouts, HTTP
408/429 and 5xx are retried with exponential backoff; anything else (other 4xx, a body
that is not a chat completion) fails at once. Failures raise ``BackendError``.

Connections are kept alive in a small pool (one per concurrent caller), so the client
may be used from several threads; ``close()`` closes them.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class BackendError(RuntimeError):
    """The backend gave no usable completion (after retries where they apply)."""

    def __init__(self, kind: str, message: str, attempts: int):
        self.kind = kind  # "connection", "timeout", "http", "malformed"
        self.attempts = attempts
        super().__init__(message)


@dataclass(frozen=True)
class Completion:
    text: str
    attempts: int  # HTTP requests made, retries included


class ChatClient:
    def __init__(self, base_url: str, model: str, *, api_key: Optional[str] = None, timeout_s: float = 30.0,
                 retries: int = 2, backoff_s: float = 0.5, backoff_max_s: float = 8.0,
                 max_tokens: Optional[int] = 256, response_format: Optional[dict[str, Any]] = None,
                 sleep: Callable[[float], None] = time.sleep):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "") + "/chat/completions"
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_tokens = max_tokens
        self.response_format = response_format
        self._sleep = sleep
        self._idle: "queue.LifoQueue[http.client.HTTPConnection]" = queue.LifoQueue()
        self._closed = False

    # ---- requests ----
    def body(self, messages: list[dict[str, str]], temperature: float) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def complete(self, messages: list[dict[str, str]], temperature: float = 0.0) -> Completion:
        if self._closed:
            raise BackendError("connection", "client is closed", 0)
        payload = json.dumps(self.body(messages, temperature)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempts = 0
        while True:
            attempts += 1
            try:
                status, data = self._post(payload, headers)
            except (socket.timeout, TimeoutError) as error:
                failure = BackendError("timeout", f"no reply within {self.timeout_s:g} s ({error or 'timed out'})",
                                       attempts)
            except (OSError, http.client.HTTPException) as error:
                failure = BackendError("connection", f"cannot reach {self.base_url} "
                                       f"({type(error).__name__}: {error})", attempts)
            else:
                if status == 200:
                    return Completion(_content(data, attempts), attempts)
                snippet = data[:200].decode("utf-8", "replace").replace("\n", " ")
                failure = BackendError("http", f"HTTP {status} from {self.base_url}: {snippet}", attempts)
                if status not in RETRY_STATUS:
                    raise failure
            if attempts > self.retries:
                raise failure
            self._sleep(min(self.backoff_s * 2 ** (attempts - 1), self.backoff_max_s))

    def _post(self, payload: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One request; a kept-alive connection the server has dropped is reopened once."""
        for fresh in (False, True):
            connection, reused = self._acquire(fresh)
            try:
                connection.request("POST", self._path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                connection.close()
                if reused:
                    continue  # stale keep-alive connection: try a new one, not a retry
                raise
            except BaseException:
                connection.close()
                raise
            if response.will_close or self._closed:
                connection.close()
            else:
                self._idle.put(connection)
            return response.status, data
        raise AssertionError("unreachable")

    def _acquire(self, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        if not fresh:
            try:
                return self._idle.get_nowait(), True
            except queue.Empty:
                pass
        if self._https:
            import ssl  # only for https (keeps the import of bidscape light)

            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s,
                                               context=ssl.create_default_context()), False
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s), False

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _content(data: bytes, attempts: int) -> str:
    try:
        envelope = json.loads(data)
        content = envelope["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        snippet = data[:200].decode("utf-8", "replace").replace("\n", " ")
        raise BackendError("malformed", f"response is not a chat completion: {snippet}", attempts) from None
    if not isinstance(content, str):
        raise BackendError("malformed", f"message content is {type(content).__name__}, not text", attempts)
    return content

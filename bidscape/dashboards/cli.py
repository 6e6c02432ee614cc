"""``bidscape dashboard [DIR]``: start the Streamlit dashboard on the runs under DIR.

Registered in ``bidscape/cli.py`` with ``app.command(name="dashboard")(dashboard)``.
Streamlit runs as a child process that ends with this one, however this one ends
(``bidscape.processes``); Ctrl-C, SIGTERM and SIGHUP stop it and wait for it.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import typer

from bidscape import processes
from bidscape.dashboards import APP
from bidscape.dashboards.discovery import ROOT_ENV, discover
from bidscape.errors import InputError, Problem
from bidscape.interrupts import stop_on_signals

EXTRA = "install the dashboard extra: pip install 'bidscape[dashboard]'"


def streamlit_command(folder: Path, port: int = 8501, host: str = "127.0.0.1", headless: bool = True) -> list[str]:
    """The command line that serves the dashboard on ``folder``."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
            "--", "--root", str(folder)]


def streamlit_env(folder: Path) -> dict[str, str]:
    """The environment for ``streamlit_command``: the folder also in ``$BIDSCAPE_DASHBOARD_ROOT``."""
    return {**os.environ, ROOT_ENV: str(folder)}


def streamlit_available() -> bool:
    return importlib.util.find_spec("streamlit") is not None


def check(folder: Path) -> str:
    """Raise an ``InputError`` with the fix unless the dashboard can start on ``folder``; else what it found."""
    if not folder.exists():
        raise InputError(Problem("DIR", f"folder '{folder}' does not exist",
                                 "pass the folder that holds your runs, e.g. `bidscape dashboard runs/` "
                                 "(write one with `bidscape run SCENARIO.toml --out runs/NAME`)"))
    if not folder.is_dir():
        raise InputError(Problem("DIR", f"'{folder}' is not a folder", "pass the folder that holds your runs"))
    if not streamlit_available():
        raise InputError(Problem("", "the dashboard needs streamlit, which is not installed", EXTRA))
    found = discover(folder)
    if found.problem:
        raise InputError(Problem("DIR", f"'{folder}' holds no complete bidscape run"
                                 + (f" ({len(found.skipped)} run folder(s) failed, running or not auction runs)"
                                    if found.skipped else ""),
                                 "pass the folder that holds your runs, or write one with "
                                 "`bidscape run SCENARIO.toml --out runs/NAME`"))
    counts = {kind: len(found.of_kind(kind)) for kind in ("run", "group", "sweep")}
    return ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items() if n)


def check_address(host: str, port: int) -> None:
    """Raise an ``InputError`` with the fix unless a server can listen on ``host``:``port`` now."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InputError(Problem("--port", f"{port!r} is not a port number (1 to 65535)", "use e.g. --port 8501"))
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        raise InputError(Problem("--host", f"'{host}' is not an address of this machine ({error})",
                                 "use 127.0.0.1, or 0.0.0.0 for every interface")) from None
    error = _bind_error(family, address)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        nearby = range(port + 1, min(port + 50, 65536))
        free = next((p for p in nearby if _bind_error(family, (address[0], p, *address[2:])) is None), None)
        raise InputError(Problem("--port", f"port {port} on {host} is in use (another dashboard or server)",
                                 f"stop that server, or use another port{f', e.g. --port {free}' if free else ''}"))
    if error.errno == errno.EACCES:
        raise InputError(Problem("--port", f"port {port} needs administrator rights on this machine",
                                 "use a port from 1024 up, e.g. --port 8501"))
    raise InputError(Problem("--host", f"cannot serve on '{host}' ({error.strerror or error})",
                             "use 127.0.0.1, 0.0.0.0 for every interface, or an address of this machine"))


def _bind_error(family: int, address: tuple) -> OSError | None:
    """Why a server could not listen on ``address`` (None: it could), tried with a socket closed at once."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if os.name == "posix":  # as servers do: a closed connection's TIME_WAIT does not block the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error
    return None


def dashboard(
    folder: Path = typer.Argument(Path("runs"), metavar="DIR", help="Folder of runs, groups and sweeps."),
    port: int = typer.Option(8501, help="Port to serve on (1 to 65535)."),
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0 for every interface)."),
    headless: bool = typer.Option(True, "--headless/--open", help="Do not open a browser (default), or open one."),
) -> None:
    """Browse runs, groups and sweeps in a Streamlit dashboard (needs the dashboard extra)."""
    found = check(folder)
    check_address(host, port)
    typer.echo(f"bidscape dashboard: {found} under {folder}; serving http://{host}:{port} (Ctrl-C to stop)",
               err=True)
    process = subprocess.Popen(processes.ending_with_parent(streamlit_command(folder.resolve(), port, host, headless)),
                               env=processes.child_env(streamlit_env(folder.resolve())))
    try:
        with stop_on_signals():
            code = process.wait()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: a server's normal stop (exit 0) once streamlit ends
        if processes.stop_child(process) == -signal.SIGKILL:
            typer.echo(f"bidscape dashboard: streamlit did not stop within {processes.GRACE:.0f} s and was killed",
                       err=True)
        return
    if code not in (0, -2, 130):
        raise typer.Exit(code)

"""``bidscape dashboard [DIR]``: start the Streamlit dashboard on the runs under DIR.

Registered in ``bidscape/cli.py`` with ``app.command(name="dashboard")(dashboard)``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import typer

from bidscape.dashboards import APP
from bidscape.dashboards.discovery import ROOT_ENV, discover
from bidscape.errors import InputError, Problem

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


def dashboard(
    folder: Path = typer.Argument(Path("runs"), metavar="DIR", help="Folder of runs, groups and sweeps."),
    port: int = typer.Option(8501, min=1, max=65535, help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0 for every interface)."),
    headless: bool = typer.Option(True, "--headless/--open", help="Do not open a browser (default), or open one."),
) -> None:
    """Browse runs, groups and sweeps in a Streamlit dashboard (needs the dashboard extra)."""
    found = check(folder)
    typer.echo(f"bidscape dashboard: {found} under {folder}; serving http://{host}:{port} (Ctrl-C to stop)",
               err=True)
    process = subprocess.Popen(streamlit_command(folder.resolve(), port, host, headless),
                               env=streamlit_env(folder.resolve()))
    try:
        code = process.wait()
    except KeyboardInterrupt:  # streamlit got the Ctrl-C too: let it shut down
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            code = process.wait()
        code = 0
    if code not in (0, -2, 130):
        raise typer.Exit(code)

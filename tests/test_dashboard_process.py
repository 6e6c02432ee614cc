"""``bidscape dashboard`` as a process (docs/dashboard.md): the port is checked before Streamlit
starts, and Streamlit ends with the command however the command ends (SIGTERM, SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from proc_state import alive

pytest.importorskip("streamlit")

import bidscape  # noqa: E402
from bidscape.dashboards.cli import check_address  # noqa: E402
from bidscape.errors import InputError  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from /proc")


@pytest.fixture
def root(tmp_path, write_scenario) -> Path:
    bidscape.run(write_scenario(), out=tmp_path / "runs" / "single")
    return tmp_path / "runs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]




def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_a_port_out_of_range_names_the_field_and_the_fix(root, bidscape_cli):
    result = bidscape_cli("dashboard", root, "--port", "70000")
    assert result.returncode == 2, result.stderr
    assert "--port: 70000 is not a port number (1 to 65535). Fix: use e.g. --port 8501" in result.stderr


def test_a_port_in_use_is_refused_with_a_free_one_to_use(root, bidscape_cli):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(InputError, match=rf"--port: port {port} on 127.0.0.1 is in use .*"
                                             r"Fix: stop that server, or use another port, e\.g\. --port \d+"):
            check_address("127.0.0.1", port)
        result = bidscape_cli("dashboard", root, "--port", port)
    assert result.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in result.stderr, result.stderr
    with pytest.raises(InputError, match=r"--host: 'no-such-host\.invalid' is not an address of this machine"):
        check_address("no-such-host.invalid", 8501)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_dashboard_takes_streamlit_along(root, signum):
    port = free_port()
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none", "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "bidscape.cli", "dashboard", str(root), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    servers: list[int] = []
    try:
        wait_for(lambda: serving(port) or process.poll() is not None, 90, "streamlit to serve")
        servers = children_of(process.pid)
        assert len(servers) == 1 and serving(port), process.communicate()
        process.send_signal(signum)
        output = "".join(process.communicate(timeout=20))  # the pipes close once streamlit has ended too
        wait_for(lambda: not alive(servers[0]), 5, "streamlit to end")
    finally:
        for pid in [process.pid, *servers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()
    assert not serving(port)
    check_address("127.0.0.1", port)  # the port is free again
    if signum == signal.SIGTERM:  # a server's normal stop
        assert process.returncode == 0, output

"""``bidscape.processes``: a child ends with its parent, SIGKILL included, also without the Linux
kernel's help (prctl), through the watchdog thread: the multiprocessing sentinel in a spawned
child, the parent pid in a ``python -m bidscape.processes`` child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proc_state import alive

from bidscape import processes

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from /proc")

# the child: no kernel signal, only the watchdog; prints its pid, then waits to be ended
CHILD = """
import os, sys, time
from bidscape import processes
processes._set_parent_death_signal = lambda signum: False
processes.end_with_parent({parent}, grace=1.0)
print(os.getpid(), flush=True)
time.sleep(120)
"""

# the parent: starts CHILD (a plain subprocess, or a spawned multiprocessing process) and waits
PARENT = """
import multiprocessing, os, subprocess, sys, time
from bidscape import processes

def child():
    exec({child!r})

if __name__ == "__main__":
    if sys.argv[1] == "spawn":
        multiprocessing.get_context("spawn").Process(target=child).start()
    else:
        subprocess.Popen([sys.executable, "-c", {subprocess_child!r}], env=processes.child_env())
    time.sleep(120)
"""




@pytest.mark.parametrize("how", ["spawn", "subprocess"])
def test_a_child_ends_with_its_killed_parent_without_prctl(tmp_path, how):
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(child=CHILD.format(parent="None"),
                                    subprocess_child=CHILD.format(parent=f"int(os.environ[{processes.PARENT_ENV!r}])")))
    parent = subprocess.Popen([sys.executable, str(script), how], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the child outlived its parent"
    finally:
        for pid in (parent.pid, child):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_ending_with_parent_wraps_a_module_command():
    command = [sys.executable, "-m", "streamlit", "run", "app.py"]
    assert processes.ending_with_parent(command) == [sys.executable, "-m", "bidscape.processes", "streamlit",
                                                     "run", "app.py"]
    with pytest.raises(ValueError, match="python -m MODULE"):
        processes.ending_with_parent(["streamlit", "run", "app.py"])
    assert processes.child_env({"A": "1"}) == {"A": "1", processes.PARENT_ENV: str(os.getpid())}

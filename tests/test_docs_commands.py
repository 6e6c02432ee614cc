"""Every shell command of README.md and docs/*.md runs, in order, as a user would type it.

Each document gets a fresh scratch folder holding copies of ``data/`` and ``examples/`` (the
paths the docs use) and, for the README, the scenario it writes as ``my.toml``; its ```bash
blocks then run line by line in that folder, in the order they appear, so a command that
reads what an earlier one wrote (``bidscape compare runs/pair/...`` after ``run-pair``) is
checked as the reader meets it. Some commands get smaller sizes appended (``SMALLER``); every
command that does not run is in ``SKIPPED`` with the reason, and a test checks that each
entry of both lists still matches a command, so nothing is skipped or shrunk silently.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (pattern searched in the command, why it is not run). Checked by test_every_skip_and_shrink_is_used.
SKIPPED = [
    (r"pip install|python3 -m venv", "installs packages"),
    (r"^bidscape dashboard", "starts a server (tests/test_dashboard_process.py runs it)"),
    (r"streamlit run", "starts a server"),
    (r"pytest", "runs the test suite (CI does)"),
    (r"--resume runs/killed", "needs a run killed mid-way (tests/test_run_folder.py resumes one)"),
]
EXTRAS = {r"train-rl": "torch", r"--backend ray": "ray", r"mesa_market\.py": "mesa"}  # skipped without the extra
# (pattern, arguments appended): the same command at a size that keeps this test within a couple of minutes
SMALLER = [
    (r"^bidscape run my\.toml", ["--set", "run.auctions_per_round=5000"]),
    (r"^bidscape run-pair ", ["--set", "run.auctions_per_round=2000", "--set", "populations.bidders.size=100",
                              "--workers", "1", "-q"]),
    (r"^bidscape train-rl ", ["--episodes", "2", "--set", "run.rounds=2", "-q"]),
]


def commands(document: Path) -> list[str]:
    """The commands of a document's ```bash blocks, in order: continuation lines joined, comments dropped."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", document.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(shlex.join(words))
    return found


def skip_reason(command: str) -> str | None:
    for pattern, reason in SKIPPED:
        if re.search(pattern, command):
            return reason
    for pattern, module in EXTRAS.items():
        if re.search(pattern, command) and importlib.util.find_spec(module) is None:
            return f"needs the {module} extra, not installed"
    return None


def smaller(command: str) -> list[str]:
    return [arg for pattern, extra in SMALLER if re.search(pattern, command) for arg in extra]


def first_toml_scenario(document: Path) -> str:
    return next(b for b in re.findall(r"```toml\n(.*?)```", document.read_text(encoding="utf-8"), re.S)
                if "[run]" in b)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_of_the_document_runs_in_order(document, tmp_path):
    todo = [c for c in commands(document) if skip_reason(c) is None]
    if not todo:
        pytest.skip("no command to run")
    shutil.copytree(ROOT / "data", tmp_path / "data")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    if document.name == "README.md":  # "Write a scenario", then `bidscape validate my.toml`
        (tmp_path / "my.toml").write_text(first_toml_scenario(document))
    bin_dir = Path(sys.executable).parent  # bidscape and python of this environment, as after `pip install`
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "NUMBA_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}  # this checkout
    for command in todo:
        line = command + "".join(" " + shlex.quote(a) for a in smaller(command))
        result = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=240)
        assert result.returncode == 0, f"{document.name}: `{line}` failed ({result.returncode}):\n" \
                                       f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def test_every_skip_and_shrink_is_used():
    every = [c for d in DOCUMENTS for c in commands(d)]
    for pattern, _ in SKIPPED + SMALLER:
        assert any(re.search(pattern, c) for c in every), f"'{pattern}' matches no documented command"
    for pattern in EXTRAS:
        assert any(re.search(pattern, c) for c in every), f"'{pattern}' matches no documented command"


def test_the_commands_are_found():
    readme = commands(ROOT / "README.md")
    pair = next(i for i, c in enumerate(readme) if c.startswith("bidscape run-pair"))
    assert readme[pair + 1].startswith("bidscape compare runs/pair/baseline runs/pair/treatment")
    assert skip_reason(readme[0]) == "installs packages"
    assert all(not c.startswith("#") for d in DOCUMENTS for c in commands(d))

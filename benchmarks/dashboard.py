"""How fast the dashboard opens a big run: the Overview's data, the Overview page, the agent sample.

Run from the repository root:

    python benchmarks/dashboard.py                           # 1e6 agents x 24 rounds (about a minute)
    python benchmarks/dashboard.py --agents 1e7              # 1e7 agents: agents.arrow holds 2.4e8 rows
    python benchmarks/dashboard.py --reuse /tmp/big-run      # time an existing run folder (no simulation)

It writes the run (``demo.toml`` scaled: 80% paced, 20% brand advertisers, ``--rounds``
rounds of ``--auctions-per-round`` second-price auctions, every agent recorded) in a
child process, so this process's peak memory is the dashboard's only, then times, each
with a cold ``st.cache_data``:

1. the Overview's loaders: discovery of the folder, the run's options (manifest), the
   headline metrics (``market.arrow`` and ``populations.arrow``; never ``agents.arrow``);
2. the Overview page through ``AppTest`` (the real app script), cold then warm;
3. the Distributions page's agent sample (``agent_sample`` streams ``agents.arrow``,
   keeping at most ``--sample`` rows of one round), as a loader and through ``AppTest``.

It prints seconds and the peak resident set (``ru_maxrss``) after each step.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def write_run(out: Path, agents: int, rounds: int, auctions: int, record: str) -> float:
    paced = int(agents * 0.8)
    settings = [f"run.rounds={rounds}", f"run.auctions_per_round={auctions}", f"run.record_agents={record}",
                f"populations.paced.size={paced}", f"populations.brand.size={agents - paced}"]
    command = [sys.executable, "-m", "bidscape.cli", "run", str(files("bidscape") / "scenarios" / "demo.toml"),
               "--out", str(out), "-q", "--overwrite"]
    for setting in settings:
        command += ["--set", setting]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def quiet() -> None:
    """No "no runtime" warnings: there is no Streamlit server here, on purpose (AppTest resets the level)."""
    if "streamlit" in sys.modules:
        from streamlit import logger

        logger.set_log_level("error")


def timed(label: str, function, rows: list):
    quiet()
    started = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    rows.append((label, seconds, peak_mb()))
    print(f"{label:<48} {seconds:8.2f} s   peak RSS {peak_mb():8.0f} MB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=float, default=1e6)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--auctions-per-round", type=float, default=1e6)
    parser.add_argument("--record-agents", default="agent", choices=("agent", "population", "none"))
    parser.add_argument("--sample", type=int, default=50_000, help="agent sample cap (the page's default)")
    parser.add_argument("--reuse", type=Path, help="an existing run folder: skip the simulation")
    parser.add_argument("--out", type=Path, help="where to write the run (default: a temporary folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    parser.add_argument("--timeout", type=float, default=600, help="AppTest timeout per page run (s)")
    args = parser.parse_args()

    temporary = None
    if args.reuse:
        run = args.reuse
        print(f"reusing {run}")
    else:
        if args.out:
            run = args.out
        else:
            temporary = Path(tempfile.mkdtemp(prefix="bidscape-dashboard-bench-"))
            run = temporary / "run"
        print(f"writing {int(args.agents):,} agents x {args.rounds} rounds x {int(args.auctions_per_round):,} "
              f"auctions (record_agents={args.record_agents}) to {run} ...", flush=True)
        seconds = write_run(run, int(args.agents), args.rounds, int(args.auctions_per_round), args.record_agents)
        print(f"{'simulation (child process)':<48} {seconds:8.2f} s", flush=True)
    print(f"run folder: {folder_size(run) / 1e9:.2f} GB "
          f"(agents.arrow {(run / 'agents.arrow').stat().st_size / 1e9:.2f} GB)\n", flush=True)

    started = time.perf_counter()
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    quiet()
    from bidscape.dashboards import APP, data
    imports = time.perf_counter() - started
    os.environ[data.ROOT_ENV] = str(run)
    rows: list = []
    print(f"{'step':<48} {'time':>10}   {'':>8}", flush=True)
    print(f"{'import streamlit, bidscape.dashboards':<48} {imports:8.2f} s   peak RSS {peak_mb():8.0f} MB")

    quiet()
    st.cache_data.clear()

    def overview_data():
        found = data.discover(run)
        entry = found.entries[0]
        data.options(entry)
        return entry, data.headline_view(entry.source)

    entry, headline = timed("Overview loaders, cold cache", overview_data, rows)
    timed("Overview loaders, warm cache", overview_data, rows)

    quiet()
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=args.timeout)
    timed("Overview page (AppTest), cold cache", at.run, rows)
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    assert {m.label for m in at.metric} >= {"Revenue", "Efficiency"}
    timed("Overview page (AppTest), warm cache", at.run, rows)

    last = int(data.options(entry).rounds) - 1
    quiet()
    st.cache_data.clear()
    sample = timed(f"agent sample (n <= {args.sample:,}), cold cache",
                   lambda: data.agent_sample(entry.source, last, args.sample), rows)
    print(f"  sampled {sample.height:,} agent rows of round {last}")
    quiet()
    st.cache_data.clear()
    at.switch_page("views/distributions.py")
    timed("Distributions page (AppTest), cold cache", at.run, rows)
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    timed("Distributions page (AppTest), warm cache", at.run, rows)

    print(f"\nheadline: revenue {headline['revenue'][0]:,.0f}, efficiency {headline['efficiency'][0]:.4f}")
    if temporary is not None and not args.keep:
        shutil.rmtree(temporary)
    elif temporary is not None:
        print(f"kept {run}")


if __name__ == "__main__":
    main()

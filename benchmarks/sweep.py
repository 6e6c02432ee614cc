"""Sweep throughput: the same 16-run sweep on 1 worker (in this process) and on 2 worker processes.

Run from the repository root:

    python benchmarks/sweep.py                       # local backend: workers=1 vs workers=2
    python benchmarks/sweep.py --backend ray         # Ray (a local instance, started before timing)
    python benchmarks/sweep.py --rounds 12 --json sweep.json

The sweep: 4 reserves x 4 seeds of a pacing market (20,000 agents, 8 bidders per auction,
``--rounds`` x ``--auctions`` second-price auctions), sized so one run takes a few seconds.
A warm-up run first fills numba's cache, so neither timing includes compilation (worker
processes still pay their start-up: imports and loading the cached kernels). Both sweeps
must write byte-identical Arrow files; the benchmark checks it. The ideal speed-up with two
workers is 2x on two free cores.
"""

from __future__ import annotations

import os

os.environ.update({name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")})  # one thread per process, as workers run

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import bidscape  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402
from bidscape.sweep import SweepSpec, run_sweep  # noqa: E402

RESERVES = (0.0, 0.2, 0.4, 0.6)
SEEDS = (1, 2, 3, 4)


def scenario(rounds: int, auctions: int, agents: int) -> Scenario:
    return Scenario.from_dict({
        "run": {"name": "sweep-bench", "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": "population", "auction_sample_rate": 0.001},
        "mechanism": {"type": "second_price"},
        "market": {"bidders_per_auction": 8},
        "populations": [{"name": "advertisers", "size": agents, "strategy": "adaptive_pacing",
                         "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
                         "budget": {"dist": "uniform", "low": 50.0, "high": 150.0},
                         "params": {"step": 0.05}}],
    })


def timed_sweep(spec: SweepSpec, out: Path, backend: str, workers: int) -> float:
    start = time.perf_counter()
    result = run_sweep(spec, out, backend=backend, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    if result.failed or result.pending:
        raise SystemExit(f"the sweep in {out} did not complete: {result.index.filter(status='failed')}")
    return elapsed


def arrow_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/seed-*/*.arrow"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--rounds", type=int, default=32)
    parser.add_argument("--auctions", type=float, default=1_000_000, help="auctions per round")
    parser.add_argument("--agents", type=float, default=20_000)
    parser.add_argument("--json", type=Path, help="save settings and timings here")
    args = parser.parse_args()
    base = scenario(args.rounds, int(args.auctions), int(args.agents))
    spec = SweepSpec.from_scenario(base, {f"reserve={r:g}": {"mechanism.reserve": r} for r in RESERVES},
                                   list(SEEDS), "sweep-bench")
    console = Console()
    load = os.getloadavg()[0]  # others' work, before ours adds to it
    runs = len(RESERVES) * len(SEEDS)
    console.print(f"[bold]sweep benchmark[/]: {runs} runs of {base.total_agents:,} agents, {args.rounds} rounds x "
                  f"{int(args.auctions):,} auctions; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bidscape-sweep-bench-") as folder:
        root = Path(folder)
        start = time.perf_counter()
        bidscape.run(base, out=root / "warm-up", seed=0)  # fills numba's cache; also times one run
        one_run = time.perf_counter() - start
        ray_start = None
        if args.backend == "ray":
            import logging

            import ray

            start = time.perf_counter()
            ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)
            ray_start = time.perf_counter() - start
        timings = {}
        try:
            timings[1] = timed_sweep(spec, root / "one", "local", 1)
            timings[2] = timed_sweep(spec, root / "two", args.backend, 2)
        finally:
            if args.backend == "ray":
                ray.shutdown()
        identical = arrow_bytes(root / "one") == arrow_bytes(root / "two")
    table = Table(title="16-run sweep", header_style="bold")
    for column in ("workers", "backend", "wall s", "s per run", "speed-up"):
        table.add_column(column, justify="right")
    table.add_row("1", "in process", f"{timings[1]:.1f}", f"{timings[1] / runs:.2f}", "1.00x")
    table.add_row("2", args.backend, f"{timings[2]:.1f}", f"{timings[2] / runs:.2f}", f"{timings[1] / timings[2]:.2f}x")
    console.print(table)
    console.print(f"one run (warm-up, in process, compile included if the cache was cold): {one_run:.2f} s"
                  + (f"; ray.init: {ray_start:.1f} s (not in the timings)" if ray_start is not None else ""))
    console.print(f"outputs byte-identical between 1 and 2 workers: {'yes' if identical else '[red]NO[/]'}")
    console.print(f"load average (1 min) before the benchmark: {load:.2f} on {os.cpu_count()} CPUs"
                  + (" [yellow](other work was running: timings are noisy)[/]" if load > 0.5 else ""))
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items() if k != "json"},
                                         "runs": runs, "cpus": os.cpu_count(), "one_run_s": one_run,
                                         "wall_s": {str(k): v for k, v in timings.items()},
                                         "speed_up": timings[1] / timings[2], "identical": identical,
                                         "load_average": load}, indent=2))
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

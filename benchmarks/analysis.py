"""What `bidscape.analysis` costs on a big run, against loading the agents table eagerly.

Run from the repository root:

    python benchmarks/analysis.py                        # 1e6 agents x 24 rounds, agents recorded
    python benchmarks/analysis.py --agents 1e7 --record none
    python benchmarks/analysis.py --reuse runs/bench-analysis   # time an existing run again

It writes a run (or reuses one), then times each analysis function in a fresh process
(so the peak memory is the function's own) and, as the baseline, an eager
``pl.read_ipc("agents.arrow")`` followed by the same per-population sums (the
"load it whole" approach the analysis library avoids). Reported: seconds and peak
resident memory (VmHWM) per function, and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

CALLS = {
    "market by round": "analysis.market(path)",
    "populations by round": "analysis.populations(path, by=('round', 'population'))",
    "headline": "analysis.headline(path)",
    "prices": "analysis.prices(path)",
    "agent_sample 100k": "analysis.agent_sample(path, n=100_000)",
    "baseline: read agents whole": "pl.read_ipc(f'{path}/agents.arrow').group_by('round', 'population')"
                                   ".agg(pl.col('spend').sum())",
}

PROBE = """
import resource, sys, time
import polars as pl
from bidscape import analysis
path = sys.argv[1]
start = time.perf_counter()
result = {call}
seconds = time.perf_counter() - start
peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024
print(seconds, peak, len(result))
"""


def write_run(agents: int, rounds: int, auctions: int, record: str, out: Path) -> Path:
    import bidscape

    scenario = bidscape.Scenario.from_dict({
        "run": {"name": "bench-analysis", "seed": 1, "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": record, "auction_sample_rate": 0.001},
        "mechanism": {"type": "second_price", "reserve": 0.1},
        "market": {"bidders_per_auction": 8},
        "populations": [
            {"name": "paced", "size": agents // 2, "strategy": "adaptive_pacing",
             "values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
             "budget": {"dist": "uniform", "low": 1.0, "high": 3.0}},
            {"name": "brand", "size": agents - agents // 2, "strategy": "truthful",
             "values": {"dist": "lognormal", "mean": -0.3, "sigma": 0.5}},
        ],
    })
    start = time.perf_counter()
    bidscape.run(scenario, out=out, overwrite=True, progress=True)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=float, default=1e6)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--auctions", type=float, default=1e6, help="auctions per round")
    parser.add_argument("--record", choices=("agent", "population", "none"), default="agent")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-analysis"))
    parser.add_argument("--reuse", type=Path, default=None, help="time an existing run folder instead")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    path = args.reuse or write_run(int(args.agents), args.rounds, int(args.auctions), args.record, args.out)
    has_agents = (path / "agents.arrow").is_file() and \
        json.loads((path / "manifest.json").read_text())["scenario"]["run"]["record_agents"] == "agent"
    size = sum(f.stat().st_size for f in path.glob("*.arrow"))
    results = {}
    for name, call in CALLS.items():
        if not has_agents and ("agent" in call):
            continue
        done = subprocess.run([sys.executable, "-c", PROBE.format(call=call), str(path)], capture_output=True,
                              text=True, check=True)
        seconds, peak, rows = done.stdout.split()
        results[name] = {"seconds": float(seconds), "peak_mb": int(peak) / 1e6, "rows": int(rows)}

    manifest = json.loads((path / "manifest.json").read_text())
    table = Table(title=f"bidscape.analysis on {manifest['scenario']['run']['rounds']} rounds x "
                        f"{sum(p['size'] for p in manifest['scenario']['populations']):,} agents "
                        f"(files {size / 1e6:,.0f} MB, record_agents = {manifest['scenario']['run']['record_agents']})")
    for column in ("call", "seconds", "peak MB", "rows out", "time vs baseline", "memory vs baseline"):
        table.add_column(column, justify="left" if column == "call" else "right")
    base = results.get("baseline: read agents whole")
    for name, r in results.items():
        table.add_row(name, f"{r['seconds']:.2f}", f"{r['peak_mb']:,.0f}", f"{r['rows']:,}",
                      f"{r['seconds'] / base['seconds']:.2f}x" if base else "-",
                      f"{r['peak_mb'] / base['peak_mb']:.2f}x" if base else "-")
    Console().print(table)
    print("Each call in a fresh process (imports included in the peak, not in the seconds).")
    if args.json:
        args.json.write_text(json.dumps({"run": str(path), "files_bytes": size, "results": results}, indent=2))


if __name__ == "__main__":
    main()

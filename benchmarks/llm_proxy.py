"""Overhead of LLM-proxy bidders per round, against adaptive pacing, with the local server.

Run from the repository root:

    python benchmarks/llm_proxy.py                    # 1,000 + 1,000 agents, 20k auctions, 30 rounds
    python benchmarks/llm_proxy.py --delay-ms 200     # pretend the model takes 200 ms per reply
    python benchmarks/llm_proxy.py --agents 10000 --auctions 200000 --json llm_proxy.json

The market: one population of ``--agents`` advertisers with the strategy under test
(budgets uniform 20..60, value scales uniform 0.8..1.2) and as many truthful ones, second
price, nothing recorded. Variants of the tested population:

- ``adaptive_pacing``: the baseline (dual-gradient pacing, numpy only).
- ``llm_proxy live``: one chat completion per archetype per round from the built-in
  server (``bidscape.llm.testing``, a deterministic pacing rule that answers in well
  under a millisecond unless ``--delay-ms`` is set), no cache.
- ``llm_proxy record``: the same with the replay cache on (each reply fsync'ed to disk).
- ``llm_proxy replay``: the recorded run again, from the cache, no network.

For each: rounds/s (best of ``--repeats`` whole runs, after a warm-up run for numba), ms per
round, the overhead per round over the baseline, the ratio baseline rounds/s / variant
rounds/s, and the time spent inside the strategy (``decide`` + ``observe``) per round.
The proxies' multipliers differ from pacing's, so the whole-round difference also
contains some market difference; the strategy column is the proxy's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bidscape.bidders import STRATEGIES  # noqa: E402
from bidscape.bidders.llm_proxy import LlmProxy  # noqa: E402
from bidscape.loop.simulation import Simulation  # noqa: E402
from bidscape.llm.testing import ChatServer, Reply, pacing_reply  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402

if "llm_proxy" not in STRATEGIES:
    STRATEGIES.register("llm_proxy", LlmProxy)


def scenario(strategy: str, params: dict, args: argparse.Namespace, rounds: int) -> Scenario:
    common = {"values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
              "value_scale": {"dist": "uniform", "low": 0.8, "high": 1.2}}
    return Scenario.from_dict({
        "run": {"name": "llm-bench", "seed": 1, "rounds": rounds, "auctions_per_round": args.auctions,
                "record_agents": "none", "auction_sample_rate": 0.0, "experimental": True},
        "mechanism": {"type": "second_price", "reserve": 0.1},
        "market": {"bidders_per_auction": 8},
        "populations": [
            {"name": "tested", "size": args.agents, "strategy": strategy, "params": params,
             "budget": {"dist": "uniform", "low": 20.0, "high": 60.0}, **common},
            {"name": "truthful", "size": args.agents, "strategy": "truthful", **common},
        ],
    })


def play(strategy: str, params: dict, args: argparse.Namespace, rounds: int) -> dict:
    simulation = Simulation(scenario(strategy, params, args, rounds))
    tested = simulation.strategies[0]
    spent = [0.0]
    for method in ("decide", "observe"):
        inner = getattr(tested, method)

        def timed(*a, _inner=inner):
            start = time.perf_counter()
            try:
                return _inner(*a)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(tested, method, timed)
    start = time.perf_counter()
    while not simulation.finished:
        simulation.step()
    seconds = time.perf_counter() - start
    tested.close()
    counts = dict(getattr(tested, "counts", {}))
    return {"seconds": seconds, "strategy_seconds": spent[0], "counts": counts,
            "archetypes": len(getattr(tested, "labels", [])) or None}


def best(strategy: str, params: dict, args: argparse.Namespace, prepare=None) -> dict:
    runs = []
    for _ in range(args.repeats):
        if prepare is not None:
            prepare()
        runs.append(play(strategy, params, args, args.rounds))
    return min(runs, key=lambda r: r["seconds"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1_000, help="agents in the tested population")
    parser.add_argument("--auctions", type=int, default=20_000, help="auctions per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="whole runs per variant; the best counts")
    parser.add_argument("--bins", type=int, nargs=2, default=(2, 2), metavar=("VALUE_SCALE", "BUDGET"))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="simulated model latency per reply")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    delay = args.delay_ms / 1e3

    def reply(body: dict, n: int):
        text = pacing_reply(body, n)
        return Reply(content=text, delay_s=delay) if delay else text

    cache = Path(tempfile.mkdtemp(prefix="bidscape-llm-bench-"))
    rows = []
    try:
        with ChatServer(reply) as server:
            proxy = {"base_url": server.url, "model": "bench", "retries": 0, "concurrency": args.concurrency,
                     "fallback": "keep", "bins": {"value_scale": args.bins[0], "budget": args.bins[1]}}
            play("adaptive_pacing", {}, args, 2)  # warm-up: numba compiles, the server answers once
            play("llm_proxy", proxy, args, 2)

            def clear_cache():
                shutil.rmtree(cache, ignore_errors=True)

            variants = [
                ("adaptive_pacing", "adaptive_pacing", {}, None),
                ("llm_proxy live", "llm_proxy", proxy, None),
                ("llm_proxy record", "llm_proxy", {**proxy, "mode": "record", "cache_dir": str(cache)}, clear_cache),
            ]
            for label, strategy, params, prepare in variants:
                rows.append({"variant": label, **best(strategy, params, args, prepare)})
            requests = server.request_count
        # the server is gone: replay must come from the cache alone
        replay = {**proxy, "mode": "replay", "cache_dir": str(cache)}
        rows.append({"variant": "llm_proxy replay", **best("llm_proxy", replay, args)})
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    base = rows[0]["seconds"]
    print(f"market: {args.agents:,} tested + {args.agents:,} truthful agents, {args.auctions:,} auctions/round, "
          f"{args.rounds} rounds, bins {args.bins[0]}x{args.bins[1]}, concurrency {args.concurrency}, "
          f"server delay {args.delay_ms:g} ms; best of {args.repeats}")
    header = (f"{'variant':<18} {'rounds/s':>9} {'ms/round':>9} {'overhead ms/round':>18} {'ratio':>6} "
              f"{'strategy ms/round':>18}  statuses")
    print(header)
    print("-" * len(header))
    for row in rows:
        row["rounds_per_s"] = args.rounds / row["seconds"]
        row["ms_per_round"] = row["seconds"] / args.rounds * 1e3
        row["overhead_ms_per_round"] = (row["seconds"] - base) / args.rounds * 1e3
        row["ratio"] = row["seconds"] / base  # baseline rounds/s over variant rounds/s
        row["strategy_ms_per_round"] = row["strategy_seconds"] / args.rounds * 1e3
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(row["counts"].items())) or "-"
        print(f"{row['variant']:<18} {row['rounds_per_s']:>9.1f} {row['ms_per_round']:>9.2f} "
              f"{row['overhead_ms_per_round']:>18.2f} {row['ratio']:>6.2f} {row['strategy_ms_per_round']:>18.2f}  "
              f"{statuses}")
    print(f"server requests: {requests:,}; python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: (list(v) if isinstance(v, tuple) else v)
                                                      for k, v in vars(args).items() if k != "json"},
                                         "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()

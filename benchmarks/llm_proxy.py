"""LLM-proxy bidders: a real local model at scale, valid replies by response format, plumbing overhead.

Run from the repository root (``real`` and ``schema`` need the llm extra: pip install -e ".[llm]"):

    python benchmarks/llm_proxy.py real        # 1e6 agents, 8 archetypes, 24 rounds vs Gemma 3 270M, 1 and 2 slots
    python benchmarks/llm_proxy.py schema      # share of valid, in-range replies per json_mode, same model
    python benchmarks/llm_proxy.py overhead    # plumbing cost per round against pacing, with the fake server
    python benchmarks/llm_proxy.py overhead --delay-ms 200 --agents 10000 --auctions 200000 --json out.json

``real``: one population of ``--agents`` llm_proxy advertisers (budgets uniform 20..60, value
scales uniform 0.8..1.2; bins 4 x 2 = 8 archetypes) and as many truthful ones, second price,
``--auctions`` per round, nothing recorded per agent. The bundled model is served by
``bidscape.llm.local_server`` with ``--threads`` threads, once per ``--slots`` value (llama.cpp
parallel slots; the proxy's ``concurrency`` is the same). The run records its replies into a
cache, then the same run is replayed from it with no server. For each: network calls, wall
time, calls per second of waiting, the share of the run spent waiting on the model (time in
the strategy's ``decide``), the median call latency, and the replies' statuses.

``schema``: the same small market (2 x 2 archetypes, ``--rounds`` rounds) once per ``json_mode``
(``none``, ``json_object``, ``json_schema``, ``json_schema_bounds``), live, no cache: the share of
replies that are valid and in range, and why the others are not.

``overhead`` (the fake server, no model): a small market (``--agents`` with the tested
strategy + as many truthful, second price, nothing recorded). Variants of the tested population:

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
    commands = parser.add_subparsers(dest="command", required=True)
    real = commands.add_parser("real", help="1e6 agents in 8 archetypes against the bundled model")
    real.add_argument("--agents", type=int, default=1_000_000, help="llm_proxy agents (as many truthful)")
    real.add_argument("--auctions", type=int, default=1_000_000, help="auctions per round")
    real.add_argument("--rounds", type=int, default=24)
    real.add_argument("--slots", type=int, nargs="+", default=[1, 2], help="llama.cpp parallel slots, one run each")
    real.add_argument("--threads", type=int, default=1, help="CPU threads of the model")
    schema = commands.add_parser("schema", help="valid, in-range replies per json_mode")
    schema.add_argument("--agents", type=int, default=2_000)
    schema.add_argument("--auctions", type=int, default=20_000)
    schema.add_argument("--rounds", type=int, default=6)
    schema.add_argument("--threads", type=int, default=1)
    for sub in (real, schema):
        sub.add_argument("--max-tokens", type=int, default=48, help="output-token limit of each reply")
        sub.add_argument("--reason-chars", type=int, default=40, help="max_reason_chars")
        sub.add_argument("--json", type=Path, help="also write the results here")
    overhead = commands.add_parser("overhead", help="plumbing cost per round, fake server")
    overhead.add_argument("--agents", type=int, default=1_000, help="agents in the tested population")
    overhead.add_argument("--auctions", type=int, default=20_000, help="auctions per round")
    overhead.add_argument("--rounds", type=int, default=30)
    overhead.add_argument("--repeats", type=int, default=3, help="whole runs per variant; the best counts")
    overhead.add_argument("--bins", type=int, nargs=2, default=(2, 2), metavar=("VALUE_SCALE", "BUDGET"))
    overhead.add_argument("--concurrency", type=int, default=4)
    overhead.add_argument("--delay-ms", type=float, default=0.0, help="simulated model latency per reply")
    overhead.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    {"real": real_model, "schema": schema_validity, "overhead": overhead_benchmark}[args.command](args)


def overhead_benchmark(args: argparse.Namespace) -> None:
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


# ---- a real model: the bundled Gemma 3 270M (the llm extra) ----

class TimedProxy(LlmProxy):
    """llm_proxy that adds the time of each ``decide`` (the model's calls, almost all of it) to ``waited``."""

    waited: list[float] = [0.0]

    def decide(self, round_index: int) -> None:
        start = time.perf_counter()
        try:
            super().decide(round_index)
        finally:
            TimedProxy.waited[0] += time.perf_counter() - start


if "llm_proxy_timed" not in STRATEGIES:
    STRATEGIES.register("llm_proxy_timed", TimedProxy)


def real_market(args: argparse.Namespace, params: dict, bins: dict) -> Scenario:
    common = {"values": {"dist": "lognormal", "mean": 0.0, "sigma": 0.5},
              "value_scale": {"dist": "uniform", "low": 0.8, "high": 1.2}}
    return Scenario.from_dict({
        "run": {"name": "llm-real-bench", "seed": 1, "rounds": args.rounds, "auctions_per_round": args.auctions,
                "record_agents": "population", "auction_sample_rate": 0.0, "experimental": True},
        "mechanism": {"type": "second_price", "reserve": 0.1},
        "market": {"bidders_per_auction": 8},
        "populations": [
            {"name": "proxied", "size": args.agents, "strategy": "llm_proxy_timed", **common,
             "budget": {"dist": "uniform", "low": 20.0, "high": 60.0},
             "params": {"fallback": "pacing", "bins": bins, "max_tokens": args.max_tokens,
                        "max_reason_chars": args.reason_chars, "mechanism": "second_price", "timeout_s": 120.0,
                        "retries": 0, "max_calls": 100_000, **params}},
            {"name": "truthful", "size": args.agents, "strategy": "truthful", **common},
        ],
    })


def timed_run(scenario: Scenario, out: Path) -> dict:
    import polars as pl

    import bidscape

    TimedProxy.waited[0] = 0.0
    start = time.perf_counter()
    run = bidscape.run(scenario, out=out, overwrite=True)
    wall = time.perf_counter() - start
    calls = pl.read_ipc(run.path / "llm_calls.arrow")
    network = int((calls["attempts"] > 0).sum())
    sent = calls.filter(pl.col("attempts") > 0)
    return {"calls": calls.height, "network_calls": network, "wall_s": wall, "waiting_s": TimedProxy.waited[0],
            "waiting_share": TimedProxy.waited[0] / wall,
            "calls_per_s": calls.height / max(TimedProxy.waited[0], 1e-9),
            "median_call_ms": float(sent["latency_ms"].median()) if sent.height else None,
            "statuses": dict(calls.group_by("status").len().iter_rows())}


def real_model(args: argparse.Namespace) -> None:
    from bidscape.llm.local import local_server

    work = Path(tempfile.mkdtemp(prefix="bidscape-llm-real-"))
    bins = {"value_scale": 4, "budget": 2}
    rows = []
    try:
        bidscape_warm_up(args, bins)
        for slots in args.slots:
            cache = work / f"cache-{slots}"
            with local_server(threads=args.threads, parallel=slots, ctx_per_slot=1024) as server:
                params = {"base_url": server.url, "model": server.model, "json_mode": "json_schema_bounds",
                          "concurrency": slots, "mode": "record", "cache_dir": str(cache)}
                rows.append({"variant": f"live, {slots} slot(s)", **timed_run(real_market(args, params, bins),
                                                                          work / "run")})
                print(f"done: {rows[-1]}", file=sys.stderr, flush=True)
            params = {**params, "mode": "replay"}  # the server is gone: the cache alone
            rows.append({"variant": f"replay of {slots} slot(s)", **timed_run(real_market(args, params, bins),
                                                                          work / "run")})
            print(f"done: {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"market: {args.agents:,} llm_proxy agents in 8 archetypes + {args.agents:,} truthful, {args.auctions:,} "
          f"second-price auctions/round, {args.rounds} rounds; Gemma 3 270M, {args.threads} thread(s), "
          f"json_schema_bounds, max_tokens {args.max_tokens}")
    header = (f"{'variant':<22} {'calls':>6} {'sent':>5} {'wall s':>8} {'waiting s':>10} {'waiting':>8} "
              f"{'calls/s':>8} {'median ms':>10}  statuses")
    print(header)
    print("-" * len(header))
    for r in rows:
        median = "-" if r["median_call_ms"] is None else f"{r['median_call_ms']:.0f}"
        print(f"{r['variant']:<22} {r['calls']:>6} {r['network_calls']:>5} {r['wall_s']:>8.1f} {r['waiting_s']:>10.2f} "
              f"{r['waiting_share']:>8.1%} {r['calls_per_s']:>8.2f} {median:>10}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())))
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    write_json(args, rows)


def bidscape_warm_up(args: argparse.Namespace, bins: dict) -> None:
    """One small replay-mode run (no server, every call a miss) so that numba compiles outside the timings."""
    small = argparse.Namespace(**{**vars(args), "agents": 1_000, "auctions": 10_000, "rounds": 2})
    work = Path(tempfile.mkdtemp(prefix="bidscape-llm-warm-"))
    try:
        timed_run(real_market(small, {"mode": "replay", "cache_dir": str(work / "c")}, bins), work / "run")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def schema_validity(args: argparse.Namespace) -> None:
    import polars as pl

    import bidscape
    from bidscape.llm.local import local_server

    bins = {"value_scale": 2, "budget": 2}
    work = Path(tempfile.mkdtemp(prefix="bidscape-llm-schema-"))
    rows = []
    try:
        with local_server(threads=args.threads, ctx_per_slot=1024) as server:
            for mode in ("none", "json_object", "json_schema", "json_schema_bounds"):
                params = {"base_url": server.url, "model": server.model, "json_mode": mode, "concurrency": 1}
                run = bidscape.run(real_market(args, params, bins), out=work / mode, overwrite=True)
                calls = pl.read_ipc(run.path / "llm_calls.arrow")
                why = calls["detail"].fill_null("").str.extract(r"invalid reply: ([A-Za-z ]+?)( \(|$)", 1)
                rows.append({"json_mode": mode, "calls": calls.height,
                             "valid_share": float((calls["status"] == "ok").mean()),
                             "not_json": int((why == "not JSON").sum()),
                             "out_of_schema": int((why == "schema violation").sum()),
                             "mean_ms": float(calls["latency_ms"].mean()),
                             "multipliers": sorted({round(m, 4) for m in calls["multiplier"].drop_nulls()})})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Gemma 3 270M, {args.threads} thread(s), 4 archetypes x {args.rounds} rounds per json_mode, max_tokens "
          f"{args.max_tokens}, max_reason_chars {args.reason_chars}, multipliers allowed 0..2")
    header = f"{'json_mode':<20} {'calls':>5} {'valid':>7} {'not JSON':>9} {'schema/range':>13} {'ms/call':>8}  valid multipliers"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['json_mode']:<20} {r['calls']:>5} {r['valid_share']:>7.0%} {r['not_json']:>9} {r['out_of_schema']:>13} "
              f"{r['mean_ms']:>8.0f}  {r['multipliers'][:8]}")
    write_json(args, rows)


def write_json(args: argparse.Namespace, rows: list[dict]) -> None:
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        args.json.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()

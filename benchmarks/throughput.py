"""Full-round throughput of bidscape's jitted round kernels, against a numpy baseline and a bare ceiling round.

Run from the repository root:

    python benchmarks/throughput.py                 # full grid, a minute or two
    python benchmarks/throughput.py --quick         # smoke run, under a minute
    python benchmarks/throughput.py --sizes 1e6 --bidders 8 32 --json throughput.json

For each mechanism (first and second price; GSP and VCG with 3 slots), agent count A and bidders per auction K it
times one full round of N auctions (best of ``--repeats`` rounds, after one warm-up round
so that compilation is excluded), four ways:

- bidscape: ``Simulation.step()`` of a scenario with exact budgets (uniform 1e3..2e3, so
  large that no agent runs dry in these few rounds), truthful bidders (multiplier 1), lognormal(0, 0.5) values, nothing
  recorded. A round is everything ``step`` does: strategies, ``state.begin_round()``, the
  batches of ``kernel.clear_sampled`` + ``kernel.accumulate_outcomes``, random numbers
  included.
- numpy: the same instance as one vectorised round in plain numpy (participants, values,
  bids, top two, prices, spend per agent). It cannot charge budgets auction by auction
  and lets an agent appear twice in an auction, so it does strictly less work.

- ceiling: a bare ceiling round (``benchmarks/ceiling.py``, DESIGN.md section 5) with the same
  hash random numbers and value table, participants with repetition, one 8-byte gather per bid,
  spend charged at the end of the round: what the machine does with none of bidscape's work.
- bidscape and the ceiling again on every core (``--threads``, default all): bidscape's exact
  clearing with a drawing thread (``bidscape.engine.pipeline``, same outputs), the ceiling in
  equal chunks per thread.

It also measures peak memory: for each A, a fresh child process builds the market and
plays one round, and reports its peak resident set (``VmHWM`` on Linux; see
``peak_rss_bytes`` for why not ``ru_maxrss``).

Numpy's own libraries run on one thread (``OMP_NUM_THREADS=1`` and friends are set before numpy
loads); the one-thread columns run bidscape and the ceiling on one thread too.
"""

from __future__ import annotations

import os

SINGLE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
os.environ.update(SINGLE_THREAD)  # before numpy is imported

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bidscape.loop.simulation import Simulation, available_threads  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ceiling import ceiling_round_seconds  # noqa: E402

MECHANISMS = ("first_price", "second_price", "gsp", "vcg")
POSITION = ("gsp", "vcg")
RESERVE = {"first_price": 0.0, "second_price": 0.1, "gsp": 0.1, "vcg": 0.1}
SLOT_CTRS = [0.3, 0.2, 0.1]  # position auctions: 3 slots, pay per click, quality 1
VALUE_MEAN_LOG, VALUE_SIGMA_LOG = 0.0, 0.5
BUDGET_LOW, BUDGET_HIGH = 1e3, 2e3

FULL_SIZES, FULL_BIDDERS, FULL_AUCTIONS = (10**5, 10**6, 10**7), (2, 8, 32), 10**6
QUICK_SIZES, QUICK_BIDDERS, QUICK_AUCTIONS = (10**5, 10**6), (8,), 2 * 10**5

TARGET_AGENTS, TARGET_BIDDERS = 10**6, 8  # where the one-thread targets are read
TARGET_SINGLE_OF_CEILING = 0.75  # single item, one thread, share of the ceiling round
TARGET_POSITION_OF_CEILING = 0.6  # GSP and VCG (3 slots), one thread, share of the GSP ceiling round
TARGET_POSITION_SPEEDUP = 3.0  # GSP and VCG over numpy
TARGET_THREADS_SPEEDUP = {10**7: 1.5, 10**6: 1.3}  # all threads vs one (second price), exact mode
TARGET_BIG_AGENTS, TARGET_BIG_BIDS_PER_S = 10**7, 70e6  # second price on all threads
TARGET_MEMORY_AGENTS, TARGET_MEMORY_BYTES = 10**7, 1e9

NOTES = (
    "bidscape: one Simulation.step() (strategies, begin_round, clear_sampled + accumulate_outcomes "
    "in batches); exact budgets charged auction by auction; distinct participants per auction.",
    "numpy: one vectorised round; bids are capped by the budget left at the start of the round "
    "and spend is charged once at its end, not auction by auction; an agent may be drawn twice "
    "into one auction; so it does strictly less work than bidscape.",
    "ceiling: the bare round of benchmarks/ceiling.py (hash draws, participants with repetition, one "
    "8-byte gather per bid, spend charged at round end); GSP's ceiling for GSP and VCG.",
    "All: best of the timed rounds after one warm-up round (compilation excluded), random numbers "
    "included. x numpy = bidscape / numpy; of ceiling = bidscape / ceiling, both on one thread; "
    "threads = bidscape on all threads / bidscape on one.",
    "Memory: peak resident set (VmHWM) of a fresh process that imports bidscape, builds the "
    "market and plays one round (second price, K=8); MB = 1e6 bytes.",
)


# ---- the scenario both sides simulate ----

def benchmark_scenario(mechanism: str, agents: int, bidders: int, auctions: int, rounds: int,
                       seed: int) -> Scenario:
    return Scenario.from_dict({
        "run": {"name": "throughput", "seed": seed, "rounds": rounds, "auctions_per_round": auctions,
                "record_agents": "none", "auction_sample_rate": 0.0},
        "mechanism": {"type": mechanism, "reserve": RESERVE[mechanism],
                      "slot_ctrs": SLOT_CTRS if mechanism in POSITION else [1.0]},
        "market": {"bidders_per_auction": bidders},
        "populations": [{
            "name": "bidders", "size": agents, "strategy": "truthful",
            "values": {"dist": "lognormal", "mean": VALUE_MEAN_LOG, "sigma": VALUE_SIGMA_LOG},
            "budget": {"dist": "uniform", "low": BUDGET_LOW, "high": BUDGET_HIGH},
        }],
    })


def best_time(play_round, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` rounds, after one untimed warm-up round."""
    play_round()
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            play_round()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return min(times)


# ---- bidscape ----

def bidscape_round_seconds(mechanism: str, agents: int, bidders: int, auctions: int,
                           repeats: int, seed: int, threads: int = 1) -> float:
    scenario = benchmark_scenario(mechanism, agents, bidders, auctions, repeats + 1, seed)
    simulation = Simulation(scenario, threads=threads)
    try:
        return best_time(simulation.step, repeats)
    finally:
        simulation.close()


# ---- numpy baseline ----

@dataclass
class NumpyMarket:
    """Per-agent arrays of the baseline, one contiguous array per quantity."""

    multiplier: np.ndarray
    value_scale: np.ndarray
    remaining_budget: np.ndarray
    spend: np.ndarray
    wins: np.ndarray
    value: np.ndarray

    @classmethod
    def build(cls, agents: int, rng: np.random.Generator) -> "NumpyMarket":
        return cls(multiplier=np.ones(agents), value_scale=np.ones(agents),
                   remaining_budget=rng.uniform(BUDGET_LOW, BUDGET_HIGH, agents),
                   spend=np.zeros(agents), wins=np.zeros(agents), value=np.zeros(agents))


def top_two(bids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the slot of the highest bid, the highest bid and the second-highest bid."""
    rows = np.arange(bids.shape[0])
    best_slot = bids.argmax(axis=1)
    top = bids[rows, best_slot]
    bids[rows, best_slot] = -np.inf
    second = bids.max(axis=1)
    return best_slot, top, second


def numpy_round(market: NumpyMarket, rng: np.random.Generator, mechanism: str, auctions: int,
                bidders: int) -> None:
    """One round of ``auctions`` auctions with ``bidders`` participants each, vectorised."""
    agents = market.multiplier.shape[0]
    reserve = RESERVE[mechanism]
    bid_factor = market.multiplier * market.value_scale
    participants = rng.integers(0, agents, size=(auctions, bidders))
    base_values = rng.lognormal(VALUE_MEAN_LOG, VALUE_SIGMA_LOG, size=(auctions, bidders))
    bids = bid_factor[participants]
    bids *= base_values
    np.minimum(bids, market.remaining_budget[participants], out=bids)

    if mechanism in POSITION:
        return numpy_position_round(market, rng, mechanism, participants, base_values, bids)
    best_slot, top, second = top_two(bids)
    sold = (top > 0.0) & (top >= reserve)
    rows = np.flatnonzero(sold)
    winners = participants[rows, best_slot[rows]]
    price = top[rows] if mechanism == "first_price" else np.maximum(second[rows], reserve)
    won_value = base_values[rows, best_slot[rows]] * market.value_scale[winners]

    market.spend[:] = np.bincount(winners, weights=price, minlength=agents)
    market.wins[:] = np.bincount(winners, minlength=agents)
    market.value[:] = np.bincount(winners, weights=won_value, minlength=agents)
    market.remaining_budget -= market.spend


def numpy_position_round(market: NumpyMarket, rng: np.random.Generator, mechanism: str,
                         participants: np.ndarray, base_values: np.ndarray, bids: np.ndarray) -> None:
    """The same round for 3-slot GSP/VCG (quality 1): rank with argpartition+argsort, price, click."""
    agents = market.multiplier.shape[0]
    reserve = RESERVE[mechanism]
    ctrs = np.array(SLOT_CTRS)
    slots = ctrs.size
    bids = np.where(bids >= reserve, bids, 0.0)
    if bids.shape[1] < slots + 1:  # fewer bidders than slots + 1: empty places bid 0 (agent 0, never filled)
        pad = ((0, 0), (0, slots + 1 - bids.shape[1]))
        bids, participants, base_values = (np.pad(x, pad) for x in (bids, participants, base_values))
    top = np.argpartition(-bids, slots, axis=1)[:, :slots + 1]
    order = np.take_along_axis(top, np.argsort(-np.take_along_axis(bids, top, axis=1), axis=1), axis=1)
    ranked = np.take_along_axis(bids, order, axis=1)  # [n, S+1], best first
    below = np.maximum(ranked[:, 1:], reserve)
    if mechanism == "gsp":
        per_click = below
    else:
        drop = ctrs - np.append(ctrs[1:], 0.0)
        tail = np.cumsum((below * drop)[:, ::-1], axis=1)[:, ::-1]
        per_click = tail / ctrs
    filled = ranked[:, :slots] > 0
    clicked = rng.random(filled.shape) < ctrs
    paid = np.where(filled & clicked, per_click, 0.0)
    winners = np.take_along_axis(participants, order[:, :slots], axis=1)
    values = np.take_along_axis(base_values, order[:, :slots], axis=1) * (filled & clicked)
    market.spend[:] = np.bincount(winners.ravel(), weights=paid.ravel(), minlength=agents)
    market.wins[:] = np.bincount(winners.ravel(), weights=filled.ravel(), minlength=agents)
    market.value[:] = np.bincount(winners.ravel(), weights=values.ravel(), minlength=agents)
    market.remaining_budget -= market.spend


def numpy_round_seconds(mechanism: str, agents: int, bidders: int, auctions: int,
                        repeats: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    market = NumpyMarket.build(agents, rng)
    return best_time(lambda: numpy_round(market, rng, mechanism, auctions, bidders), repeats)


# ---- peak memory, one fresh process per agent count ----

def peak_rss_bytes() -> int:
    """Peak resident set of this process's own address space.

    Linux's ``ru_maxrss`` would not do in a child process: exec carries the parent's
    high-water mark over into it (a child of a 400 MB parent reports >= 400 MB), so
    this reads ``VmHWM``, which starts afresh at exec. Elsewhere, ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory_child(agents: int, auctions: int, seed: int) -> None:
    """Run in a fresh process: build the market, play one round, print peak RSS as JSON."""
    after_imports = peak_rss_bytes()
    simulation = Simulation(benchmark_scenario("second_price", agents, 8, auctions, 1, seed))
    simulation.step()
    simulation.close()
    print(json.dumps({"agents": agents, "imports_bytes": after_imports, "peak_bytes": peak_rss_bytes()}))


def measure_memory(agents: int, auctions: int, seed: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(agents),
               "--auctions", str(auctions), "--seed", str(seed)]
    done = subprocess.run(command, env={**os.environ, **SINGLE_THREAD}, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {agents} agents failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the grid ----

@dataclass
class ThroughputRow:
    mechanism: str
    agents: int
    bidders: int
    auctions: int
    threads: int
    bidscape_seconds: float
    numpy_seconds: float
    ceiling_seconds: float
    bidscape_threaded_seconds: float | None  # None when only one thread is available
    ceiling_threaded_seconds: float | None

    def bids_per_s(self, seconds: float | None) -> float | None:
        return None if seconds is None else self.auctions * self.bidders / seconds

    @property
    def bidscape_bids_per_s(self) -> float:
        return self.bids_per_s(self.bidscape_seconds)

    @property
    def ratio(self) -> float:
        """bidscape over numpy, one thread."""
        return self.numpy_seconds / self.bidscape_seconds

    @property
    def of_ceiling(self) -> float:
        return self.ceiling_seconds / self.bidscape_seconds

    @property
    def threads_speedup(self) -> float | None:
        return None if self.bidscape_threaded_seconds is None else self.bidscape_seconds / self.bidscape_threaded_seconds

    def to_json(self) -> dict:
        return {**asdict(self), "bidscape_bids_per_s": self.bidscape_bids_per_s,
                "bidscape_threaded_bids_per_s": self.bids_per_s(self.bidscape_threaded_seconds),
                "numpy_bids_per_s": self.bids_per_s(self.numpy_seconds),
                "ceiling_bids_per_s": self.bids_per_s(self.ceiling_seconds),
                "ceiling_threaded_bids_per_s": self.bids_per_s(self.ceiling_threaded_seconds),
                "x_numpy": self.ratio, "of_ceiling": self.of_ceiling, "threads_speedup": self.threads_speedup}


def measure_throughput(mechanism: str, agents: int, bidders: int, auctions: int, repeats: int,
                       seed: int, threads: int) -> ThroughputRow:
    timed = {}
    for name, measure in (
            ("bidscape", lambda: bidscape_round_seconds(mechanism, agents, bidders, auctions, repeats, seed)),
            ("numpy", lambda: numpy_round_seconds(mechanism, agents, bidders, auctions, repeats, seed)),
            ("ceiling", lambda: ceiling_round_seconds(mechanism, agents, bidders, auctions, 1, repeats, seed)),
            ("bidscape_threaded", lambda: bidscape_round_seconds(mechanism, agents, bidders, auctions, repeats,
                                                                 seed, threads) if threads > 1 else None),
            ("ceiling_threaded", lambda: ceiling_round_seconds(mechanism, agents, bidders, auctions, threads,
                                                               repeats, seed) if threads > 1 else None)):
        timed[name] = measure()
        gc.collect()
    return ThroughputRow(mechanism, agents, bidders, auctions, threads, timed["bidscape"], timed["numpy"],
                         timed["ceiling"], timed["bidscape_threaded"], timed["ceiling_threaded"])


# ---- targets ----

@dataclass
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured in this run


def _at(rows: list[ThroughputRow], mechanisms, agents: int = TARGET_AGENTS) -> list[ThroughputRow]:
    return [r for r in rows if r.agents == agents and r.bidders == TARGET_BIDDERS and r.mechanism in mechanisms]


def check_targets(rows: list[ThroughputRow], memory: list[dict]) -> list[Target]:
    where = f"{count_label(TARGET_AGENTS)} agents, K={TARGET_BIDDERS}, one thread"
    targets = []
    single = _at(rows, MECHANISMS[:2])
    name = f"single item >= {TARGET_SINGLE_OF_CEILING:g} of the ceiling round ({where})"
    targets.append(Target(name, ", ".join(f"{r.mechanism} {r.of_ceiling:.2f} ({r.bidscape_bids_per_s / 1e6:.0f} "
                                          f"of {r.bids_per_s(r.ceiling_seconds) / 1e6:.0f} M bids/s)" for r in single)
                          or "not measured",
                          all(r.of_ceiling >= TARGET_SINGLE_OF_CEILING for r in single) if single else None))
    position = _at(rows, POSITION)
    name = (f"GSP/VCG >= {TARGET_POSITION_OF_CEILING:g} of the GSP ceiling and >= {TARGET_POSITION_SPEEDUP:g}x "
            f"numpy ({where})")
    targets.append(Target(name, ", ".join(f"{r.mechanism} {r.of_ceiling:.2f}, {r.ratio:.1f}x" for r in position)
                          or "not measured",
                          all(r.of_ceiling >= TARGET_POSITION_OF_CEILING and r.ratio >= TARGET_POSITION_SPEEDUP
                              for r in position) if position else None))
    for agents, goal in sorted(TARGET_THREADS_SPEEDUP.items(), reverse=True):
        found = [r for r in _at(rows, ("second_price",), agents) if r.threads_speedup is not None]
        name = f"all threads >= {goal:g}x one thread, exact (second price, {count_label(agents)} agents, K=8)"
        targets.append(Target(name, ", ".join(f"{r.threads_speedup:.2f}x on {r.threads} threads" for r in found)
                              or "not measured", all(r.threads_speedup >= goal for r in found) if found else None))
    found = [r for r in _at(rows, ("second_price",), TARGET_BIG_AGENTS) if r.bidscape_threaded_seconds is not None]
    name = f">= {TARGET_BIG_BIDS_PER_S / 1e6:.0f} M bids/s at {count_label(TARGET_BIG_AGENTS)} agents, all threads"
    targets.append(Target(name, ", ".join(f"{r.bids_per_s(r.bidscape_threaded_seconds) / 1e6:.0f} M bids/s"
                                          for r in found) or "not measured",
                          all(r.bids_per_s(r.bidscape_threaded_seconds) >= TARGET_BIG_BIDS_PER_S for r in found)
                          if found else None))
    memory_name = f"{count_label(TARGET_MEMORY_AGENTS)} agents < {TARGET_MEMORY_BYTES / 1e9:g} GB peak"
    largest = [m for m in memory if m["agents"] == TARGET_MEMORY_AGENTS]
    if largest:
        peak = largest[0]["peak_bytes"]
        targets.append(Target(memory_name, f"{peak / 1e6:.0f} MB", peak < TARGET_MEMORY_BYTES))
    else:
        targets.append(Target(memory_name, "not measured", None))
    return targets


# ---- output ----

TABLE_BOX = box.SIMPLE_HEAD


def count_label(n: int) -> str:
    """``1e6`` for powers of ten, else the number with thousands separators."""
    exponent = len(str(n)) - 1
    return f"1e{exponent}" if n == 10**exponent and n >= 10 else f"{n:,}"


def throughput_table(rows: list[ThroughputRow], auctions: int, repeats: int) -> Table:
    threads = max((r.threads for r in rows), default=1)
    table = Table(title=f"Full-round throughput: {count_label(auctions)} auctions per round, best of {repeats} "
                        f"rounds; M bids/s on one thread, and on {threads}", box=TABLE_BOX)
    for header in ("mechanism", "agents", "K", "bidscape", "numpy", "ceiling", "x numpy", "of ceiling",
                   f"bidscape {threads}t", f"ceiling {threads}t", "threads"):
        table.add_column(header, justify="left" if header == "mechanism" else "right")

    def speed(seconds, r):
        return "-" if seconds is None else f"{r.bids_per_s(seconds) / 1e6:.1f}"
    for r in rows:
        table.add_row(r.mechanism, count_label(r.agents), str(r.bidders), speed(r.bidscape_seconds, r),
                      speed(r.numpy_seconds, r), speed(r.ceiling_seconds, r), f"{r.ratio:.1f}x", f"{r.of_ceiling:.2f}",
                      speed(r.bidscape_threaded_seconds, r), speed(r.ceiling_threaded_seconds, r),
                      "-" if r.threads_speedup is None else f"{r.threads_speedup:.2f}x")
    return table


def memory_table(memory: list[dict]) -> Table:
    table = Table(title="Peak memory: fresh process, build market + one round", box=TABLE_BOX)
    for header in ("agents", "after imports MB", "peak MB", "bytes/agent above imports"):
        table.add_column(header, justify="right")
    for m in memory:
        per_agent = (m["peak_bytes"] - m["imports_bytes"]) / m["agents"]
        table.add_row(count_label(m["agents"]), f"{m['imports_bytes'] / 1e6:.0f}",
                      f"{m['peak_bytes'] / 1e6:.0f}", f"{per_agent:.0f}")
    return table


def targets_table(targets: list[Target]) -> Table:
    table = Table(title="Targets", box=TABLE_BOX)
    for header in ("target", "measured", "met"):
        table.add_column(header)
    for t in targets:
        table.add_row(t.name, t.measured, "n/a" if t.met is None else ("yes" if t.met else "NO"))
    return table


def machine_summary() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "machine": platform.machine(), "processor": cpu_model(), "cpus": os.cpu_count()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- command line ----

def count(text: str) -> int:
    """A positive whole number, written ``1000000`` or ``1e6``."""
    value = float(text)
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: agents {', '.join(map(count_label, QUICK_SIZES))}, "
                             f"K={', '.join(map(str, QUICK_BIDDERS))}, {count_label(QUICK_AUCTIONS)} auctions")
    parser.add_argument("--sizes", type=count, nargs="+", metavar="A",
                        help=f"agent counts (default {' '.join(map(count_label, FULL_SIZES))})")
    parser.add_argument("--bidders", type=count, nargs="+", metavar="K",
                        help=f"bidders per auction (default {' '.join(map(str, FULL_BIDDERS))})")
    parser.add_argument("--auctions", type=count, metavar="N",
                        help=f"auctions per round (default {count_label(FULL_AUCTIONS)})")
    parser.add_argument("--mechanisms", nargs="+", choices=MECHANISMS, default=list(MECHANISMS))
    parser.add_argument("--repeats", type=count, default=3, help="timed rounds; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=count, default=available_threads(),
                        help="threads of the all-threads columns (default: every core, here %(default)s)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--memory-child", type=count, metavar="A", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    args.bidders = args.bidders or list(QUICK_BIDDERS if args.quick else FULL_BIDDERS)
    args.auctions = args.auctions or (QUICK_AUCTIONS if args.quick else FULL_AUCTIONS)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.auctions, args.seed)
        return
    progress = Console(stderr=True)
    console = Console(width=None if sys.stdout.isatty() else 120)

    rows = []
    for mechanism in args.mechanisms:
        for agents in args.sizes:
            for bidders in args.bidders:
                if bidders > agents:
                    continue
                progress.print(f"[dim]timing {mechanism}, {count_label(agents)} agents, K={bidders}[/dim]")
                rows.append(measure_throughput(mechanism, agents, bidders, args.auctions,
                                               args.repeats, args.seed, args.threads))
    memory = []
    if not args.no_memory:
        for agents in args.sizes:
            progress.print(f"[dim]peak memory, {count_label(agents)} agents[/dim]")
            memory.append(measure_memory(agents, args.auctions, args.seed))
    targets = check_targets(rows, memory)

    console.print(throughput_table(rows, args.auctions, args.repeats))
    if memory:
        console.print(memory_table(memory))
    console.print(targets_table(targets))
    console.print("Notes:")
    for note in NOTES:
        console.print(f"- {note}", soft_wrap=True)
    summary = machine_summary()
    console.print(f"- Machine: {summary['processor']}, {summary['cpus']} CPUs; python {summary['python']}, "
                  f"numpy {summary['numpy']}, numba {summary['numba']}.", soft_wrap=True)

    if args.json:
        args.json.write_text(json.dumps({
            "settings": {"auctions": args.auctions, "repeats": args.repeats, "seed": args.seed, "threads": args.threads,
                         "sizes": args.sizes, "bidders": args.bidders, "mechanisms": args.mechanisms,
                         "reserve": RESERVE, "budget": [BUDGET_LOW, BUDGET_HIGH],
                         "values_lognormal": [VALUE_MEAN_LOG, VALUE_SIGMA_LOG]},
            "machine": summary,
            "throughput": [r.to_json() for r in rows],
            "memory": memory,
            "targets": [asdict(t) for t in targets],
            "notes": list(NOTES),
        }, indent=2) + "\n")
        progress.print(f"[dim]saved {args.json}[/dim]")


if __name__ == "__main__":
    main()

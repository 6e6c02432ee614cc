"""How much memory and time a run will take, estimated before it starts.

A run that cannot fit in memory is refused before anything is allocated or written
(``check_fits``: an ``InputError`` with the estimate and the fix, exit 2), unless the
caller opts out (``--no-size-check``, ``size_check=False``). A run expected to take more
than a few minutes says so up front (``long_run_note``).

The figures are measured (``benchmarks/throughput.py``, README) and rounded up:

- memory: ~140 bytes per agent for the market state (bid state, outcomes, budgets,
  multipliers) measured at 1e6 agents, taken as ``AGENT_BYTES``; each further channel adds
  its outcome state; strategies add what they keep (``Strategy.bytes_per_agent``: 64 bytes,
  a grid learner 64 per arm); recording every agent builds each round's rows in memory
  before they are streamed to ``agents.arrow``; plus the per-batch outcome buffers, the
  round's sampled auctions, and the interpreter with numba, pyarrow and polars loaded.
- time: 15 M bids per second on one core for single-item auctions and 4 M for position
  auctions (measured 25-35 and 7-10 on a slow 2-core machine, 80 on the README's), plus
  per-agent work between rounds.

>>> from bidscape.scenario import Scenario
>>> big = Scenario.from_dict({"populations": [{"name": "a", "size": 10**10, "strategy": "truthful",
...                                            "values": {"dist": "uniform", "low": 0, "high": 1}}]})
>>> check_fits(big, available=16 * 10**9)
Traceback (most recent call last):
...
bidscape.errors.InputError: invalid input: populations[0].size: this run needs about 4.6 TB of memory (10,000,000,000 agents x 464 bytes), but 16.0 GB is available. Fix: use fewer agents (at most about 34,000,000 here), or run it anyway with --no-size-check (Python: size_check=False)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bidscape.errors import InputError, Problem

IMPORT_BYTES = 400 * 10**6  # a process with bidscape, numba, pyarrow, polars and the CLI loaded (measured 230-360 MB)
AGENT_BYTES = 200  # market state per agent and channel's share of it (measured ~140 at 1e6 agents)
CHANNEL_BYTES = 80  # each further channel: outcome state and budget cap per agent (measured ~65)
RECORD_BYTES = 200  # per agent and channel when every agent is recorded: the round's rows before they stream
AUCTION_BYTES = 16  # per auction of a batch, plus per slot:
SLOT_BYTES = 49  # winner, price, bid, next bid, value (8 bytes each), clicks (1)
SAMPLE_BYTES = 120  # per sampled auction and slot: its row, gathered over the round, and the joined copy
SINGLE_ITEM_BIDS_PER_SECOND = 15e6
POSITION_BIDS_PER_SECOND = 4e6
AGENT_ROUND_SECONDS = 50e-9  # strategies between rounds, per agent
RECORD_ROW_SECONDS = 200e-9  # per agent row written when every agent is recorded
LONG_RUN_SECONDS = 180  # a run longer than this says so before it starts
NO_CHECK = "run it anyway with --no-size-check (Python: size_check=False)"


@dataclass(frozen=True)
class Estimate:
    """Peak memory (bytes, the interpreter included) and wall time (seconds) of one run."""

    bytes: int
    seconds: float
    parts: dict[str, int] = field(default_factory=dict)  # field path -> the bytes it accounts for
    detail: str = ""  # how the largest part adds up

    def describe(self) -> str:
        return f"about {format_bytes(self.bytes)} of memory and {format_seconds(self.seconds)}"


def estimate(scenario: Any) -> Estimate:
    """The estimate for an auction scenario, or the one a scenario of another kind (a market game)
    makes of itself (its ``size_estimate()``)."""
    own = getattr(scenario, "size_estimate", None)
    return own() if own is not None else estimate_run(scenario)


def estimate_run(scenario: Any) -> Estimate:
    """The estimate for an auction scenario (``bidscape.Scenario``): the largest of its phases
    (events may add auctions or samples), and the time of all of them."""
    phases = _phases(scenario)
    seconds = sum(rounds * _round_cost(settings)[1] for rounds, settings in phases)
    parts, _ = max((_round_cost(settings) for _, settings in phases), key=lambda cost: sum(cost[0].values()))
    agent_bytes = sum(v for k, v in parts.items() if k.endswith(".size"))
    detail = f"{scenario.total_agents:,} agents x {agent_bytes // scenario.total_agents:,} bytes"
    return Estimate(IMPORT_BYTES + sum(parts.values()), seconds, parts, detail)


def _phases(scenario: Any) -> list[tuple[int, Any]]:
    """(rounds, settings) from round 0 and from each round where events change the settings."""
    starts = sorted({event.at_round for event in scenario.events} - {0})
    phases, settings = [], scenario
    for begin, end in zip([0] + starts, starts + [scenario.run.rounds]):
        for event in scenario.events:
            if event.at_round == begin:
                settings = settings.with_updates(event.set, source=f"event at round {begin}")
        phases.append((end - begin, settings))
    return phases


def _round_cost(scenario: Any) -> tuple[dict[str, int], float]:
    """The bytes each field path accounts for, and the seconds of one round."""
    from bidscape.bidders import STRATEGIES
    from bidscape.loop.simulation import BATCH_AUCTIONS
    from bidscape.mechanisms import MECHANISMS

    channels = scenario.resolved_channels()
    recorded = scenario.run.record_agents == "agent"
    parts: dict[str, int] = {}
    for i, population in enumerate(scenario.populations):
        strategy = STRATEGIES.get(population.strategy)
        in_channels = sum(i in c.populations for c in channels)
        parts[f"populations[{i}].size"] = population.size * (
            AGENT_BYTES + CHANNEL_BYTES * (len(channels) - 1) + (RECORD_BYTES * in_channels if recorded else 0)
            + strategy.bytes_per_agent(scenario.strategy_params(population), len(channels)))
    seconds = scenario.total_agents * AGENT_ROUND_SECONDS
    for c, channel in enumerate(channels):
        mechanism = MECHANISMS.get(channel.mechanism.type)
        slots = mechanism.slots(channel.mechanism)
        buffers = f"channels[{c}].mechanism.slot_ctrs" if scenario.channels else "mechanism.slot_ctrs"
        parts[buffers] = min(BATCH_AUCTIONS, channel.auctions_per_round) * (AUCTION_BYTES + SLOT_BYTES * slots)
        sampled = int(channel.auctions_per_round * scenario.run.auction_sample_rate) * slots
        parts["run.auction_sample_rate"] = parts.get("run.auction_sample_rate", 0) + sampled * SAMPLE_BYTES
        eligible = sum(scenario.populations[p].size for p in channel.populations)
        bidders = eligible if channel.bidders_per_auction == "all" else channel.bidders_per_auction
        rate = POSITION_BIDS_PER_SECOND if mechanism.capabilities.slots else SINGLE_ITEM_BIDS_PER_SECOND
        seconds += channel.auctions_per_round * bidders / rate + (eligible * RECORD_ROW_SECONDS if recorded else 0)
    return parts, seconds


def check_fits(scenario: Any, available: Optional[int] = None, workers: int = 1, in_process: bool = True) -> Estimate:
    """The estimate, or an ``InputError`` when ``workers`` runs of it at once cannot fit in memory.

    ``available`` defaults to ``available_memory()`` (unknown: no check). A run in this
    process has its libraries loaded already; runs in worker processes load their own.
    """
    needs = estimate(scenario)
    available = available_memory() if available is None else available
    if available is None:
        return needs
    each = needs.bytes - (IMPORT_BYTES if in_process and workers == 1 else 0)
    if each * workers <= available:
        return needs
    field_path = max(needs.parts, key=needs.parts.get)
    runs = f"{workers} runs at once x " if workers > 1 else ""
    if workers > 1 and each <= available:
        field_path, fix = "--workers", f"run fewer at once (--workers {max(1, available // each)})"
    else:
        fix = _fix(field_path, each, available // workers, scenario)
    raise InputError(Problem(field_path, f"this {'sweep' if workers > 1 else 'run'} needs about "
                             f"{format_bytes(each * workers)} of memory ({runs}{needs.detail}), but "
                             f"{format_bytes(available)} is available", f"{fix}, or {NO_CHECK}"))


def check_sweep_fits(spec: Any, backend: str = "local", workers: Optional[int] = None,
                     address: Optional[str] = None, available: Optional[int] = None) -> Optional[Estimate]:
    """``check_fits`` for the largest run of a sweep, as many at once as will run in parallel on
    this machine (a Ray cluster's memory is its own business: not checked)."""
    if address is not None:
        return None
    at_once = min(workers or os.cpu_count() or 1, len(spec.variants) * len(spec.seeds))
    largest = max((variant.scenario for variant in spec.variants), key=lambda scenario: estimate(scenario).bytes)
    return check_fits(largest, available, workers=at_once, in_process=at_once == 1 and backend == "local")


def sweep_estimate(spec: Any, workers: Optional[int] = None) -> Estimate:
    """A sweep's wall time with ``workers`` runs at once (default: one per CPU), and its largest run's memory."""
    at_once = min(workers or os.cpu_count() or 1, len(spec.variants) * len(spec.seeds))
    runs = [estimate(variant.scenario) for variant in spec.variants]
    seconds = sum(run.seconds for run in runs) * len(spec.seeds) / at_once
    return Estimate(max(run.bytes for run in runs) * at_once, seconds)


def _fix(field_path: str, each: int, room: int, scenario: Any) -> str:
    """What to make smaller, given what one run needs (``each``) and what it may have (``room``)."""
    if field_path.endswith((".size", ".count")):
        agents = getattr(scenario, "total_agents", None) or getattr(scenario, "total_traders", 1)
        agent_bytes = sum(v for k, v in estimate(scenario).parts.items() if k.endswith((".size", ".count")))
        fits = max(0, room - (each - agent_bytes)) * agents // max(1, agent_bytes)
        noun = "traders" if field_path.endswith(".count") else "agents"
        return f"use fewer {noun} (at most about {_round_down(fits):,} here)"
    if field_path == "run.auction_sample_rate":
        return "sample fewer auctions (a smaller run.auction_sample_rate, or 0)"
    if field_path.endswith("slot_ctrs"):
        return "use fewer slots"
    return "make the run smaller"


def available_memory() -> Optional[int]:
    """Bytes this process may still allocate: the system's available memory, lowered by a
    container's (cgroup) limit; None when the platform says neither."""
    figures = []
    meminfo = _read("/proc/meminfo")
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            figures.append(int(line.split()[1]) * 1024)
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read(limit_file).strip(), _read(usage_file).strip()
        if limit.isdigit() and usage.isdigit() and int(limit) < 2**60:  # "max" or a huge number: no limit
            figures.append(max(0, int(limit) - int(usage)))
    if not figures:
        try:
            figures.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(figures)


def long_run_note(needs: Estimate, what: str = "this run") -> Optional[str]:
    """A line to print before a run (or sweep) that will take more than a few minutes, else None."""
    if needs.seconds <= LONG_RUN_SECONDS:
        return None
    return (f"{what} will take {format_seconds(needs.seconds)} (a rough estimate at "
            f"{SINGLE_ITEM_BIDS_PER_SECOND / 1e6:.0f} M bids/s on one core) and need about "
            f"{format_bytes(needs.bytes)} of memory; Ctrl-C stops it")


def format_bytes(n: float) -> str:
    for size, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def format_seconds(seconds: float) -> str:
    for size, unit in ((365.25 * 86400, "years"), (86400, "days"), (3600, "hours"), (60, "minutes")):
        if seconds >= size:
            return f"about {seconds / size:.1f} {unit}"
    return f"about {seconds:.0f} seconds"


def _round_down(n: int) -> int:
    """Two significant digits, rounded down: a limit to quote, not a promise."""
    if n < 100:
        return n
    scale = 10 ** (len(str(n)) - 2)
    return n // scale * scale


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return ""

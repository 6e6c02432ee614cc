"""The event loop: rounds of auctions, strategies between them, outcomes streamed out.

For each round: scheduled events fire, strategies decide multipliers, the jitted kernel
clears the round's auctions in batches (exact budgets, arrival order), strategies
observe their agents' outcomes, and the recorder writes the round.

Seeds: one ``SeedSequence`` per run spawns the kernel's hash key, one generator per
population for budgets and value scales, and one per strategy. Batching never changes
results, since every random number is a hash of (key, round, auction, counter), and
neither do threads: ``threads > 1`` only draws ahead on a second thread
(``bidscape.engine.pipeline``), while auctions are cleared in order on one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pyarrow as pa

from bidscape.bidders import STRATEGIES, Strategy
from bidscape.engine import kernel
from bidscape.engine.context import POPULATION_SEGMENT, SEGMENT_TOTALS, segment_totals
from bidscape.engine.pipeline import Pipeline
from bidscape.engine.rng import auction_key, round_key, run_key_from_seed
from bidscape.limits import MAX_MULTIPLIER
from bidscape.loop import finite, records
from bidscape.loop.counterfactuals import Counterfactuals
from bidscape.loop.state import MarketState, context_of
from bidscape.markets.context import ctr_noise_table
from bidscape.mechanisms import MECHANISMS, KernelMarket, Mechanism, Outcomes, Totals
from bidscape.outputs.recorder import Recorder
from bidscape.scenario import ResolvedChannel, Scenario

BATCH_AUCTIONS = 1 << 17  # auctions per kernel call: ~6 MB of per-auction buffers per slot
CHANNEL_SLICES = 64  # with several channels, each round is cut into this many turns


class StrategyError(RuntimeError):
    """A strategy produced multipliers the kernel cannot use."""


@dataclass
class RoundResult:
    round: int
    auctions: int
    sold: int  # filled slot impressions over all channels
    revenue: float
    welfare: float
    channels: list["ChannelResult"] = field(default_factory=list)
    max_welfare: float = 0.0  # welfare of the efficient allocations of the same auctions


@dataclass
class Simulation:
    """A market evolving round by round; ``step()`` plays one round."""

    scenario: Scenario
    threads: Optional[int] = None  # None: every core this process may use; outputs never depend on it
    state: MarketState = field(init=False)
    strategies: list[Strategy] = field(init=False)
    round: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        root = np.random.SeedSequence(self.scenario.run.seed)
        kernel_seed, market_seed, strategy_seed = root.spawn(3)
        self.run_key = np.uint64(run_key_from_seed(kernel_seed))
        self.state = MarketState.build(self.scenario, market_seed)
        self.threads = available_threads() if self.threads is None else int(self.threads)
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.threads > 1:
            self.state.pipeline = Pipeline()
        self.strategies = []
        for p, (population, child) in enumerate(
            zip(self.scenario.populations, strategy_seed.spawn(len(self.scenario.populations)))
        ):
            cls = STRATEGIES.get(population.strategy)
            view = self.state.population_view(p, self.scenario.run.rounds)
            self.strategies.append(cls(self.scenario.strategy_params(population), view,
                                       np.random.default_rng(child)))
        self._buffers: dict[int, Outcomes] = {}
        self._events = sorted(self.scenario.events, key=lambda e: e.at_round)
        self.settings = self.scenario  # the scenario as changed by events so far
        self._counterfactuals: Optional[Counterfactuals] = None
        self.value_won = np.zeros(self.state.n_agents)  # per agent, over the rounds played (liquid welfare)

    def attach(self, recorder: Recorder) -> None:
        """Send the strategies' own tables (``Strategy.tables``) to the run folder."""
        for strategy in self.strategies:
            if strategy.tables:
                strategy._emit = recorder.write_table

    def close(self) -> None:
        """Let every strategy release what it holds (connections, caches); safe to call twice."""
        errors = []
        if self.state.pipeline is not None:
            self.state.pipeline.close()
            self.state.pipeline = None
        for strategy in self.strategies:
            try:
                strategy.close()
            except Exception as error:  # close them all, then report the first failure
                errors.append(error)
        if errors:
            raise errors[0]

    @property
    def finished(self) -> bool:
        return self.round >= self.scenario.run.rounds

    def channels(self) -> list[ResolvedChannel]:
        """The channels as they stand now (events may have changed them)."""
        return self.settings.resolved_channels()

    def step(self, recorder: Optional[Recorder] = None,
             on_auctions: Optional[Callable[[int], None]] = None) -> RoundResult:
        """Play one round; report cleared auctions to ``on_auctions`` batch by batch."""
        r = self.round
        self._fire_events(r)
        for p, strategy in enumerate(self.strategies):
            strategy.decide(r)
            self._check_multipliers(p)
        self.state.begin_round()
        self._counterfactuals = Counterfactuals.for_round(self, self._counterfactuals)

        key = np.uint64(round_key(self.run_key, r))
        rate = self.settings.run.auction_sample_rate if recorder is not None else 0.0
        plays = [self._play(c, channel, channel_key(key, c), r) for c, channel in enumerate(self.channels())]
        # Several channels take turns in slices of the round, so that their traffic
        # interleaves in time and all of them see budgets run down alike.
        slices = 1 if len(plays) == 1 else CHANNEL_SLICES
        for k in range(slices):
            for play in plays:
                total = play.auctions
                for first in range(total * k // slices, total * (k + 1) // slices, BATCH_AUCTIONS):
                    n = min(BATCH_AUCTIONS, total * (k + 1) // slices - first)
                    self._clear(play, first, n, rate, r)
                    if on_auctions is not None:
                        on_auctions(n)

        self.value_won += self.state.value
        cf = self._counterfactuals
        for p, strategy in enumerate(self.strategies):
            strategy.observe(self.state.feedback(p, r, *(cf.of(p) if cf is not None else (None, None))))
        results = [ChannelResult(play.channel.name, play.auctions, play.totals, play.segments) for play in plays]
        result = RoundResult(r, sum(c.auctions for c in results), sum(c.totals.sold for c in results),
                             sum(c.totals.revenue for c in results), sum(c.totals.welfare for c in results),
                             results, sum(c.totals.max_welfare for c in results))
        finite.check_round(self, result)  # before anything of the round is written
        if recorder is not None:
            for play in plays:
                if play.sample:
                    columns = {k: np.concatenate([part[k] for part in play.sample]) for k in play.sample[0]}
                    if not play.mechanism.capabilities.clicks:
                        columns["clicks"] = pa.nulls(columns["clicks"].size, pa.int8())
                    recorder.write_auctions(columns)
            records.record_round(self, recorder, result, plays)
            if self.settings.traffic is not None:
                records.record_segments(self, recorder, r, plays)
        self.round += 1
        return result

    def _play(self, c: int, channel: ResolvedChannel, key: np.uint64, r: int) -> "ChannelPlay":
        """Channel ``c`` in round ``r``: its auctions, and with ``[traffic]`` their segments."""
        mechanism = MECHANISMS.get(channel.mechanism.type)
        totals = Totals(mechanism.slots(channel.mechanism))
        traffic = self.settings.traffic
        if traffic is None:
            return ChannelPlay(c, channel, mechanism, key, self.state.kernel_market(c), totals,
                               channel.auctions_per_round)
        auctions = traffic.auctions(channel.auctions_per_round, r)
        counts = traffic.segment_counts(auctions, r)
        tables = self.state.contexts[c]
        context = tables.for_round(key, counts)
        market = self.state.kernel_market(c, context)
        prediction = getattr(channel.mechanism, "ctr_prediction", None)
        noise = prediction.noise if prediction is not None else 0.0
        if mechanism.capabilities.clicks and (tables.has_ctr or noise > 0):
            market.ctr_context = (context[0], tables.click_factor)
            market.ctr_noise = ctr_noise_table(float(noise)) if noise > 0 else None
        return ChannelPlay(c, channel, mechanism, key, market, totals, auctions,
                           segment_counts=np.asarray(counts, np.int64),
                           segments=np.zeros((len(counts), len(SEGMENT_TOTALS))),
                           segment_populations=np.zeros((len(counts), len(self.strategies), len(POPULATION_SEGMENT))))

    def _clear(self, play: "ChannelPlay", first: int, n: int, rate: float, r: int) -> None:
        slots = play.totals.slots
        out = self._buffers.get(play.index)
        if out is None or out.slots != slots:
            out = self._buffers[play.index] = Outcomes.allocate(BATCH_AUCTIONS, slots)
        play.mechanism.clear(play.settings, play.market, play.channel.bidders_per_auction, play.key, first, n, out)
        play.mechanism.accumulate(out, n, play.market, play.totals)
        if play.segments is not None:
            clicks = out.clicks[:n] if play.mechanism.capabilities.clicks else None
            segment_totals(play.market.context[0], first, n, out.winner[:n], out.price[:n], out.value[:n], clicks,
                           out.efficient[:n], out.others_paid[:n], play.market.bid_state, kernel.SCALE,
                           play.segments, self.state.by_agent(),
                           (self.state.population_start, play.segment_populations))
        if self._counterfactuals is not None:
            self._counterfactuals.replay(play, out, first, n)
        if rate > 0:
            keep = kernel.sampled_auctions(play.key, first, n, rate)
            if keep.size:
                play.sample.append(records.auction_sample(self, play, out, keep, first, r))

    # ---- between rounds ----
    def _fire_events(self, r: int) -> None:
        for event in self._events:
            if event.at_round == r:
                self.apply(event.set, source=f"event at round {r}")

    def apply(self, updates: dict, source: str = "intervention") -> None:
        """Change the market between rounds (``{"mechanism.reserve": 0.2, ...}``), as an event would.

        Validated like a scenario override; a bad key raises ``InputError`` naming it and
        leaves the market unchanged. Takes effect from the next ``step()``.
        """
        before = self.settings
        after = self.settings = before.with_updates(updates, source=source)
        for p, (old, new) in enumerate(zip(before.populations, after.populations)):
            if old.params != new.params:
                self.strategies[p].set_params(after.strategy_params(new))
        if [(p.values, p.conversion_rate) for p in before.populations] != \
                [(p.values, p.conversion_rate) for p in after.populations]:  # both make the value tables
            self.state.set_values(after.populations)
        if context_of(before) != context_of(after):
            self.state.set_context(after)
        self.state.fit_outcomes(after.resolved_channels())

    def _check_multipliers(self, p: int) -> None:
        part = self.state.multiplier[self.state.population_slice(p)]
        ok = (part >= 0) & (part <= MAX_MULTIPLIER)  # NaN fails both: as cheap as the isfinite it replaces
        if not np.all(ok):
            bad = part[~ok][0]
            name = self.scenario.populations[p].strategy
            raise StrategyError(f"strategy '{name}' of population '{self.state.population_names[p]}' "
                                f"set a bid multiplier of {bad}; multipliers must be >= 0 and <= {MAX_MULTIPLIER:g}")

    def regret(self) -> np.ndarray:
        """Each agent's regret so far (NaN, written as null, where its strategy records none)."""
        regret = np.full(self.state.n_agents, np.nan)
        for p, strategy in enumerate(self.strategies):
            mine = strategy.regret()
            if mine is not None:
                regret[self.state.population_slice(p)] = mine
        return regret


@dataclass
class ChannelResult:
    name: str
    auctions: int
    totals: Totals
    segments: Optional[np.ndarray] = None  # float64[S, 6] per segment (``SEGMENT_TOTALS``), [traffic] only


@dataclass
class ChannelPlay:
    """A channel during one round: what it runs and what it has gathered."""

    index: int
    channel: ResolvedChannel
    mechanism: Mechanism
    key: np.uint64
    market: KernelMarket
    totals: Totals
    auctions: int  # this round (the channel's auctions_per_round, times the traffic curve's volume)
    sample: list = field(default_factory=list)
    segment_counts: Optional[np.ndarray] = None  # int64[S]: auctions per segment this round ([traffic] only)
    segments: Optional[np.ndarray] = None  # float64[S, 6]: totals per segment (``SEGMENT_TOTALS``)
    segment_populations: Optional[np.ndarray] = None  # float64[S, P, 4]: per population (``POPULATION_SEGMENT``)

    @property
    def settings(self):
        return self.channel.mechanism


def channel_key(key_of_round, channel: int) -> np.uint64:
    """The first channel uses the round's key itself; the others a hash of it."""
    if channel == 0:
        return np.uint64(key_of_round)
    return np.uint64(auction_key(np.uint64(key_of_round), np.uint64((1 << 63) + channel)))


def available_threads() -> int:
    """``NUMBA_NUM_THREADS`` when set (sweep workers set 1, so that parallel runs do not
    oversubscribe the cores), else the cores this process may run on (its CPU affinity)."""
    configured = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) >= 1:
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)

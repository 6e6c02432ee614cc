"""The event loop: rounds of auctions, strategies between them, outcomes streamed out.

For each round: scheduled events fire, strategies decide multipliers, the jitted kernel
clears the round's auctions in batches (exact budgets, arrival order), strategies
observe their agents' outcomes, and the recorder writes the round.

Seeds: one ``SeedSequence`` per run spawns the kernel's hash key, one generator per
population for budgets and value scales, and one per strategy. Batching never changes
results, since every random number is a hash of (key, round, auction, counter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pyarrow as pa

from bidscape.bidders import STRATEGIES, Strategy
from bidscape.engine import counterfactual, finite, kernel
from bidscape.outputs.recorder import Recorder
from bidscape.engine.kernel import CLICKS, SPEND, VALUE, WINS
from bidscape.engine.rng import auction_key, round_key, run_key_from_seed
from bidscape.limits import MAX_MULTIPLIER
from bidscape.markets.state import MarketState
from bidscape.mechanisms import MECHANISMS, KernelMarket, Mechanism, Outcomes, Totals
from bidscape.mechanisms.base import SingleItemAuction
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
    state: MarketState = field(init=False)
    strategies: list[Strategy] = field(init=False)
    round: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        root = np.random.SeedSequence(self.scenario.run.seed)
        kernel_seed, market_seed, strategy_seed = root.spawn(3)
        self.run_key = np.uint64(run_key_from_seed(kernel_seed))
        self.state = MarketState.build(self.scenario, market_seed)
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
        self._settings = self.scenario  # the scenario as changed by events so far
        self._counterfactuals: Optional[_Counterfactuals] = None
        self.value_won = np.zeros(self.state.n_agents)  # per agent, over the rounds played (liquid welfare)

    def attach(self, recorder: Recorder) -> None:
        """Send the strategies' own tables (``Strategy.tables``) to the run folder."""
        for strategy in self.strategies:
            if strategy.tables:
                strategy._emit = recorder.write_table

    def close(self) -> None:
        """Let every strategy release what it holds (connections, caches); safe to call twice."""
        errors = []
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
        return self._settings.resolved_channels()

    def step(self, recorder: Optional[Recorder] = None,
             on_auctions: Optional[Callable[[int], None]] = None) -> RoundResult:
        """Play one round; report cleared auctions to ``on_auctions`` batch by batch."""
        r = self.round
        self._fire_events(r)
        for p, strategy in enumerate(self.strategies):
            strategy.decide(r)
            self._check_multipliers(p)
        self.state.begin_round()
        self._counterfactuals = _Counterfactuals.for_round(self)

        key = np.uint64(round_key(self.run_key, r))
        rate = self._settings.run.auction_sample_rate if recorder is not None else 0.0
        plays = []
        for c, channel in enumerate(self.channels()):
            mechanism = MECHANISMS.get(channel.mechanism.type)
            plays.append(_ChannelPlay(c, channel, mechanism, channel_key(key, c), self.state.kernel_market(c),
                                      Totals(mechanism.slots(channel.mechanism))))
        # Several channels take turns in slices of the round, so that their traffic
        # interleaves in time and all of them see budgets run down alike.
        slices = 1 if len(plays) == 1 else CHANNEL_SLICES
        for k in range(slices):
            for play in plays:
                total = play.channel.auctions_per_round
                for first in range(total * k // slices, total * (k + 1) // slices, BATCH_AUCTIONS):
                    n = min(BATCH_AUCTIONS, total * (k + 1) // slices - first)
                    self._clear(play, first, n, rate, r)
                    if on_auctions is not None:
                        on_auctions(n)

        self.value_won += self.state.value
        cf = self._counterfactuals
        for p, strategy in enumerate(self.strategies):
            strategy.observe(self.state.feedback(p, r, *(cf.of(p) if cf is not None else (None, None))))
        results = [ChannelResult(play.channel.name, play.channel.auctions_per_round, play.totals) for play in plays]
        result = RoundResult(r, sum(c.auctions for c in results), sum(c.totals.sold for c in results),
                             sum(c.totals.revenue for c in results), sum(c.totals.welfare for c in results),
                             results, sum(c.totals.max_welfare for c in results))
        finite.check_round(self, result)  # before anything of the round is written
        if recorder is not None:
            for play in plays:
                if play.sample:
                    columns = {k: np.concatenate([part[k] for part in play.sample]) for k in play.sample[0]}
                    if play.mechanism.kind != "position":
                        columns["clicks"] = pa.nulls(columns["clicks"].size, pa.int8())
                    recorder.write_auctions(columns)
            self._record_round(recorder, result, plays)
        self.round += 1
        return result

    def _clear(self, play: "_ChannelPlay", first: int, n: int, rate: float, r: int) -> None:
        slots = play.totals.slots
        out = self._buffers.get(play.index)
        if out is None or out.slots != slots:
            out = self._buffers[play.index] = Outcomes.allocate(BATCH_AUCTIONS, slots)
        play.mechanism.clear(play.settings, play.market, play.channel.bidders_per_auction, play.key, first, n, out)
        play.mechanism.accumulate(out, n, play.market, play.totals)
        if self._counterfactuals is not None:
            self._counterfactuals.replay(play, out, first, n)
        if rate > 0:
            keep = kernel.sampled_auctions(play.key, first, n, rate)
            if keep.size:
                play.sample.append(self._auction_sample(play, out, keep, first, r))

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
        before = self._settings
        after = self._settings = before.with_updates(updates, source=source)
        for p, (old, new) in enumerate(zip(before.populations, after.populations)):
            if old.params != new.params:
                self.strategies[p].set_params(after.strategy_params(new))
        if [p.values for p in before.populations] != [p.values for p in after.populations]:
            self.state.set_values(after.populations)

    def _check_multipliers(self, p: int) -> None:
        part = self.state.multiplier[self.state.population_slice(p)]
        ok = (part >= 0) & (part <= MAX_MULTIPLIER)  # NaN fails both: as cheap as the isfinite it replaces
        if not np.all(ok):
            bad = part[~ok][0]
            name = self.scenario.populations[p].strategy
            raise StrategyError(f"strategy '{name}' of population '{self.state.population_names[p]}' "
                                f"set a bid multiplier of {bad}; multipliers must be >= 0 and <= {MAX_MULTIPLIER:g}")

    # ---- recording ----
    def _auction_sample(self, play: "_ChannelPlay", out: Outcomes, keep: np.ndarray, first: int,
                        r: int) -> dict[str, np.ndarray]:
        slots = out.slots
        rows = keep.size * slots
        winner = out.winner[keep].ravel()
        scale = np.where(winner >= 0, self.state.value_scale[np.maximum(winner, 0)], 0.0)
        position = play.mechanism.kind == "position"
        clicks = out.clicks[keep].ravel()
        return {
            "round": np.full(rows, r, np.int32),
            "channel": np.full(rows, play.index, np.int16),
            "auction": np.repeat(keep + first, slots),
            "slot": np.tile(np.arange(slots, dtype=np.int16), keep.size),
            "winner": winner,
            "price": out.price[keep].ravel(),
            "top_bid": out.bid[keep].ravel(),
            "second_bid": out.next_bid[keep].ravel(),
            "winner_value": out.value[keep].ravel() * scale * (clicks if position else 1.0),
            "clicks": clicks.copy(),
        }

    def _record_round(self, recorder: Recorder, result: RoundResult, plays: list["_ChannelPlay"]) -> None:
        for play, channel in zip(plays, result.channels):
            settings = play.settings
            bidders = play.channel.bidders_per_auction
            totals = channel.totals
            position = play.mechanism.kind == "position"
            recorder.write_market({
                "round": [result.round],
                "channel": [channel.name],
                "auctions": [channel.auctions],
                "sold": [totals.sold],
                "revenue": [totals.revenue],
                "welfare": [totals.welfare],
                "max_welfare": [totals.max_welfare],
                "mean_price": [totals.revenue / totals.sold if totals.sold else None],
                "reserve": [settings.reserve],
                "soft_floor": [settings.soft_floor],
                "mechanism": [settings.type],
                "bidders_per_auction": [int(play.market.ranges[:, 1].sum()) if bidders == "all" else bidders],
                "clicks": [int(totals.slot_totals[:, 1].sum()) if position else None],
                "slot_impressions": [totals.slot_totals[:, 0].astype(np.int64).tolist()],
                "slot_clicks": [totals.slot_totals[:, 1].astype(np.int64).tolist() if position else None],
                "slot_revenue": [totals.slot_totals[:, 2].tolist()],
            })
        s = self.state
        regret = self._regret()
        self._record_populations(recorder, result.round, plays, regret)
        mode = self._settings.run.record_agents
        if mode == "none":
            return
        for play in plays:
            outcome = play.market.outcome_state
            position = play.mechanism.kind == "position"
            columns = {
                "spend": outcome[:, SPEND], "wins": outcome[:, WINS], "value": outcome[:, VALUE],
                "utility": outcome[:, VALUE] - outcome[:, SPEND],
                "budget_remaining": s.remaining_budget, "multiplier": s.multiplier,
                "clicks": outcome[:, CLICKS], "regret": regret,
            }
            ranges = play.market.ranges
            codes = np.repeat(ranges[:, 2].astype(np.int16), ranges[:, 1])
            channel_codes = np.full(codes.size, play.index, np.int16)
            if mode == "agent":
                if int(ranges[-1, 0] + ranges[-1, 1] - ranges[0, 0]) == codes.size:  # contiguous: views
                    who = slice(int(ranges[0, 0]), int(ranges[-1, 0] + ranges[-1, 1]))
                    agent_ids = np.arange(who.start, who.stop, dtype=np.int64)
                else:
                    agent_ids = np.concatenate([np.arange(a, a + n, dtype=np.int64) for a, n, _ in ranges])
                    who = agent_ids
                recorder.write_agents({
                    "round": np.full(codes.size, result.round, np.int32),
                    "agent": agent_ids,
                    **{name: np.ascontiguousarray(column[who]) for name, column in columns.items()},
                    "agents": np.ones(codes.size, np.int64),
                } | ({} if position else {"clicks": pa.nulls(codes.size, pa.float64())}), codes, channel_codes)
            else:
                sums = {name: np.array([column[a:a + n].sum() for a, n, _ in ranges])
                        for name, column in columns.items()}
                sums["multiplier"] = sums["multiplier"] / ranges[:, 1]  # mean multiplier of the population
                sums["regret"] = sums["regret"] / ranges[:, 1]  # mean regret of the population
                recorder.write_agents({
                    "round": np.full(len(ranges), result.round, np.int32),
                    "agent": pa.nulls(len(ranges), pa.int64()),
                    **sums,
                    "agents": ranges[:, 1].astype(np.int64),
                } | ({} if position else {"clicks": pa.nulls(len(ranges), pa.float64())}),
                    ranges[:, 2].astype(np.int16), np.full(len(ranges), play.index, np.int16))


    def _record_populations(self, recorder: Recorder, r: int, plays: list["_ChannelPlay"],
                            regret: np.ndarray) -> None:
        """The round's totals per channel and population (``populations.arrow``), cheap at any size."""
        s = self.state
        starts = s.population_start[:-1]
        sizes = np.diff(s.population_start)
        budget = np.add.reduceat(s.budget, starts)
        remaining = np.add.reduceat(s.remaining_budget, starts)
        liquid = np.add.reduceat(np.minimum(s.budget, self.value_won), starts)
        multiplier = np.add.reduceat(s.multiplier, starts) / sizes
        with np.errstate(invalid="ignore"):  # NaN regret (none recorded) stays NaN, written as null
            mean_regret = np.add.reduceat(regret, starts) / sizes
        for play in plays:
            ranges = play.market.ranges
            who = ranges[:, 2]
            outcome = play.market.outcome_state
            totals = {name: np.array([outcome[a:a + n, column].sum() for a, n, _ in ranges])
                      for name, column in (("spend", SPEND), ("wins", WINS), ("value", VALUE), ("clicks", CLICKS))}
            bidders = play.channel.bidders_per_auction
            eligible = ranges[:, 1].sum()
            per_agent = play.channel.auctions_per_round * (1.0 if bidders == "all" else min(1.0, bidders / eligible))
            finite = np.isfinite(budget[who])
            recorder.write_populations({
                "round": np.full(len(ranges), r, np.int32),
                "agents": ranges[:, 1].astype(np.int64),
                "participations": per_agent * ranges[:, 1],
                **{k: v for k, v in totals.items() if k != "clicks"},
                "utility": totals["value"] - totals["spend"],
                "clicks": totals["clicks"] if play.mechanism.kind == "position" else np.full(len(ranges), np.nan),
                "budget": np.where(finite, budget[who], np.nan),
                "budget_remaining": np.where(finite, remaining[who], np.nan),
                "multiplier": multiplier[who],
                "regret": mean_regret[who],
                "liquid_welfare": liquid[who],
            }, who.astype(np.int16), np.full(len(ranges), play.index, np.int16))

    def _regret(self) -> np.ndarray:
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


@dataclass
class _ChannelPlay:
    """A channel during one round: what it runs and what it has gathered."""

    index: int
    channel: ResolvedChannel
    mechanism: Mechanism
    key: np.uint64
    market: KernelMarket
    totals: Totals
    sample: list = field(default_factory=list)

    @property
    def settings(self):
        return self.channel.mechanism


def channel_key(key_of_round, channel: int) -> np.uint64:
    """The first channel uses the round's key itself; the others a hash of it."""
    if channel == 0:
        return np.uint64(key_of_round)
    return np.uint64(auction_key(np.uint64(key_of_round), np.uint64((1 << 63) + channel)))


@dataclass
class _Counterfactuals:
    """A round's full-information feedback for the populations whose strategy has a grid.

    A population gets counterfactuals only when every channel it bids in is a single-item
    auction whose price does not depend on the third bid (``bidscape.engine.counterfactual``).
    """

    grid_of: np.ndarray  # int64[P]: row of ``grids`` per population, -1 = none
    row_base: np.ndarray  # int64[P]: agent a of population p is row a - row_base[p]
    rows: dict[int, slice]  # population -> its rows
    arms: np.ndarray  # int64[G]
    grids: np.ndarray  # float64[G, K]
    utility: np.ndarray  # float64[rows, K]
    taken: np.ndarray  # float64[rows]: auctions taken part in

    @classmethod
    def for_round(cls, sim: "Simulation") -> Optional["_Counterfactuals"]:
        wanted = {p: g for p, s in enumerate(sim.strategies) if (g := s.counterfactual_grid()) is not None}
        if not wanted:
            return None
        for channel in sim.channels():
            if not replayable(MECHANISMS.get(channel.mechanism.type)):
                for p in channel.populations:
                    wanted.pop(p, None)
        if not wanted:
            return None
        state = sim.state
        width = max(len(g) for g in wanted.values())
        grid_of = np.full(len(sim.strategies), -1, np.int64)
        row_base = np.zeros(len(sim.strategies), np.int64)
        grids = np.zeros((len(wanted), width))
        arms = np.zeros(len(wanted), np.int64)
        rows: dict[int, slice] = {}
        next_row = 0
        for g, (p, grid) in enumerate(sorted(wanted.items())):
            part = state.population_slice(p)
            grid_of[p] = g
            grids[g, :len(grid)] = grid
            arms[g] = len(grid)
            row_base[p] = part.start - next_row
            rows[p] = slice(next_row, next_row + part.stop - part.start)
            next_row += part.stop - part.start
        return cls(grid_of, row_base, rows, arms, grids, np.zeros((next_row, width)), np.zeros(next_row))

    def replay(self, play: "_ChannelPlay", out: Outcomes, first: int, n: int) -> None:
        if not replayable(play.mechanism) or not np.any(self.grid_of[play.market.ranges[:, 2]] >= 0):
            return
        m = play.market
        rule = play.mechanism.rule(play.settings)
        common = (out.winner[:n, 0], out.bid[:n, 0], out.next_bid[:n, 0], m.outcome_state, self.row_base,
                  self.grid_of, self.grids, self.arms, self.utility, self.taken, m.participation)
        bidders = play.channel.bidders_per_auction
        if bidders == "all":
            counterfactual.counterfactual_all(rule, play.mechanism.all_pay, play.key, first, n, m.ranges,
                                              m.bid_state, m.value_tables, *common)
        else:
            counterfactual.counterfactual_sampled(rule, play.mechanism.all_pay, play.key, first, n, bidders,
                                                  m.ranges, m.bid_state, m.value_tables, m.marked, *common)

    def of(self, p: int) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        if p not in self.rows:
            return None, None
        g = self.grid_of[p]
        return self.utility[self.rows[p], :self.arms[g]], self.taken[self.rows[p]]


def replayable(mechanism: Mechanism) -> bool:
    """Whether counterfactual utilities can be computed for this mechanism."""
    return isinstance(mechanism, SingleItemAuction) and mechanism.third_weight == 0

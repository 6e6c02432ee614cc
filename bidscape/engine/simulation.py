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
from bidscape.engine import kernel
from bidscape.engine.recorder import Recorder
from bidscape.engine.rng import round_key, run_key_from_seed
from bidscape.markets.state import MarketState
from bidscape.mechanisms import MECHANISMS
from bidscape.scenario import Scenario

BATCH_AUCTIONS = 1 << 17  # auctions per kernel call: ~5 MB of per-auction buffers


class StrategyError(RuntimeError):
    """A strategy produced multipliers the kernel cannot use."""


@dataclass
class RoundResult:
    round: int
    auctions: int
    sold: int
    revenue: float
    welfare: float


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
        self._buffers = {name: np.empty(BATCH_AUCTIONS, dtype) for name, dtype in (
            ("winner", np.int64), ("price", np.float64), ("top_bid", np.float64),
            ("second_bid", np.float64), ("winner_value", np.float64))}
        self._events = sorted(self.scenario.events, key=lambda e: e.at_round)
        self._settings = self.scenario  # the scenario as changed by events so far

    @property
    def finished(self) -> bool:
        return self.round >= self.scenario.run.rounds

    def step(self, recorder: Optional[Recorder] = None,
             on_auctions: Optional[Callable[[int], None]] = None) -> RoundResult:
        """Play one round; report cleared auctions to ``on_auctions`` batch by batch."""
        r = self.round
        self._fire_events(r)
        settings = self._settings
        for p, strategy in enumerate(self.strategies):
            strategy.decide(r)
            self._check_multipliers(p)
        self.state.begin_round()

        mechanism = MECHANISMS.get(settings.mechanism.type)
        bidders = settings.market.bidders_per_auction
        reserve = settings.mechanism.reserve
        n_auctions = settings.run.auctions_per_round
        key = np.uint64(round_key(self.run_key, r))
        sold, revenue, welfare = 0, 0.0, 0.0
        sample: list[dict[str, np.ndarray]] = []  # written once per round, whatever the batching
        b = self._buffers
        for first in range(0, n_auctions, BATCH_AUCTIONS):
            n = min(BATCH_AUCTIONS, n_auctions - first)
            out = (b["winner"][:n], b["price"][:n], b["top_bid"][:n], b["second_bid"][:n],
                   b["winner_value"][:n])
            if bidders == "all":
                kernel.clear_all(*mechanism.price_weights, key, first, n, self.state.bid_state,
                                 self.state.population_start, self.state.value_tables, reserve, *out)
            else:
                kernel.clear_sampled(*mechanism.price_weights, key, first, n, bidders, self.state.bid_state,
                                     self.state.population_start, self.state.value_tables, reserve,
                                     self.state.marked, *out)
            sold, revenue, welfare = kernel.accumulate_outcomes(
                out[0], out[1], out[4], self.state.outcome_state, sold, revenue, welfare)
            if recorder is not None and settings.run.auction_sample_rate > 0:
                sample.append(self._auction_sample(key, r, first, n))
            if on_auctions is not None:
                on_auctions(n)

        for p, strategy in enumerate(self.strategies):
            strategy.observe(self.state.feedback(p, r))
        result = RoundResult(r, n_auctions, sold, revenue, welfare)
        if recorder is not None:
            if sample:
                recorder.write_auctions({k: np.concatenate([part[k] for part in sample]) for k in sample[0]})
            self._record_round(recorder, result)
        self.round += 1
        return result

    # ---- between rounds ----
    def _fire_events(self, r: int) -> None:
        due = [e for e in self._events if e.at_round == r]
        if not due:
            return
        before = self._settings
        for event in due:
            self._settings = self._settings.with_updates(event.set, source=f"event at round {r}")
        after = self._settings
        for p, (old, new) in enumerate(zip(before.populations, after.populations)):
            if old.params != new.params:
                self.strategies[p].set_params(after.strategy_params(new))
        if [p.values for p in before.populations] != [p.values for p in after.populations]:
            self.state.set_values(after.populations)

    def _check_multipliers(self, p: int) -> None:
        part = self.state.multiplier[self.state.population_slice(p)]
        if not np.all(np.isfinite(part) & (part >= 0)):
            bad = part[~(np.isfinite(part) & (part >= 0))][0]
            name = self.scenario.populations[p].strategy
            raise StrategyError(f"strategy '{name}' of population '{self.state.population_names[p]}' "
                                f"set a bid multiplier of {bad}; multipliers must be finite and >= 0")

    # ---- recording ----
    def _auction_sample(self, key, r: int, first: int, n: int) -> dict[str, np.ndarray]:
        keep = kernel.sampled_auctions(key, first, n, self._settings.run.auction_sample_rate)
        b = self._buffers
        return {
            "round": np.full(keep.size, r, np.int32),
            "auction": keep + first,
            "winner": b["winner"][keep],
            "price": b["price"][keep],
            "top_bid": b["top_bid"][keep],
            "second_bid": b["second_bid"][keep],
            "winner_value": b["winner_value"][keep] * np.where(
                b["winner"][keep] >= 0, self.state.value_scale[np.maximum(b["winner"][keep], 0)], 0.0),
        }

    def _record_round(self, recorder: Recorder, result: RoundResult) -> None:
        settings = self._settings
        bidders = settings.market.bidders_per_auction
        recorder.write_market({
            "round": [result.round],
            "auctions": [result.auctions],
            "sold": [result.sold],
            "revenue": [result.revenue],
            "welfare": [result.welfare],
            "mean_price": [result.revenue / result.sold if result.sold else None],
            "reserve": [settings.mechanism.reserve],
            "mechanism": [settings.mechanism.type],
            "bidders_per_auction": [self.state.n_agents if bidders == "all" else bidders],
        })
        mode = settings.run.record_agents
        if mode == "none":
            return
        s = self.state
        columns = {
            "spend": s.spend, "wins": s.wins, "value": s.value, "utility": s.value - s.spend,
            "budget_remaining": s.remaining_budget, "multiplier": s.multiplier,
        }
        starts = s.population_start[:-1]
        sizes = np.diff(s.population_start)
        if mode == "agent":
            n = s.n_agents
            recorder.write_agents({
                "round": np.full(n, result.round, np.int32),
                "agent": np.arange(n, dtype=np.int64),
                **{name: np.ascontiguousarray(column) for name, column in columns.items()},
                "agents": np.ones(n, np.int64),
            }, np.repeat(np.arange(len(sizes), dtype=np.int16), sizes))
        else:
            sums = {name: np.add.reduceat(column, starts) for name, column in columns.items()}
            sums["multiplier"] = sums["multiplier"] / sizes  # mean multiplier of the population
            recorder.write_agents({
                "round": np.full(len(sizes), result.round, np.int32),
                "agent": pa.nulls(len(sizes), pa.int64()),
                **sums,
                "agents": sizes.astype(np.int64),
            }, np.arange(len(sizes), dtype=np.int16))


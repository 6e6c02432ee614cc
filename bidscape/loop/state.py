"""Market state: struct-of-arrays over all agents, populations as contiguous ranges.

No Python object per agent: an agent is a row index. Memory is about 80 bytes per agent
(bid state 32, holding the multiplier strategies write; outcome state 32 per channel; budget
8; value won 8; a dedup mark 1, touched only above 16 bidders per auction), plus what
strategies keep and personal reserves, throttling or channel budgets where a scenario has
them.

Each channel (exchange) has its own outcome state, and its own remaining budget per
agent when some population caps what it may spend there; the total remaining budget in
``bid_state`` is shared by all channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from bidscape.bidders.base import PopulationView, RoundFeedback
from bidscape.engine.kernel import (BID_COLUMNS, CLICKS, MULTIPLIER, OUTCOME_COLUMNS, QUALITY, REMAINING, SCALE,
                                    SPEND, VALUE, WINS)
from bidscape.engine.modifiers import BidModifiers, Modifier
from bidscape.engine.pipeline import Pipeline
from bidscape.markets.context import ChannelContext, channel_contexts
from bidscape.mechanisms.base import KernelMarket
from bidscape.scenario import Population, ResolvedChannel, Scenario


@dataclass
class MarketState:
    population_names: list[str]
    population_start: np.ndarray  # int64[P + 1]: agents of population p are start[p]:start[p+1]
    value_tables: np.ndarray  # float64[P, intervals + 1]: per-auction value quantiles
    bid_state: np.ndarray  # float64[A, 4]: multiplier, remaining_budget, value scale, quality (32 bytes a row)
    channel_names: list[str]
    # float64[C, A, 4]: spend, wins, value, clicks (this round); [C, A, 3] without clicks while no
    # channel runs a position auction (``outcome_columns``), which saves a quarter of it
    channel_outcomes: np.ndarray
    channel_caps: list[Optional[np.ndarray]]  # per channel: float64[A] budget left there, or None (no cap)
    channel_ranges: list[np.ndarray]  # per channel: int64[R, 3] first agent, count, population
    budget: np.ndarray  # float64[A]: per run; inf when unlimited
    multiplier: np.ndarray  # float64[A]: set by strategies before each round; a view of bid_state's first column
    marked: np.ndarray  # uint8[A]: scratch for drawing distinct participants
    reserve: Optional[np.ndarray]  # float64[A] personal reserves when some population has them, else None
    participation: Optional[np.ndarray] = None  # float64[A] when some strategy throttles, else None
    group: Optional[np.ndarray] = None  # int64[A] coordination groups (-1 none) when some strategy uses them
    grouped: tuple[bool, ...] = ()  # per channel: whether a population bidding there uses groups
    pipeline: Optional[Pipeline] = None  # a drawing thread (``Simulation(threads=2)``), None: one thread
    contexts: Optional[list[ChannelContext]] = None  # per channel, its segments; None without [traffic]
    # Agents lo:hi of the populations whose strategy bids per segment (``Strategy.uses_segments``),
    # their bid multipliers per segment float64[hi - lo, S] and this round's spend, wins and value
    # per segment float64[hi - lo, S, 3] (``engine.context``); None when no strategy does.
    segment_span: Optional[tuple[int, int]] = None
    segment_users: frozenset[int] = frozenset()  # those populations
    segment_shares: tuple[tuple[float, ...], ...] = ()  # per population, the segments' shares it targets
    segment_multiplier: Optional[np.ndarray] = None
    segment_outcomes: Optional[np.ndarray] = None

    @classmethod
    def build(cls, scenario: Scenario, seed: np.random.SeedSequence) -> "MarketState":
        """Draw per-agent budgets, value scales, quality scores and reserves, one generator per population.

        Arrays that only some strategies use (participation probabilities, coordination
        groups, channel budgets to steer) exist only when a population's strategy declares
        it, so the kernels compile those features out otherwise.
        """
        from bidscape.bidders import STRATEGIES

        populations = scenario.populations
        kinds = [STRATEGIES.get(p.strategy) for p in populations]
        channels = scenario.resolved_channels()
        sizes = [p.size for p in populations]
        start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n_agents = int(start[-1])
        budget = np.empty(n_agents)
        bid_state = aligned_zeros((n_agents, BID_COLUMNS))  # rows never straddle a cache line
        reserve = np.zeros(n_agents) if any(p.reserve is not None for p in populations) else None
        for population, child, lo, hi in zip(populations, seed.spawn(len(populations)), start[:-1], start[1:]):
            rng = np.random.default_rng(child)
            bid_state[lo:hi, SCALE] = population.value_scale.sample(rng, population.size)
            budget[lo:hi] = population.budget.sample(rng, population.size) if population.budget else np.inf
            bid_state[lo:hi, QUALITY] = population.quality.sample(rng, population.size)
            if population.reserve is not None:
                reserve[lo:hi] = population.reserve.sample(rng, population.size)
        bid_state[:, REMAINING] = budget
        bid_state[:, MULTIPLIER] = 1.0
        users = _segment_users(scenario, kinds)
        span = None if not users else (int(start[min(users)]), int(start[max(users) + 1]))
        segments = 0 if span is None else len(scenario.traffic.segments)
        outcomes = np.zeros((len(channels), n_agents, outcome_columns(channels)))
        caps = [_caps(c, populations, start, budget) for c in channels]
        declared = {m for kind in kinds for m in kind.modifiers}
        if Modifier.CHANNEL_CAPS in declared:
            caps = [np.full(n_agents, np.inf) if cap is None else cap for cap in caps]
        return cls(
            population_names=[p.name for p in populations],
            population_start=start,
            value_tables=value_tables(populations),
            bid_state=bid_state,
            channel_names=[c.name for c in channels],
            channel_outcomes=outcomes,
            channel_caps=caps,
            channel_ranges=[_ranges(c, start) for c in channels],
            budget=budget,
            multiplier=bid_state[:, MULTIPLIER],
            marked=np.zeros(n_agents, np.uint8),
            reserve=reserve,
            participation=np.ones(n_agents) if Modifier.PARTICIPATION in declared else None,
            group=np.full(n_agents, -1, np.int64) if Modifier.GROUPS in declared else None,
            grouped=tuple(any(Modifier.GROUPS in kinds[p].modifiers for p in c.populations) for c in channels),
            contexts=channel_contexts(scenario, channels, [_ranges(c, start) for c in channels]),
            segment_span=span,
            segment_users=users,
            segment_shares=() if scenario.traffic is None else tuple(
                tuple(seg.share if scenario.eligible(p, s) else 0.0 for s, seg in enumerate(scenario.traffic.segments))
                for p in range(len(populations))),
            segment_multiplier=None if span is None else np.ones((span[1] - span[0], segments)),
            segment_outcomes=None if span is None else np.zeros((span[1] - span[0], segments, 3)),
        )

    def kernel_market(self, c: int, context: Optional[tuple] = None) -> KernelMarket:
        """Channel ``c``'s arrays for the kernels; ``context`` the round's impressions (``[traffic]`` only)."""
        # groups only where a grouping population bids: other channels may run any mechanism
        group = self.group if self.grouped and self.grouped[c] else None
        segments = None
        if context is not None and self.segment_span is not None:
            segments = (context[0], np.int64(self.segment_span[0]), self.segment_multiplier)
        modifiers = BidModifiers(segments, self.channel_caps[c], self.reserve, self.participation, group)
        return KernelMarket(self.channel_ranges[c], self.bid_state, self.channel_outcomes[c], self.value_tables,
                            self.marked, modifiers, self.pipeline, context)

    def by_agent(self) -> Optional[tuple]:
        """``engine.context.segment_totals``'s per-agent outcomes by segment, None when no strategy wants them."""
        if self.segment_span is None:
            return None
        return np.int64(self.segment_span[0]), self.segment_outcomes

    def set_context(self, scenario: Scenario) -> None:
        """Rebuild the segment tables after an event changed traffic, targeting or segment values."""
        self.contexts = channel_contexts(scenario, scenario.resolved_channels(), self.channel_ranges)

    @property
    def n_agents(self) -> int:
        return self.budget.shape[0]

    @property
    def n_channels(self) -> int:
        return self.channel_outcomes.shape[0]

    @property
    def remaining_budget(self) -> np.ndarray:
        return self.bid_state[:, REMAINING]

    @property
    def value_scale(self) -> np.ndarray:
        return self.bid_state[:, SCALE]

    @property
    def quality(self) -> np.ndarray:
        return self.bid_state[:, QUALITY]

    def fit_outcomes(self, channels: list[ResolvedChannel]) -> None:
        """Give the outcome state its clicks column once some channel runs a position auction (an event
        or an intervention may switch one); between rounds, when the outcomes are about to be zeroed."""
        if self.channel_outcomes.shape[2] < outcome_columns(channels):
            self.channel_outcomes = np.zeros((self.n_channels, self.n_agents, OUTCOME_COLUMNS))

    def _total(self, column: int) -> np.ndarray:
        if self.n_channels == 1:
            return self.channel_outcomes[0, :, column]
        return self.channel_outcomes[:, :, column].sum(axis=0)

    @property
    def spend(self) -> np.ndarray:
        """This round's spend over all channels."""
        return self._total(SPEND)

    @property
    def wins(self) -> np.ndarray:
        return self._total(WINS)

    @property
    def value(self) -> np.ndarray:
        return self._total(VALUE)

    @property
    def clicks(self) -> np.ndarray:
        """This round's clicks over all channels (zeros, read-only, without position auctions)."""
        if self.channel_outcomes.shape[2] <= CLICKS:
            return np.broadcast_to(np.float64(0.0), (self.n_agents,))
        return self._total(CLICKS)

    def population_slice(self, p: int) -> slice:
        return slice(int(self.population_start[p]), int(self.population_start[p + 1]))

    def population_view(self, p: int, rounds: int) -> PopulationView:
        part = self.population_slice(p)
        return PopulationView(
            name=self.population_names[p],
            rounds=rounds,
            budget=_read_only(self.budget[part]),
            remaining_budget=_read_only(self.remaining_budget[part]),
            value_scale=_read_only(self.value_scale[part]),
            multiplier=self.multiplier[part],
            first_agent=part.start,
            channel_names=tuple(self.channel_names),
            participation=None if self.participation is None else self.participation[part],
            channel_caps=None if any(cap is None for cap in self.channel_caps)
            else tuple(cap[part] for cap in self.channel_caps),
            group=None if self.group is None else self.group[part],
            segment_multiplier=self._segment_rows(self.segment_multiplier, p),
            segment_names=() if self.contexts is None else self.contexts[0].names,
            segment_shares=self.segment_shares[p] if self.segment_shares else (),
        )

    def _segment_rows(self, array: Optional[np.ndarray], p: int) -> Optional[np.ndarray]:
        """Population ``p``'s rows of a per-segment array (``segment_multiplier``, ``segment_outcomes``),
        None unless its strategy bids per segment."""
        if array is None or p not in self.segment_users:
            return None
        part = self.population_slice(p)
        return array[part.start - self.segment_span[0]:part.stop - self.segment_span[0]]

    def feedback(self, p: int, round_index: int, counterfactual: Optional[np.ndarray] = None,
                 participations: Optional[np.ndarray] = None) -> RoundFeedback:
        part = self.population_slice(p)
        outcomes = self.channel_outcomes[:, part]
        by_segment = self._segment_rows(self.segment_outcomes, p)  # [n, S, 3]
        segment = (None,) * 3 if by_segment is None else tuple(_read_only(by_segment[:, :, k].T) for k in range(3))
        return RoundFeedback(
            round=round_index,
            spend=_read_only(self.spend[part]),
            wins=_read_only(self.wins[part]),
            value=_read_only(self.value[part]),
            remaining_budget=_read_only(self.remaining_budget[part]),
            clicks=_read_only(self.clicks[part]),
            channel_spend=_read_only(outcomes[:, :, SPEND]),
            channel_wins=_read_only(outcomes[:, :, WINS]),
            channel_value=_read_only(outcomes[:, :, VALUE]),
            counterfactual=None if counterfactual is None else _read_only(counterfactual),
            participations=None if participations is None else _read_only(participations),
            segment_spend=segment[0],
            segment_wins=segment[1],
            segment_value=segment[2],
        )

    def begin_round(self) -> None:
        """Zero the round's outcomes (the kernels read multipliers and value scales from the bid rows)."""
        self.channel_outcomes.fill(0.0)
        if self.segment_outcomes is not None:
            self.segment_outcomes.fill(0.0)

    def set_values(self, populations: list[Population]) -> None:
        self.value_tables = value_tables(populations)


def context_of(scenario: Scenario) -> tuple:
    """What the segment tables are built from: equal for two settings means the same tables."""
    traffic = None if scenario.traffic is None else scenario.traffic.model_dump()
    return traffic, [(p.targets, p.segment_value) for p in scenario.populations]


def _segment_users(scenario: Scenario, kinds: list) -> frozenset[int]:
    """The populations whose strategy bids per segment (``Strategy.uses_segments``), with ``[traffic]``."""
    if scenario.traffic is None:
        return frozenset()
    return frozenset(p for p, (population, kind) in enumerate(zip(scenario.populations, kinds))
                     if kind.uses_segments(scenario.strategy_params(population)))


def outcome_columns(channels: list[ResolvedChannel]) -> int:
    """The outcome state's columns: with clicks when some channel runs a mechanism that has them."""
    from bidscape.mechanisms import MECHANISMS

    clicks = any(MECHANISMS.get(c.mechanism.type).capabilities.clicks for c in channels)
    return OUTCOME_COLUMNS if clicks else OUTCOME_COLUMNS - 1


def value_tables(populations: list[Population]) -> np.ndarray:
    """Per population, the quantile table of its value per impression (single-item auctions) or per
    click (position auctions). With ``value_per = "conversion"`` the ``values`` are per conversion and
    the table holds their expectation, values x ``conversion_rate``: kernels, bids, welfare and
    efficiency all see expected values, and nothing in the kernels changes."""
    return np.stack([p.values.quantile_table() * p.conversion_rate if p.value_per == "conversion"
                     else p.values.quantile_table() for p in populations])


def _ranges(channel: ResolvedChannel, start: np.ndarray) -> np.ndarray:
    return np.array([[start[p], start[p + 1] - start[p], p] for p in channel.populations], np.int64)


def _caps(channel: ResolvedChannel, populations: list[Population], start: np.ndarray,
          budget: np.ndarray) -> Optional[np.ndarray]:
    shares = [p.channel_budget_shares.get(channel.name) for p in populations]
    if all(share is None for share in shares):
        return None
    cap = np.full(budget.shape[0], np.inf)
    for p, share in enumerate(shares):
        if share is not None:
            cap[start[p]:start[p + 1]] = share * budget[start[p]:start[p + 1]]
    return cap


def aligned_zeros(shape: tuple[int, ...], alignment: int = 64) -> np.ndarray:
    """Zeros whose first byte sits on a cache-line boundary (numpy only promises 16).

    With 32-byte rows, a 16-aligned array puts a quarter of its rows across two cache
    lines, and the kernel's prefetch covers only the first: measured 28 vs 20 M bids/s.
    """
    count = int(np.prod(shape))
    raw = np.zeros(count + alignment // 8)
    skip = (-raw.ctypes.data % alignment) // 8
    return raw[skip:skip + count].reshape(shape)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view

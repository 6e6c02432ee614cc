"""What a mechanism is to the engine, and the two kinds bidscape has.

A mechanism clears a batch of auctions of one channel with a jitted kernel, adds the
outcomes to the agents' and the market's totals, and comes with a plain-Python pricing
rule, written independently, that the reference implementation
(``bidscape.mechanisms.reference``) uses and ``check_mechanism`` compares against.

- ``SingleItemAuction``: one impression to the highest bid at or above the reserve;
  the price is ``max(w1 * top + w2 * second + w3 * third, reserve)`` (first, second,
  third price), or every bidder pays its bid (all-pay).
- ``PositionAuction``: ``S`` slots with click-through rates, ranked by bid x quality,
  priced per click (GSP, VCG).

Both write the same per-slot buffers (``Outcomes``), so the event loop, the recorder and
the auction sample treat them alike; a single-item auction has one slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional, Sequence

import numpy as np

from bidscape.engine import capped, draws, kernel, positions
from bidscape.engine.modifiers import NO_MODIFIERS, BidModifiers
from bidscape.engine.pipeline import Pipeline
from bidscape.errors import InputError, Problem


@dataclass(frozen=True)
class MechanismSettings:
    """The rule's parameters in force (from ``[mechanism]`` or a channel, events applied)."""

    reserve: float = 0.0
    soft_floor: float = 0.0
    slot_ctrs: tuple[float, ...] = (1.0,)
    pricing: Literal["click", "impression"] = "click"


@dataclass
class KernelMarket:
    """The arrays a kernel reads and writes for one channel."""

    ranges: np.ndarray  # int64[R, 3]: first agent, count, population of the channel's agents
    bid_state: np.ndarray  # float64[A, 4]: multiplier, remaining budget, value scale, quality
    outcome_state: np.ndarray  # float64[A, 4]: spend, wins, value, clicks (this channel, this round)
    value_tables: np.ndarray  # float64[P, intervals + 1]
    marked: np.ndarray  # uint8[A] scratch
    # channel budgets, personal reserves, throttling, groups, per-segment multipliers (None: unused)
    modifiers: BidModifiers = NO_MODIFIERS
    pipeline: Optional[Pipeline] = None  # draw on a second thread (same outputs), None: one thread
    context: Optional[tuple] = None  # the round's impressions with segments (``engine.context``), None: none
    ctr_context: Optional[tuple] = None  # (segment_of, CTR factor[S, P]) with segment CTRs (``engine.clicks``)
    ctr_noise: Optional[np.ndarray] = None  # quantile table of the CTR prediction's noise factor, None: exact
    _max_quality: Optional[float] = field(default=None, repr=False, compare=False)

    def max_quality(self) -> float:
        """The highest quality among the channel's agents (qualities are fixed for a run; cached)."""
        if self._max_quality is None:
            self._max_quality = max((float(self.bid_state[first:first + count, kernel.QUALITY].max())
                                     for first, count, _ in self.ranges if count > 0), default=0.0)
        return self._max_quality

    def draw(self, key_of_round, first: int, bidders: int):
        """The pipeline's drawing step for auctions ``first + lo ..`` of a batch (sampled bidders)."""
        def draw_chunk(lo, count, who, population, values):
            draws.draw_auctions(key_of_round, first + lo, count, bidders, self.ranges, self.value_tables,
                                self.bid_state, self.marked, who, population, values, False, self.context)
        return draw_chunk


@dataclass
class Outcomes:
    """Per-auction, per-slot results of a batch (row ``r``, slot ``s``)."""

    winner: np.ndarray  # int64[n, S], -1 when unfilled
    price: np.ndarray  # float64[n, S]: what the slot's winner paid in this auction
    bid: np.ndarray  # float64[n, S]: the winner's bid (single item: the top bid, even when unsold)
    next_bid: np.ndarray  # float64[n, S]: the next-ranked bid (single item: the second bid)
    value: np.ndarray  # float64[n, S]: the winner's base value (per click for position auctions)
    clicks: np.ndarray  # int8[n, S]
    others_paid: np.ndarray  # float64[n]: paid by bidders other than the winners (all-pay)
    efficient: np.ndarray  # float64[n]: welfare of the efficient allocation of the auction

    @classmethod
    def allocate(cls, n: int, slots: int) -> "Outcomes":
        return cls(np.empty((n, slots), np.int64), np.empty((n, slots)), np.empty((n, slots)),
                   np.empty((n, slots)), np.empty((n, slots)), np.zeros((n, slots), np.int8),
                   np.zeros(n), np.zeros(n))

    @property
    def capacity(self) -> int:
        return self.winner.shape[0]

    @property
    def slots(self) -> int:
        return self.winner.shape[1]


@dataclass
class Totals:
    """Running market totals of a round and channel, summed in auction order."""

    slots: int
    sold: int = 0  # filled slot impressions
    revenue: float = 0.0
    welfare: float = 0.0
    max_welfare: float = 0.0  # of the efficient allocations of the same auctions
    slot_totals: np.ndarray = field(init=False)  # float64[S, 3]: impressions, clicks, revenue

    def __post_init__(self) -> None:
        self.slot_totals = np.zeros((self.slots, 3))


@dataclass(frozen=True)
class Capabilities:
    """What a mechanism can do, declared once; the loop, the recorder and the checks ask this.

    - ``slots``: several ranked slots (``slot_ctrs``), ranked by bid x quality.
    - ``clicks``: outcomes are clicks drawn per slot, and values are per click.
    - ``replayable``: the counterfactual replay can price any bid of one bidder against the
      others' (``bidscape.engine.counterfactual``), so full-information learners can learn here.
    - ``groups``: coordination groups (only a group's highest bid in an auction counts).
    """

    slots: bool = False
    clicks: bool = False
    replayable: bool = False
    groups: bool = False


class Mechanism:
    """The protocol every registered mechanism follows."""

    name: str
    summary: str
    charges_own_bid: bool  # True when no winner ever pays more than its bid (checked by check_mechanism)

    @property
    def capabilities(self) -> Capabilities:
        raise NotImplementedError

    def slots(self, settings: MechanismSettings) -> int:
        raise NotImplementedError

    def clear(self, settings: MechanismSettings, market: KernelMarket, bidders: int | str,
              key_of_round, first: int, n: int, out: Outcomes) -> None:
        raise NotImplementedError

    def accumulate(self, out: Outcomes, n: int, market: KernelMarket, totals: Totals) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class SingleItemAuction(Mechanism):
    name: str
    summary: str
    top_weight: float
    second_weight: float
    reference_price: Callable[[float, float, float], float]  # (top, second, third bid) -> price before floors
    third_weight: float = 0.0
    all_pay: bool = False
    charges_own_bid: bool = True

    @property
    def capabilities(self) -> Capabilities:
        # the replay prices a bid from the top and second bids of the others: no third bid
        return Capabilities(replayable=self.third_weight == 0, groups=True)

    def __post_init__(self) -> None:
        weights = (self.top_weight, self.second_weight, self.third_weight)
        if min(weights) < 0 or sum(weights) > 1:
            raise ValueError(f"mechanism '{self.name}': price weights must be >= 0 and sum to at most 1, "
                             "so that no winner pays more than its bid")

    def slots(self, settings: MechanismSettings) -> int:
        return 1

    def rule(self, settings: MechanismSettings) -> np.ndarray:
        return np.array([self.top_weight, self.second_weight, self.third_weight, settings.reserve,
                         settings.soft_floor])

    def clear(self, settings, market, bidders, key_of_round, first, n, out) -> None:
        columns = (out.winner[:n, 0], out.price[:n, 0], out.bid[:n, 0], out.next_bid[:n, 0],
                   out.value[:n, 0], out.others_paid[:n], out.efficient[:n])
        options = (market.modifiers, True if self.third_weight > 0 else None,
                   market.outcome_state if self.all_pay else None)
        if bidders == "all":
            _no_context(market)
            if market.modifiers.group is not None:
                raise ValueError("coordination groups need sampled bidders (bidders_per_auction is 'all')")
            kernel.clear_all(self.rule(settings), key_of_round, first, n, market.ranges, market.bid_state,
                             market.value_tables, *columns, *options)
        elif market.pipeline is not None:
            rule = self.rule(settings)

            def clear_chunk(lo, count, who, population, values):
                kernel.clear_drawn(rule, key_of_round, first, lo, count, bidders, who, values, kernel.LOOKAHEAD,
                                   market.bid_state, *columns, *options)
            market.pipeline.run(n, bidders, market.draw(key_of_round, first, bidders), clear_chunk)
        else:
            kernel.clear_sampled(self.rule(settings), key_of_round, first, n, bidders, market.ranges,
                                 market.bid_state, market.value_tables, market.marked, *columns, *options,
                                 market.context)

    def accumulate(self, out, n, market, totals) -> None:
        sold_before, revenue_before = totals.sold, totals.revenue
        totals.sold, totals.revenue, totals.welfare, totals.max_welfare = kernel.accumulate_outcomes(
            out.winner[:n, 0], out.price[:n, 0], out.value[:n, 0], out.others_paid[:n], out.efficient[:n],
            market.bid_state, market.outcome_state, totals.sold, totals.revenue, totals.welfare, totals.max_welfare)
        totals.slot_totals[0, 0] += totals.sold - sold_before
        totals.slot_totals[0, 2] += totals.revenue - revenue_before


@dataclass(frozen=True)
class PositionAuction(Mechanism):
    name: str
    summary: str
    vcg: bool
    # (slot s, scores of the *other* ranked bidders best first, own quality, floor, ctrs) -> price per click
    reference_price_per_click: Callable[[int, Sequence[float], float, float, Sequence[float]], float]
    charges_own_bid: bool = True

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(slots=True, clicks=True)

    def slots(self, settings: MechanismSettings) -> int:
        return len(settings.slot_ctrs)

    def rule(self, settings: MechanismSettings) -> np.ndarray:
        return np.array([1.0 if settings.pricing == "impression" else 0.0, settings.reserve])

    def clear(self, settings, market, bidders, key_of_round, first, n, out) -> None:
        ctrs = np.asarray(settings.slot_ctrs, np.float64)
        columns = (out.winner[:n], out.price[:n], out.bid[:n], out.next_bid[:n], out.value[:n], out.clicks[:n],
                   out.efficient[:n])
        out.others_paid[:n] = 0.0
        if market.modifiers.group is not None:
            raise ValueError("coordination groups are for single-item auctions")
        options = (market.modifiers, (ctrs - np.append(ctrs[1:], 0.0)) if self.vcg else None,
                   float(settings.soft_floor) if settings.soft_floor > 0 else None,
                   self._capped_workspace(ctrs, market, bidders))
        # segment CTRs and their prediction (bidscape.engine.clicks), None when the market has none
        ctr_options = (market.ctr_context, None if market.ctr_context is None else market.ctr_noise)
        if bidders == "all":
            _no_context(market)
            positions.clear_positions_all(self.rule(settings), ctrs, key_of_round, first, n, market.ranges,
                                          market.bid_state, market.value_tables, *columns, *options)
        elif market.pipeline is not None:
            rule = self.rule(settings)

            def clear_chunk(lo, count, who, population, values):
                positions.clear_positions_drawn(rule, ctrs, key_of_round, first, lo, count, bidders, who, population,
                                                values, kernel.LOOKAHEAD, market.bid_state, *columns, *options,
                                                *ctr_options)
            market.pipeline.run(n, bidders, market.draw(key_of_round, first, bidders), clear_chunk)
        else:
            positions.clear_positions_sampled(self.rule(settings), ctrs, key_of_round, first, n, bidders,
                                              market.ranges, market.bid_state, market.value_tables,
                                              market.marked, *columns, *options, market.context, *ctr_options)

    def _capped_workspace(self, ctrs: np.ndarray, market: KernelMarket, bidders: int | str) -> Optional[tuple]:
        """Scratch for the capped-probability paths, or None (compiled out) when no agent can be capped.

        Some agent with ``quality * ctrs[0] > 1`` is clicked with probability 1 in a slot
        that promises more: the efficient assignment (the welfare benchmark, and VCG's
        allocation and prices) then needs ``bidscape.engine.capped``, which works for up
        to ``capped.MAX_SLOTS`` slots.
        """
        reach = market.max_quality() * float(ctrs[0])
        if market.ctr_context is not None:  # the scenario checks keep every probability at or below 1
            reach *= float(market.ctr_context[1].max())
            if reach > 1.0:
                raise ValueError(f"click probabilities reach {reach:g} > 1 with segment CTRs")
        if not reach > 1.0:
            return None
        if ctrs.shape[0] > capped.MAX_SLOTS:
            raise InputError(Problem(
                "mechanism.slot_ctrs", f"{self.name} with {ctrs.shape[0]} slots and click probabilities capped at 1 "
                f"(quality x ctr reaches {reach:g}): the efficient assignment is computed for at most "
                f"{capped.MAX_SLOTS} slots",
                f"use at most {capped.MAX_SLOTS} slots, or keep quality x the top slot's ctr at or below 1"))
        participants = int(market.ranges[:, 1].sum()) if bidders == "all" else int(bidders)
        return capped.workspace(participants, ctrs.shape[0])

    def accumulate(self, out, n, market, totals) -> None:
        totals.sold, totals.revenue, totals.welfare, totals.max_welfare = positions.accumulate_slots(
            out.winner[:n], out.price[:n], out.value[:n], out.clicks[:n], out.efficient[:n], market.bid_state,
            market.outcome_state, totals.slot_totals, totals.sold, totals.revenue, totals.welfare, totals.max_welfare)


def _no_context(market: KernelMarket) -> None:
    if market.context is not None:  # the scenario checks say so first
        raise ValueError("traffic segments need sampled bidders (bidders_per_auction is 'all')")

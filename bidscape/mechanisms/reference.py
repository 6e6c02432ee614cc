"""Plain-Python reference implementation of a batch of auctions of one channel.

Slow and written for reading: the jitted kernels in ``bidscape.engine.kernel`` and
``bidscape.engine.positions`` must give exactly the same winners, prices, clicks and
budgets on any instance (``tests/test_kernel.py``, ``bidscape.check_mechanism``). It
shares only the random numbers (the hash in ``bidscape.engine.rng``) with the kernels;
participant choice, value lookup, bids, reserves, ranking, tie-breaking, pricing (each
mechanism's own ``reference_price`` function) and budget accounting are written again.
Where click probabilities are capped (``bidscape.engine.capped``), the efficient
assignment and VCG's prices come from ``bidscape.mechanisms.reference_capped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from bidscape.engine.rng import (
    STREAM_COMMON,
    STREAM_CTR,
    STREAM_PARTICIPANT,
    STREAM_SAMPLE,
    STREAM_THROTTLE,
    STREAM_TIE,
    STREAM_VALUE,
    py_auction_key,
    py_draw_u64,
    py_to_unit,
)
from bidscape.mechanisms.reference_capped import capped_vcg, capped_welfare
from bidscape.mechanisms.base import MechanismSettings, PositionAuction, SingleItemAuction


@dataclass
class ReferenceContext:
    """Impressions with context (``bidscape.engine.context``, ``bidscape.engine.clicks``) as plain lists."""

    segment_of: list[int]  # per auction of the round: its segment
    ranges: list[list[tuple[int, int, int]]]  # per segment: the channel's ranges, count 0 where not eligible
    factor: list[list[float]]  # [segment][population]: value multiplier
    common: list[list[float]]  # [segment]: quantile table of the common value factor
    click: list[list[float]] | None = None  # [segment][population]: CTR factor (position auctions), None: off
    noise: list[float] | None = None  # quantile table of the CTR prediction's error factor, None: exact


@dataclass
class ReferenceMarket:
    """A channel's agents as plain lists; ``remaining``, ``cap`` and ``spend`` change in place."""

    ranges: list[tuple[int, int, int]]  # (first agent, count, population)
    multiplier: list[float]  # bid = multiplier x value scale x base value, capped by the budget
    remaining: list[float]
    quality: list[float]
    personal_reserve: list[float]
    value_tables: list[list[float]]
    cap: list[float] | None = None  # per-agent channel budget left, when the channel has one
    others_spend: list[float] = field(default_factory=list)  # all-pay payments of non-winners
    participation: list[float] | None = None  # per-agent probability of taking part (throttling)
    group: list[int] | None = None  # per-agent coordination group, -1 = none (single item, sampled)
    value_scale: list[float] | None = None  # per-agent value scale: bids and the efficient welfare
    efficient: list[float] = field(default_factory=list)  # per auction cleared: the efficient allocation's welfare
    # per position auction cleared: (agent, bid or 0 when not taking part, base value, true and predicted
    # click factor) of each participant
    offers: list[list[tuple[int, float, float, float, float]]] = field(default_factory=list)
    context: ReferenceContext | None = None


@dataclass
class SlotOutcome:
    winner: int  # -1 when unfilled
    price: float
    bid: float
    next_bid: float
    value: float  # the winner's base value
    clicks: int = 0
    others_paid: float = 0.0  # all-pay: what the other bidders paid in this auction


def reference_value(key: int, slot: int, table: Sequence[float], stream: int = STREAM_VALUE) -> float:
    """A draw from a quantile table (values; with ``stream``, common values and CTR errors too)."""
    intervals = len(table) - 1
    x = py_to_unit(py_draw_u64(key, stream, slot)) * intervals
    k = int(x)
    return table[k] + (x - k) * (table[k + 1] - table[k])


def reference_participants(key: int, ranges: Sequence[tuple[int, int, int]], bidders: int) -> list[tuple[int, int]]:
    """``bidders`` distinct (agent, population) pairs, uniform over the ranges' agents."""
    pool = [(first + i, population) for first, count, population in ranges for i in range(count)]
    chosen: list[tuple[int, int]] = []
    for slot in range(bidders):
        attempt = slot
        while True:
            pick = pool[int(py_to_unit(py_draw_u64(key, STREAM_PARTICIPANT, attempt)) * len(pool))]
            if pick not in chosen:
                break
            attempt += bidders
        chosen.append(pick)
    return chosen


def reference_batch(mechanism, settings: MechanismSettings, market: ReferenceMarket, key_of_round: int,
                    first_auction: int, n_auctions: int, bidders: int | str) -> list[list[SlotOutcome]]:
    """Clear auctions ``first_auction ...`` in order; one list of slot outcomes per auction."""
    if not market.others_spend:
        market.others_spend = [0.0] * len(market.multiplier)
    results = []
    for auction in range(first_auction, first_auction + n_auctions):
        key = py_auction_key(key_of_round, auction)
        context = market.context
        segment = context.segment_of[auction] if context is not None else 0
        if bidders == "all":
            assert context is None, "segments need sampled bidders"
            entrants = [(first + i, p) for first, count, p in market.ranges for i in range(count)]
            slot_of = [agent for agent, _ in entrants]  # value stream index = agent index
        else:
            ranges = market.ranges if context is None else context.ranges[segment]
            entrants = reference_participants(key, ranges, int(bidders))
            slot_of = list(range(len(entrants)))
        values = [reference_value(key, slot_of[j], market.value_tables[p]) for j, (_, p) in enumerate(entrants)]
        true_q = [market.quality[agent] for agent, _ in entrants]
        predicted_q = list(true_q)
        if context is not None:  # private value x segment value x the auction's common value
            common = reference_value(key, 0, context.common[segment], STREAM_COMMON)
            values = [v * (context.factor[segment][p] * common) for v, (_, p) in zip(values, entrants)]
            if context.click is not None:
                true_q = [q * context.click[segment][p] for q, (_, p) in zip(true_q, entrants)]
                predicted_q = [q if context.noise is None else q * reference_value(key, j, context.noise, STREAM_CTR)
                               for j, q in enumerate(true_q)]
        bids = [_bid(market, agent, v, key) for (agent, _), v in zip(entrants, values)]
        if market.value_scale is not None:
            market.efficient.append(_efficient_welfare(mechanism, settings, market, entrants, values, true_q))
        if market.group is not None:
            bids = _coordinated(market.group, entrants, bids)
        if bidders == "all":
            priority = [py_draw_u64(key, STREAM_TIE, agent) for agent, _ in entrants]
        else:
            priority = [-j for j in range(len(entrants))]  # the earlier slot wins a tie
        if isinstance(mechanism, SingleItemAuction):
            results.append([_single_item(mechanism, settings, market, entrants, values, bids, priority)])
        elif isinstance(mechanism, PositionAuction):
            market.offers.append([(agent, b if b > 0.0 and b >= settings.reserve else 0.0, v, t, e)
                                  for (agent, _), b, v, t, e in zip(entrants, bids, values, true_q, predicted_q)])
            results.append(_position(mechanism, settings, market, key, entrants, values, bids, bidders,
                                     true_q, predicted_q))
        else:
            raise TypeError(f"no reference for {type(mechanism).__name__}")
    return results


def _efficient_welfare(mechanism, settings, market: ReferenceMarket, entrants, values, true_q) -> float:
    """The welfare of giving the item (the slots) to the participants who value it most, bids aside
    (position auctions: by true click factor ``true_q`` x value)."""
    worth = [market.value_scale[agent] * v for (agent, _), v in zip(entrants, values)]
    if isinstance(mechanism, SingleItemAuction):
        return max(worth, default=0.0)
    score = [q * w for q, w in zip(true_q, worth)]
    best = sorted((j for j in range(len(worth)) if score[j] > 0.0), key=lambda j: score[j], reverse=True)
    ranked = zip(best, settings.slot_ctrs)
    if _may_cap(settings, market) and any(score[j] * ctr > worth[j] for j, ctr in ranked):
        # a ranked participant's click probability is capped in its slot: the ranking may waste it
        return capped_welfare(list(settings.slot_ctrs), worth, [market.quality[agent] for agent, _ in entrants])
    total = 0.0
    for s, ctr in enumerate(settings.slot_ctrs):  # expected clicks min(1, q * ctr) times value
        total += min(worth[best[s]], score[best[s]] * ctr) if s < len(best) else 0.0
    return total


def _may_cap(settings: MechanismSettings, market: ReferenceMarket) -> bool:
    """Whether some agent of the channel has quality x top ctr > 1 (else the capped paths are off;
    always off with segment CTRs, whose click probabilities stay at or below 1)."""
    if market.context is not None and market.context.click is not None:
        return False
    qualities = [market.quality[first + i] for first, count, _ in market.ranges for i in range(count)]
    return max(qualities, default=0.0) * settings.slot_ctrs[0] > 1.0


def _bid(market: ReferenceMarket, agent: int, value: float, key: int) -> float:
    if market.participation is not None:
        if py_to_unit(py_draw_u64(key, STREAM_THROTTLE, agent)) >= market.participation[agent]:
            return 0.0  # throttled out of this auction
    bid = min(market.multiplier[agent] * market.value_scale[agent] * value, market.remaining[agent])
    if market.cap is not None:
        bid = min(bid, market.cap[agent])
    return bid if bid >= market.personal_reserve[agent] else 0.0


def _coordinated(group: list[int], entrants, bids: list[float]) -> list[float]:
    """Each group keeps only its highest bid (the earliest slot among equal bids)."""
    kept = list(bids)
    for j, (agent, _) in enumerate(entrants):
        if group[agent] < 0:
            continue
        mates = [q for q, (other, _) in enumerate(entrants) if group[other] == group[agent]]
        leader = max(mates, key=lambda q: (bids[q], -q))
        if leader != j:
            kept[j] = 0.0
    return kept


def _charge(market: ReferenceMarket, agent: int, amount: float) -> None:
    assert amount <= market.remaining[agent], "exact budgets: a payment never exceeds the budget left"
    market.remaining[agent] -= amount
    if market.cap is not None:
        market.cap[agent] -= amount


def _single_item(mechanism: SingleItemAuction, settings, market, entrants, values, bids, priority) -> SlotOutcome:
    ordered = sorted(bids, reverse=True) + [0.0, 0.0]
    top, second, third = ordered[0], max(ordered[1], 0.0), max(ordered[2], 0.0)
    if top <= 0.0 or top < settings.reserve:
        return SlotOutcome(-1, 0.0, max(top, 0.0), second, 0.0)
    tied = [j for j, b in enumerate(bids) if b == top]
    j = max(tied, key=lambda i: priority[i])
    agent = entrants[j][0]
    if top < settings.soft_floor:
        price = top  # between the hard and the soft floor the winner pays its bid
    else:
        price = max(mechanism.reference_price(top, second, third), settings.reserve, settings.soft_floor,
                    market.personal_reserve[agent])
    assert 0.0 <= price <= top
    _charge(market, agent, price)
    others_paid = 0.0
    if mechanism.all_pay:
        for (other, _), bid in zip(entrants, bids):
            if other != agent and bid > 0.0 and bid >= settings.reserve:
                _charge(market, other, bid)
                market.others_spend[other] += bid
                others_paid += bid
    return SlotOutcome(agent, price, top, second, values[j], others_paid=others_paid)


def _position(mechanism: PositionAuction, settings, market, key, entrants, values, bids, bidders, true_q,
              predicted_q) -> list[SlotOutcome]:
    """Rank by bid x predicted click factor, price per click with it; clicks follow the true factor."""
    ctrs = list(settings.slot_ctrs)
    taking_part = [j for j, b in enumerate(bids) if b > 0.0 and b >= settings.reserve]
    score = {j: bids[j] * predicted_q[j] for j in taking_part}
    if bidders == "all":
        tie = {j: py_draw_u64(key, STREAM_TIE, entrants[j][0]) >> 2 for j in taking_part}
    else:
        tie = {j: -j for j in taking_part}
    ranking = sorted(taking_part, key=lambda j: (score[j], tie[j]), reverse=True)
    filled, capped_prices = len(ranking), None
    quality_of = {j: market.quality[entrants[j][0]] for j in taking_part}
    # VCG keeps the ranking unless a bidder ranked t <= S would be capped one slot up
    if mechanism.vcg and _may_cap(settings, market) and any(
            quality_of[j] * ctrs[max(t - 1, 0)] > 1.0 for t, j in enumerate(ranking[:len(ctrs) + 1])):
        floors = {j: max(settings.reserve, market.personal_reserve[entrants[j][0]]) for j in taking_part}
        occupants, runner_up, capped_prices = capped_vcg(ctrs, bids, quality_of, score, tie, floors)
        # the slots' occupants, then the best bidder left out (whose bid is the last one's next bid)
        filled, ranking = len(occupants), occupants + ([] if runner_up is None else [runner_up])
    outcomes = []
    for s in range(len(ctrs)):
        next_bid = bids[ranking[s + 1]] if s + 1 < len(ranking) else 0.0
        if s >= filled:
            outcomes.append(SlotOutcome(-1, 0.0, 0.0, next_bid, 0.0))
            continue
        j = ranking[s]
        agent = entrants[j][0]
        quality = predicted_q[j]
        if bids[j] < settings.soft_floor:
            ppc = bids[j]
        elif capped_prices is not None:
            ppc = max(capped_prices[s], settings.soft_floor)
        else:
            others = [score[i] for i in ranking if i != j]
            floor = max(settings.reserve, market.personal_reserve[agent])
            ppc = max(mechanism.reference_price_per_click(s, others, quality, floor, ctrs), settings.soft_floor)
        assert 0.0 <= ppc <= bids[j] * (1 + 1e-12)
        probability = min(1.0, true_q[j] * ctrs[s])
        clicked = py_to_unit(py_draw_u64(key, STREAM_SAMPLE, 1 + s)) < probability
        paid = ppc * probability if settings.pricing == "impression" else (ppc if clicked else 0.0)
        _charge(market, agent, paid)
        outcomes.append(SlotOutcome(agent, paid, bids[j], next_bid, values[j], int(clicked)))
    return outcomes


def reference_totals(results: list[list[SlotOutcome]], value_scale: Sequence[float], n_agents: int,
                     others_spend: Sequence[float] = (), position: bool = False):
    """Per-agent (spend, wins, value, clicks) and market (sold, revenue, welfare) of one batch.

    Sums run in auction order, then slot order, as in the kernels; all-pay payments of
    non-winners (``others_spend``) are in the spend before the winners' prices.
    """
    spend = list(others_spend) or [0.0] * n_agents
    wins = [0.0] * n_agents
    value = [0.0] * n_agents
    clicks = [0.0] * n_agents
    sold, revenue, welfare = 0, 0.0, 0.0
    for auction in results:
        for o in auction:
            revenue += o.others_paid
            if o.winner < 0:
                continue
            won = value_scale[o.winner] * o.value * o.clicks if position else value_scale[o.winner] * o.value
            spend[o.winner] += o.price
            wins[o.winner] += 1.0
            value[o.winner] += won
            clicks[o.winner] += o.clicks
            sold += 1
            revenue += o.price
            welfare += won
    return spend, wins, value, clicks, (sold, revenue, welfare)

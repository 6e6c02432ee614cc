"""``check_mechanism``: the invariants every mechanism must keep, on random small markets.

>>> from bidscape import check_mechanism
>>> check_mechanism("gsp", instances=20).ok
True

For each random instance (a few populations, a channel over some of them, random bid
factors, budgets, quality scores (in about a third of instances up to 4, so that
quality x click-through rate often exceeds 1 and click probabilities are capped at 1),
personal reserves, channel budgets, reserves, soft floors, slot click-through rates,
pricing, throttled participation, for single-item auctions coordination groups, and in
about a quarter of the sampled-bidder instances segments: targeting, value factors and
common values, and for position auctions segment CTRs ranked by a noisy prediction), it
checks that:

1. the jitted kernel equals the plain-Python reference exactly: winners, prices, bids,
   clicks, remaining budgets, per-agent and market totals;
2. prices are non-negative;
3. no winner pays more than its bid (per click for position auctions), where the rule
   promises it (``mechanism.charges_own_bid``);
4. the allocation is feasible: one winner per slot, one slot per bidder and auction,
   winners took part, and no budget or channel budget is overspent;
5. the kernel is deterministic: the same instance gives the same bytes twice;
6. position auctions: the efficient-welfare benchmark is the best assignment of the
   participants' values to slots with click probabilities ``min(1, quality x ctr)``, and
   a VCG mechanism's assignment maximises the same for the bids taking part (both
   against ``scipy.optimize.linear_sum_assignment``, to 1e-9 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from bidscape.engine.modifiers import BidModifiers
from bidscape.engine.pipeline import Pipeline
from bidscape.engine.kernel import (BID_COLUMNS, MULTIPLIER, OUTCOME_COLUMNS, QUALITY, REMAINING, SCALE, SPEND, VALUE,
                                    WINS)
from bidscape.mechanisms.reference import ReferenceContext, ReferenceMarket, reference_batch, reference_totals
from bidscape.markets.distributions import Constant, LogNormal, Uniform
from bidscape.mechanisms.base import KernelMarket, Mechanism, MechanismSettings, Outcomes, Totals

_INTERVALS = 64  # small value tables keep instances quick; the lookup code is the same


@dataclass
class Instance:
    """A random channel of a random small market, and a batch of auctions to clear."""

    settings: MechanismSettings
    bidders: int | str
    ranges: np.ndarray
    bid_state: np.ndarray
    cap: Optional[np.ndarray]
    value_scale: np.ndarray
    value_tables: np.ndarray
    key_of_round: int
    first_auction: int
    n_auctions: int
    participation: Optional[np.ndarray] = None
    group: Optional[np.ndarray] = None
    reserve: Optional[np.ndarray] = None  # personal reserves, None when none
    context: Optional[tuple] = None  # segments: the draws' context (``bidscape.engine.context``), None when none
    ctr: Optional[tuple] = None  # segment CTRs: (ctr_context, noise table or None) (``bidscape.engine.clicks``)

    @property
    def n_agents(self) -> int:
        return self.bid_state.shape[0]


@dataclass
class BatchResult:
    winner: list[list[int]]
    price: list[list[float]]
    bid: list[list[float]]
    next_bid: list[list[float]]
    clicks: list[list[int]]
    remaining: list[float]
    cap: Optional[list[float]]
    spend: list[float]
    wins: list[float]
    value: list[float]
    market: tuple[int, float, float]
    # reference only (not compared): per auction, (agent, bid, base value) of each participant; efficient welfare
    offers: list = field(default_factory=list, compare=False)
    efficient: list = field(default_factory=list, compare=False)


@dataclass
class ConformanceReport:
    mechanism: str
    instances: int
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            shown = "\n  - ".join(self.failures[:10])
            raise AssertionError(f"mechanism '{self.mechanism}' broke {len(self.failures)} invariant(s) "
                                 f"in {self.instances} instances:\n  - {shown}")


def random_instance(rng: np.random.Generator, mechanism: Mechanism) -> Instance:
    sizes = rng.integers(1, 9, rng.integers(1, 4))
    start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_agents = int(start[-1])
    populations = sorted(rng.choice(len(sizes), rng.integers(1, len(sizes) + 1), replace=False))
    ranges = np.array([[start[p], sizes[p], p] for p in populations], np.int64)
    eligible = int(ranges[:, 1].sum())
    bid_state = np.zeros((n_agents, BID_COLUMNS))
    bid_state[:, MULTIPLIER] = _mixed(rng, n_agents, [0.0, 0.5, 1.0], 0.0, 3.0)
    bid_state[:, REMAINING] = _mixed(rng, n_agents, [0.0, math.inf, math.inf], 0.0, 5.0)
    kind = rng.random()
    # qualities up to 4 make quality x ctr > 1 common: capped click probabilities (VCG's efficient assignment)
    bid_state[:, QUALITY] = (1.0 if kind < 0.3 else rng.uniform(0.2, 2.0, n_agents) if kind < 0.65
                             else rng.uniform(0.5, 4.0, n_agents))
    personal = (np.where(rng.random(n_agents) < 0.5, rng.uniform(0, 1, n_agents), 0.0)
                if rng.random() < 0.3 else None)
    cap = rng.uniform(0, 3, n_agents) if rng.random() < 0.3 else None
    reserve = float(rng.choice([0.0, 0.0, 0.5, rng.uniform(0, 2)]))
    soft_floor = reserve + float(rng.uniform(0, 1)) if rng.random() < 0.25 else 0.0
    slots = int(rng.integers(1, 5)) if mechanism.capabilities.slots else 1
    ctrs = tuple(float(c) for c in np.sort(rng.uniform(0.05, 1.0, slots))[::-1])
    if mechanism.capabilities.slots and rng.random() < 0.2:
        ctrs = tuple([ctrs[0]] * slots)  # equal click-through rates
    settings = MechanismSettings(reserve=reserve, soft_floor=soft_floor, slot_ctrs=ctrs,
                                 pricing="impression" if rng.random() < 0.4 else "click")
    tables = np.stack([_random_distribution(rng).quantile_table(_INTERVALS) for _ in sizes])
    bidders: int | str = "all" if rng.random() < 0.25 else int(rng.integers(1, eligible + 1))
    instance = Instance(settings, bidders, ranges, bid_state, cap, rng.uniform(0, 3, n_agents), tables,
                        int(rng.integers(0, 2**63)), int(rng.integers(0, 10**6)), int(rng.integers(1, 40)),
                        reserve=personal)
    if rng.random() < 0.25:
        instance.participation = np.where(rng.random(n_agents) < 0.5, rng.uniform(0, 1, n_agents), 1.0)
    if mechanism.capabilities.groups and bidders != "all" and rng.random() < 0.3:
        instance.group = np.where(rng.random(n_agents) < 0.7, rng.integers(0, 3, n_agents), -1).astype(np.int64)
    if bidders != "all" and rng.random() < 0.3:
        _add_segments(rng, mechanism, instance)
        # every optional feature is a compiled variant of the kernels: with segments, keep channel
        # budgets, personal reserves, throttling and groups off (they act apart from the draws, and
        # are checked in the other instances), so that segments add a few variants, not a product
        instance.cap = instance.reserve = instance.participation = instance.group = None
    return instance


def _add_segments(rng: np.random.Generator, mechanism: Mechanism, instance: Instance) -> None:
    """Segments with targeting, value factors and common values; for position auctions, often segment
    CTRs with a noisy prediction (click probabilities kept at or below 1, as the scenario checks keep them)."""
    segments = int(rng.integers(1, 4))
    populations = instance.value_tables.shape[0]
    ranges = np.repeat(instance.ranges[np.newaxis], segments, axis=0)
    for s in range(segments):
        ranges[s, rng.random(len(instance.ranges)) < 0.4, 1] = 0  # not targeted there
        if ranges[s, :, 1].sum() < int(instance.bidders):
            ranges[s] = instance.ranges  # too few eligible agents: everyone may bid
    instance.first_auction %= 1000  # segment_of is indexed by the auction's number in the round
    segment_of = rng.integers(0, segments, instance.first_auction + instance.n_auctions).astype(np.uint8)
    factor = rng.uniform(0.3, 2.0, (segments, populations))
    common = np.stack([_random_distribution(rng).quantile_table(_INTERVALS) if rng.random() < 0.6
                       else np.ones(_INTERVALS + 1) for _ in range(segments)])
    instance.context = (segment_of, np.ascontiguousarray(ranges), ranges[:, :, 1].sum(axis=1).astype(np.int64),
                        factor, common)
    if mechanism.capabilities.clicks and rng.random() < 0.6:
        click = rng.uniform(0.05, 1.0, (segments, populations))
        reach = float(instance.bid_state[:, QUALITY].max()) * float(click.max()) * instance.settings.slot_ctrs[0]
        click *= min(1.0, 0.999 / reach) if reach > 0 else 1.0  # below 1, whatever the rounding
        noise = None
        if rng.random() < 0.6:
            sigma = float(rng.uniform(0.1, 1.0))
            noise = LogNormal(dist="lognormal", mean=-sigma * sigma / 2, sigma=sigma).quantile_table(_INTERVALS)
        instance.ctr = ((segment_of, click), noise)


def run_kernel(mechanism: Mechanism, instance: Instance) -> BatchResult:
    bid_state = instance.bid_state.copy()
    bid_state[:, SCALE] = instance.value_scale
    cap = None if instance.cap is None else instance.cap.copy()
    outcome_state = np.zeros((instance.n_agents, OUTCOME_COLUMNS))
    # a third of the instances clear on two threads, in chunks of 1 to 7 auctions
    pipelined = instance.key_of_round % 3 == 0
    modifiers = BidModifiers(cap=cap, personal=instance.reserve, participation=instance.participation,
                             group=instance.group)
    market = KernelMarket(instance.ranges, bid_state, outcome_state, instance.value_tables,
                          np.zeros(instance.n_agents, np.uint8), modifiers,
                          Pipeline(chunk=1 + instance.key_of_round % 7) if pipelined else None, instance.context)
    if instance.ctr is not None:
        market.ctr_context, market.ctr_noise = instance.ctr
    n = instance.n_auctions
    slots = mechanism.slots(instance.settings)
    out = Outcomes.allocate(n, slots)
    try:
        mechanism.clear(instance.settings, market, instance.bidders, np.uint64(instance.key_of_round),
                        instance.first_auction, n, out)
    finally:
        if market.pipeline is not None:
            market.pipeline.close()
    if market.marked.any():
        raise AssertionError("the participant marks were not cleared after the batch")
    totals = Totals(slots)
    mechanism.accumulate(out, n, market, totals)
    position = mechanism.capabilities.slots
    return BatchResult(
        winner=out.winner[:n].tolist(), price=out.price[:n].tolist(), bid=out.bid[:n].tolist(),
        next_bid=out.next_bid[:n].tolist(),
        clicks=out.clicks[:n].tolist() if position else [[0]] * n,
        remaining=bid_state[:, REMAINING].tolist(), cap=None if cap is None else cap.tolist(),
        spend=outcome_state[:, SPEND].tolist(), wins=outcome_state[:, WINS].tolist(),
        value=outcome_state[:, VALUE].tolist(),
        market=(totals.sold, totals.revenue, totals.welfare, totals.max_welfare))


def run_reference(mechanism: Mechanism, instance: Instance) -> BatchResult:
    bs = instance.bid_state
    market = ReferenceMarket(
        ranges=[tuple(int(x) for x in row) for row in instance.ranges],
        multiplier=bs[:, MULTIPLIER].tolist(), remaining=bs[:, REMAINING].tolist(),
        quality=bs[:, QUALITY].tolist(),
        personal_reserve=[0.0] * instance.n_agents if instance.reserve is None else instance.reserve.tolist(),
        value_tables=instance.value_tables.tolist(),
        cap=None if instance.cap is None else instance.cap.tolist(),
        participation=None if instance.participation is None else instance.participation.tolist(),
        group=None if instance.group is None else instance.group.tolist(),
        value_scale=instance.value_scale.tolist(), context=_reference_context(instance))
    results = reference_batch(mechanism, instance.settings, market, instance.key_of_round,
                              instance.first_auction, instance.n_auctions, instance.bidders)
    position = mechanism.capabilities.slots
    spend, wins, value, _, totals = reference_totals(results, instance.value_scale.tolist(), instance.n_agents,
                                                     market.others_spend, position)
    return BatchResult(
        winner=[[o.winner for o in a] for a in results], price=[[o.price for o in a] for a in results],
        bid=[[o.bid for o in a] for a in results], next_bid=[[o.next_bid for o in a] for a in results],
        clicks=[[o.clicks for o in a] for a in results], remaining=market.remaining, cap=market.cap,
        spend=spend, wins=wins, value=value, market=(*totals, sum(market.efficient, 0.0)),
        offers=market.offers, efficient=market.efficient)


def _reference_context(instance: Instance) -> Optional[ReferenceContext]:
    if instance.context is None:
        return None
    segment_of, ranges, _, factor, common = instance.context
    click, noise = (instance.ctr[0][1].tolist(), None if instance.ctr[1] is None else instance.ctr[1].tolist()) \
        if instance.ctr is not None else (None, None)
    return ReferenceContext(segment_of.tolist(), [[tuple(int(x) for x in row) for row in r] for r in ranges],
                            factor.tolist(), common.tolist(), click, noise)


def check_instance(mechanism: Mechanism, instance: Instance) -> list[str]:
    """The invariants broken on one instance (empty when all hold)."""
    problems: list[str] = []
    fast = run_kernel(mechanism, instance)
    again = run_kernel(mechanism, instance)
    if fast != again:
        problems.append("not deterministic: the same instance gave different results")
    try:
        slow = run_reference(mechanism, instance)
    except AssertionError as error:
        return problems + [f"the reference rejected an outcome: {error}"]
    if mechanism.capabilities.slots:
        problems.extend(efficiency_problems(mechanism, instance, fast, slow))
    for name in ("winner", "price", "bid", "next_bid", "clicks", "remaining", "cap", "spend", "wins", "value",
                 "market"):
        if getattr(fast, name) != getattr(slow, name):
            problems.append(f"kernel and reference differ in '{name}': {getattr(fast, name)} != {getattr(slow, name)}")
    members = {int(a) for first, count, _ in instance.ranges for a in range(first, first + count)}
    for r, (winners, prices, bids) in enumerate(zip(fast.winner, fast.price, fast.bid)):
        filled = [w for w in winners if w >= 0]
        if len(filled) != len(set(filled)):
            problems.append(f"auction {r}: a bidder holds two slots ({winners})")
        if any(w not in members for w in filled):
            problems.append(f"auction {r}: a winner outside the channel ({winners})")
        for s, (w, p, b) in enumerate(zip(winners, prices, bids)):
            if p < 0:
                problems.append(f"auction {r} slot {s}: negative price {p}")
            if w >= 0 and mechanism.charges_own_bid and p > b * (1 + 1e-12):
                problems.append(f"auction {r} slot {s}: winner paid {p} above its bid {b}")
    if min(fast.remaining) < 0 or (fast.cap is not None and min(fast.cap) < -1e-9):
        problems.append("a budget was overspent")
    return problems


def best_assignment_welfare(amounts: list[float], qualities: list[float], ctrs: tuple[float, ...],
                            capped: bool = True) -> float:
    """The most ``sum amount x min(1, quality x ctr)`` over assignments of at most one slot each
    (``capped=False``: ``amount x quality x ctr``, the exchange's view with predicted CTRs)."""
    from scipy.optimize import linear_sum_assignment

    if not amounts:
        return 0.0
    probability = np.array(qualities)[:, None] * np.array(ctrs)[None, :]
    gain = np.array(amounts)[:, None] * (np.minimum(1.0, probability) if capped else probability)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return float(gain[rows, cols].sum())


def efficiency_problems(mechanism: Mechanism, instance: Instance, fast: BatchResult, slow: BatchResult) -> list[str]:
    """Invariant 6, checked on the kernel's outcomes and the participants the reference recorded."""
    problems: list[str] = []
    ctrs = instance.settings.slot_ctrs
    predicted = instance.ctr is not None  # VCG maximises bid x predicted click probability, uncapped
    for r, offers in enumerate(slow.offers):  # (agent, bid, base value, true and predicted click factor)
        best = best_assignment_welfare([instance.value_scale[a] * v for a, _, v, _, _ in offers],
                                       [t for _, _, _, t, _ in offers], ctrs)
        if not math.isclose(slow.efficient[r], best, rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"auction {r}: efficient welfare {slow.efficient[r]} is not the best assignment's {best}")
        if getattr(mechanism, "vcg", False):
            seen = {a: e for a, _, _, _, e in offers}
            best = best_assignment_welfare([b for _, b, _, _, _ in offers], [e for _, _, _, _, e in offers], ctrs,
                                           capped=not predicted)
            got = sum(b * (seen[w] * c if predicted else min(1.0, seen[w] * c))
                      for w, b, c in zip(fast.winner[r], fast.bid[r], ctrs) if w >= 0)
            if not math.isclose(got, best, rel_tol=1e-9, abs_tol=1e-12):
                problems.append(f"auction {r}: VCG assignment {fast.winner[r]} has bid welfare {got}, "
                                f"the best assignment {best}")
    return problems


def check_mechanism(mechanism: Mechanism | str, instances: int = 200, seed: int = 0) -> ConformanceReport:
    """Run the shared invariants on ``instances`` random small markets; see the module docstring."""
    if isinstance(mechanism, str):
        from bidscape.mechanisms import MECHANISMS

        mechanism = MECHANISMS.get(mechanism)
    report = ConformanceReport(mechanism.name, instances)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB1D]))
    for i in range(instances):
        instance = random_instance(rng, mechanism)
        report.failures.extend(f"instance {i}: {p}" for p in check_instance(mechanism, instance))
    return report


def _mixed(rng: np.random.Generator, size: int, specials: list[float], low: float, high: float) -> np.ndarray:
    """Numbers where about half are special values (0, 1, inf, ...) that find edge cases."""
    return np.where(rng.random(size) < 0.5, rng.choice(specials, size), rng.uniform(low, high, size))


def _random_distribution(rng: np.random.Generator):
    kind = rng.integers(0, 3)
    if kind == 0:
        return Constant(dist="constant", value=float(rng.choice([0.0, 0.5, 1.0])))
    if kind == 1:
        low = float(rng.uniform(0, 2))
        return Uniform(dist="uniform", low=low, high=low + float(rng.uniform(0, 2)))
    return LogNormal(dist="lognormal", mean=float(rng.uniform(-1, 1)), sigma=float(rng.uniform(0, 1.5)))

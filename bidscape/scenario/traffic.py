"""Segments and traffic (``[traffic]``): the arithmetic of the curve and of the split by share,
and what the types cannot say (the shares add up to 1, names resolve, every segment of every
channel has enough eligible bidders, click-through rates and their prediction fit the mechanism
and keep click probabilities at or below 1).

The models themselves, ``Traffic`` and ``Segment``, are in ``bidscape.scenario.schema``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from bidscape.errors import Problem, did_you_mean

if TYPE_CHECKING:
    from bidscape.markets.distributions import Distribution
    from bidscape.scenario.schema import ResolvedChannel, Scenario

SHARE_TOLERANCE = 1e-9
PROBABILITY_TOLERANCE = 1e-12
NEEDS_TRAFFIC = "add a [traffic] section (one segment with share = 1 is enough)"
CTR_FIX = ("lower ctr or ctr_multiplier so that quality x ctr x ctr_multiplier x the top slot's ctr "
           "stays at or below 1")


def largest_draw(dist: Distribution) -> float:
    """The largest amount ``dist`` gives: the top of its quantile table, or for a lognormal its
    largest draw in practice (``LogNormal.log_largest``; its one-interval table is not defined)."""
    log_largest = getattr(dist, "log_largest", None)
    return math.exp(log_largest()) if log_largest is not None else float(dist.quantile_table(1)[-1])


def smallest_draw(dist: Distribution) -> float:
    """The smallest amount ``dist`` gives (a lognormal's draws are all above 0)."""
    if getattr(dist, "log_largest", None) is not None:
        return math.exp(dist.mean_) if dist.sigma == 0 else math.nextafter(0.0, 1.0)
    return float(dist.quantile_table(1)[0])


def mean_of(curve: Sequence[float]) -> float:
    """The curve's mean, summed exactly (``math.fsum``), so it does not depend on the order."""
    return math.fsum(curve) / len(curve)


def largest_remainder(n: int, shares: Sequence[float]) -> list[int]:
    """``n`` split by ``shares`` into integers that sum to ``n``: each gets ``floor(n * share)``,
    then the ones left over go one each to the largest fractional parts (ties to the earlier
    share). Exact: rational arithmetic on the shares as written, over their sum (which the
    checks hold to 1 within 1e-9), so float rounding never loses or adds one.

    >>> largest_remainder(10, [0.25, 0.25, 0.5])
    [3, 2, 5]
    """
    fractions = [Fraction(share) for share in shares]
    total = sum(fractions)
    if total == 0:  # a round whose every share is 0 (the checks allow it only without traffic)
        return [0] * len(shares)
    exact = [n * f / total for f in fractions]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[:n - sum(counts)]:
        counts[k] += 1
    return counts


def traffic_problems(scenario: Scenario, channels: list[ResolvedChannel] | None) -> list[Problem]:
    """The problems of ``[traffic]`` and of the populations' ``targets`` and ``segment_value``;
    ``channels`` is None when the channels themselves are broken (then their bidders are not counted)."""
    if scenario.traffic is None:
        return _fields_without_traffic(scenario)
    segments = scenario.traffic.segments
    names = list(dict.fromkeys(s.name for s in segments))
    problems = _segment_problems(scenario) + _prediction_problems(scenario)
    for i, population in enumerate(scenario.populations):
        where = f"populations[{i}]"
        for name in population.targets or []:
            if name not in names:
                problems.append(_unknown_segment(f"{where}.targets", name, names))
        for name in population.segment_value:
            if name not in names:
                problems.append(_unknown_segment(f"{where}.segment_value.{name}", name, names))
    if problems or channels is None:
        return problems
    for i, channel in enumerate(channels):
        if channel.bidders_per_auction == "all":
            own = scenario.channels and scenario.channels[i].bidders_per_auction == "all"
            field = f"channels[{i}].bidders_per_auction" if own else "market.bidders_per_auction"
            if any(p.path == field for p in problems):
                continue
            problems.append(Problem(field, 'bidders_per_auction = "all" does not work with [traffic] yet: '
                                    "segments need sampled bidders", "give a number, e.g. 8"))
            continue
        problems.extend(_eligible_problems(scenario, channel))
    return problems or _click_problems(scenario, channels)


def _fields_without_traffic(scenario: Scenario) -> list[Problem]:
    problems = []
    for i, population in enumerate(scenario.populations):
        for field, given in (("targets", population.targets is not None), ("segment_value", population.segment_value)):
            if given:
                problems.append(Problem(f"populations[{i}].{field}", f"{field} names segments, but the scenario "
                                        "has no [traffic] section", "add [traffic] with [[traffic.segments]], "
                                        f"or remove {field}"))
        if population.ctr_multiplier != 1.0:
            problems.append(Problem(f"populations[{i}].ctr_multiplier", "ctr_multiplier scales the segments' "
                                    "click-through rates and needs [traffic]", NEEDS_TRAFFIC))
    for where, mechanism in _mechanisms_as_written(scenario):
        if mechanism.ctr_prediction is not None:
            problems.append(Problem(f"{where}.ctr_prediction", "ctr_prediction predicts the segments' "
                                    "click-through rates and needs [traffic]", NEEDS_TRAFFIC))
    return problems


def _mechanisms_as_written(scenario: Scenario) -> list[tuple[str, object]]:
    """The top-level mechanism and each channel's own overrides, with their paths."""
    return [("mechanism", scenario.mechanism)] + [(f"channels[{i}].mechanism", channel.mechanism)
                                                  for i, channel in enumerate(scenario.channels)]


def _prediction_problems(scenario: Scenario) -> list[Problem]:
    """``ctr_prediction`` where it is written, with a mechanism that is not a position auction.
    A channel that runs another mechanism and only inherits the top level's prediction ignores it."""
    from bidscape.mechanisms import MECHANISMS

    problems = []
    for where, mechanism in _mechanisms_as_written(scenario):
        kind = mechanism.type or scenario.mechanism.type
        if mechanism.ctr_prediction is None or kind not in MECHANISMS:
            continue  # an unknown type is reported at its own field
        if not MECHANISMS.get(kind).capabilities.slots:
            problems.append(Problem(f"{where}.ctr_prediction", f"ranking by predicted click-through rates is "
                                    f"for position auctions (gsp, vcg), not '{kind}'",
                                    'use type = "gsp" or "vcg" with slot_ctrs, or remove ctr_prediction'))
    return problems


def _click_problems(scenario: Scenario, channels: list[ResolvedChannel]) -> list[Problem]:
    """Click probabilities ``quality x ctr x ctr_multiplier x slot_ctrs[k]`` stay at or below 1 in
    every position auction once the scenario sets click-through rates (the engine does not cap them
    together with segment CTRs). One problem per field, with its largest probability."""
    from bidscape.mechanisms import MECHANISMS

    segments = scenario.traffic.segments
    if all(s.ctr is None for s in segments) and all(p.ctr_multiplier == 1.0 for p in scenario.populations):
        return []
    worst: dict[str, tuple[float, str]] = {}
    for channel in channels:
        kind = channel.mechanism.type
        if kind not in MECHANISMS or not MECHANISMS.get(kind).capabilities.slots:
            continue
        top = channel.mechanism.slot_ctrs[0]
        where = f" in channel '{channel.name}'" if scenario.channels else ""
        for p in channel.populations:
            population = scenario.populations[p]
            quality = largest_draw(population.quality)
            for k, segment in enumerate(segments):
                probability = quality * scenario.click_factor(p, k) * top
                if not scenario.eligible(p, k) or probability <= 1 + PROBABILITY_TOLERANCE:
                    continue
                field = (f"traffic.segments[{k}].ctr" if segment.ctr is not None
                         else f"populations[{p}].ctr_multiplier" if population.ctr_multiplier != 1.0
                         else f"populations[{p}].quality")
                ctr = 1.0 if segment.ctr is None else segment.ctr
                message = (f"click probabilities above 1: quality up to {quality:.4g} (population "
                           f"'{population.name}') x ctr {ctr:g} (segment '{segment.name}') x ctr_multiplier "
                           f"{population.ctr_multiplier:g} x the top slot's ctr {top:g} = {probability:.4g}{where}")
                if field not in worst or probability > worst[field][0]:
                    worst[field] = (probability, message)
    quality_fix = "lower quality, ctr or ctr_multiplier" + CTR_FIX.removeprefix("lower ctr or ctr_multiplier")
    return [Problem(field, message, quality_fix if field.endswith(".quality") else CTR_FIX)
            for field, (_, message) in worst.items()]


def _segment_problems(scenario: Scenario) -> list[Problem]:
    segments = scenario.traffic.segments
    problems = []
    total = math.fsum(s.share for s in segments)
    if abs(total - 1) > SHARE_TOLERANCE:
        scaled = ", ".join(f"{s.name} = {s.share / total:.3g}" for s in segments)
        problems.append(Problem("traffic.segments", f"the segments' shares add up to {total:.12g}, not 1",
                                f"make the shares add up to 1, e.g. {scaled}"))
    seen: set[str] = set()
    for k, segment in enumerate(segments):
        if segment.name in seen:
            problems.append(Problem(f"traffic.segments[{k}].name", f"segment name '{segment.name}' is used twice",
                                    "give each segment its own name"))
        seen.add(segment.name)
        if segment.share_curve is not None and len(segment.share_curve) != len(scenario.traffic.curve):
            problems.append(Problem(f"traffic.segments[{k}].share_curve", f"the share curve has "
                                    f"{len(segment.share_curve)} rounds and the traffic curve "
                                    f"{len(scenario.traffic.curve)}", "give one factor per round of the traffic "
                                    "curve's cycle"))
        if segment.common_value is not None and segment.common_value.quantile_table().min() < 0:
            problems.append(Problem(f"traffic.segments[{k}].common_value", "the common value multiplies every "
                                    "bidder's value and must not be negative",
                                    'use a distribution at or above 0, e.g. { dist = "lognormal", mean = 0.0, '
                                    "sigma = 0.4 }"))
    if not problems:
        for r in range(len(scenario.traffic.curve)):
            if scenario.traffic.curve[r] > 0 and math.fsum(scenario.traffic.shares(r)) <= 0:
                problems.append(Problem("traffic.segments", f"every segment's share curve is 0 in round {r} of "
                                        "the cycle, which has traffic", "give some segment a factor above 0 "
                                        "there, or set the traffic curve to 0 in that round"))
                break
    return problems


def _unknown_segment(field: str, name: str, names: list[str]) -> Problem:
    return Problem(field, f"no segment named '{name}'", f"{did_you_mean(name, names)}use one of: {', '.join(names)}")


def _eligible_problems(scenario: Scenario, channel: ResolvedChannel) -> list[Problem]:
    problems = []
    needed = max(int(channel.bidders_per_auction), 1)
    where = f" in channel '{channel.name}'" if scenario.channels else ""
    if needed > sum(scenario.populations[p].size for p in channel.populations):
        return []  # too few agents in the whole channel: the channel's own check says so
    for k, segment in enumerate(scenario.traffic.segments):
        eligible = sum(scenario.populations[p].size for p in channel.populations if scenario.eligible(p, k))
        if eligible < needed:
            problems.append(Problem(f"traffic.segments[{k}]", f"segment '{segment.name}' has {eligible} eligible "
                                    f"agents{where} but {needed} bidders per auction",
                                    "target the segment with more populations, or lower bidders_per_auction"))
    return problems

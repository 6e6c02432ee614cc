"""Segments and traffic (``[traffic]``): the arithmetic of the curve and of the split by share,
and what the types cannot say (the shares add up to 1, names resolve, every segment of every
channel has enough eligible bidders).

The models themselves, ``Traffic`` and ``Segment``, are in ``bidscape.scenario.schema``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from bidscape.errors import Problem, did_you_mean

if TYPE_CHECKING:
    from bidscape.scenario.schema import ResolvedChannel, Scenario

SHARE_TOLERANCE = 1e-9


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
    problems = _segment_problems(scenario)
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
    return problems


def _fields_without_traffic(scenario: Scenario) -> list[Problem]:
    problems = []
    for i, population in enumerate(scenario.populations):
        for field, given in (("targets", population.targets is not None), ("segment_value", population.segment_value)):
            if given:
                problems.append(Problem(f"populations[{i}].{field}", f"{field} names segments, but the scenario "
                                        "has no [traffic] section", "add [traffic] with [[traffic.segments]], "
                                        f"or remove {field}"))
    return problems


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
        if segment.common_value is not None and segment.common_value.quantile_table().min() < 0:
            problems.append(Problem(f"traffic.segments[{k}].common_value", "the common value multiplies every "
                                    "bidder's value and must not be negative",
                                    'use a distribution at or above 0, e.g. { dist = "lognormal", mean = 0.0, '
                                    "sigma = 0.4 }"))
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

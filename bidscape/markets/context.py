"""Impressions with context, per channel: the small tables the draws read (``bidscape.engine.context``).

Built from a scenario's ``[traffic]`` section once, and again when an event changes traffic,
targeting or segment values; each round then only draws the order of its segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Optional

import numpy as np

from bidscape.engine.context import segment_order
from bidscape.markets.distributions import QUANTILE_INTERVALS, LogNormal

if TYPE_CHECKING:
    from bidscape.scenario import ResolvedChannel, Scenario


@dataclass
class ChannelContext:
    """One channel's segments: who is eligible in each, and what values are worth there."""

    names: tuple[str, ...]  # segment names, in the scenario's order
    ranges: np.ndarray  # int64[S, R, 3]: the channel's ranges with the count 0 where not eligible
    eligible: np.ndarray  # int64[S]
    factor: np.ndarray  # float64[S, P]: population value multipliers
    common: np.ndarray  # float64[S, intervals + 1]: quantile tables of the common value factor (ones: none)
    click_factor: np.ndarray  # float64[S, P]: segment CTR x population CTR multiplier (``engine.clicks``)
    has_ctr: bool  # some segment CTR or population CTR multiplier is not 1

    @classmethod
    def build(cls, scenario: "Scenario", channel: "ResolvedChannel", ranges: np.ndarray) -> "ChannelContext":
        traffic = scenario.traffic
        segments = traffic.segments
        per_segment = np.repeat(ranges[np.newaxis], len(segments), axis=0)
        factor = np.ones((len(segments), len(scenario.populations)))
        click = np.ones_like(factor)
        common = np.ones((len(segments), QUANTILE_INTERVALS + 1))
        for s, segment in enumerate(segments):
            for q, p in enumerate(ranges[:, 2]):
                if not scenario.eligible(int(p), s):
                    per_segment[s, q, 1] = 0
            for p in range(len(scenario.populations)):
                factor[s, p] = scenario.segment_multiplier(p, s)
                click[s, p] = scenario.click_factor(p, s)
            if segment.common_value is not None:
                common[s] = segment.common_value.quantile_table(QUANTILE_INTERVALS)
        return cls(tuple(s.name for s in segments), np.ascontiguousarray(per_segment),
                   per_segment[:, :, 1].sum(axis=1).astype(np.int64), factor, common, click,
                   bool(np.any(click != 1.0)))

    def for_round(self, key_of_round, counts: list[int]) -> tuple:
        """The kernels' ``context`` for a round whose auctions split into ``counts`` per segment."""
        order = segment_order(np.uint64(key_of_round), np.asarray(counts, np.int64))
        return order, self.ranges, self.eligible, self.factor, self.common


@lru_cache(maxsize=16)
def ctr_noise_table(noise: float) -> np.ndarray:
    """Quantile table of the mean-one lognormal factor on predicted CTRs (``sigma = noise``)."""
    table = LogNormal(dist="lognormal", mean=-noise * noise / 2, sigma=noise).quantile_table(QUANTILE_INTERVALS)
    table.flags.writeable = False
    return table


def channel_contexts(scenario: "Scenario", channels: list["ResolvedChannel"],
                     ranges: list[np.ndarray]) -> Optional[list[ChannelContext]]:
    """Per channel, its context; None when the scenario has no ``[traffic]`` (runs as without)."""
    if scenario.traffic is None:
        return None
    return [ChannelContext.build(scenario, channel, r) for channel, r in zip(channels, ranges)]

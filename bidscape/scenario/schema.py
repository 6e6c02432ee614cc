"""The scenario's tables as pydantic models: every field typed and bounded.

``Scenario.from_dict`` validates the types here, then the checks of ``bidscape.scenario.checks``
(what the types cannot say); each population keeps its parsed strategy parameters, so
``Scenario.strategy_params`` hands them out without validating them again.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from bidscape import limits
from bidscape.markets.distributions import Constant, Distribution
from bidscape.names import RunName
from bidscape.scenario.checks import check_scenario, parse_params
from bidscape.scenario.loading import TomlDocument
from bidscape.scenario.messages import validated
from bidscape.scenario.traffic import largest_remainder, mean_of

Amount = Annotated[float, Field(ge=0, allow_inf_nan=False), limits.amount()]
Rounds = Annotated[int, Field(ge=1), limits.at_most(limits.MAX_ROUNDS, "round numbers are 32-bit integers")]
Auctions = Annotated[int, Field(ge=1), limits.at_most(limits.MAX_AUCTIONS_PER_ROUND, "counts must stay exact")]
Ctrs = Annotated[list[float], Field(min_length=1, max_length=limits.MAX_SLOTS)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Multiplier = Annotated[float, Field(ge=0, allow_inf_nan=False)]
CtrMultiplier = Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]
ValuePer = Literal["impression", "click", "conversion"]
MAX_CURVE = 100_000
MAX_SEGMENTS = 255


class _Section(BaseModel):
    # strict: numbers must be numbers, true/false booleans (pydantic would read "yes" as true, "10" as 10)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class RunSection(_Section):
    name: RunName = "run"
    seed: int = Field(0, ge=0)
    rounds: Rounds = 24
    auctions_per_round: Auctions = 100_000
    record_agents: Literal["agent", "population", "none"] = "agent"
    auction_sample_rate: float = Field(0.001, ge=0, le=1)
    experimental: bool = False  # allow strategies marked experimental (e.g. llm_proxy)


class CtrPrediction(_Section):
    """``ctr_prediction = { noise = ... }``: the exchange ranks and prices a position auction by
    bid x predicted CTR, the true CTR times a mean-one lognormal factor (mu = -noise^2 / 2,
    sigma = ``noise``) drawn per impression and advertiser; 0 predicts perfectly."""

    noise: float = Field(ge=0, le=3, allow_inf_nan=False)


class MechanismSection(_Section):
    type: str = "second_price"
    reserve: Amount = 0.0
    soft_floor: Amount = 0.0
    slot_ctrs: Ctrs = Field(default_factory=lambda: [1.0])
    pricing: Literal["click", "impression"] = "click"
    # left out of ``to_dict`` when unset, so scenarios without it write what they wrote before
    ctr_prediction: Optional[CtrPrediction] = Field(None, exclude_if=lambda v: v is None)

    @field_validator("slot_ctrs")
    @classmethod
    def _non_negative(cls, ctrs: list[float]) -> list[float]:
        if any(not 0 <= c <= 1 for c in ctrs):
            raise ValueError(f"click-through rates must be between 0 and 1 (got {ctrs}); "
                             "write probabilities, e.g. [0.3, 0.2, 0.1]")
        return ctrs


class MechanismOverrides(_Section):
    """A channel's changes to ``[mechanism]``: unset fields follow the scenario's mechanism."""

    type: Optional[str] = None
    reserve: Optional[Amount] = None
    soft_floor: Optional[Amount] = None
    slot_ctrs: Optional[Ctrs] = None
    pricing: Optional[Literal["click", "impression"]] = None
    ctr_prediction: Optional[CtrPrediction] = Field(None, exclude_if=lambda v: v is None)

    _ctrs = field_validator("slot_ctrs")(classmethod(lambda cls, v: v if v is None
                                                     else MechanismSection._non_negative(v)))


class MarketSection(_Section):
    bidders_per_auction: int | Literal["all"] = 8

    @field_validator("bidders_per_auction", mode="before")
    @classmethod
    def _positive_or_all(cls, value: Any) -> Any:
        if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f'must be a positive integer or "all" (got {value!r}); use e.g. 8, or "all"')


class Population(_Section):
    name: str = Field(min_length=1)
    size: Annotated[int, Field(ge=1), limits.at_most(limits.MAX_AGENTS, "more agents than any machine holds")]
    strategy: str
    values: Distribution
    value_scale: Distribution = Constant(dist="constant", value=1.0)
    budget: Optional[Distribution] = None
    quality: Distribution = Constant(dist="constant", value=1.0)
    reserve: Optional[Distribution] = None
    channel_budget_shares: dict[str, float] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    # segments (``[traffic]``): left out of ``to_dict`` when unset, so scenarios without
    # traffic write exactly what they wrote before
    targets: Optional[list[str]] = Field(None, min_length=1, exclude_if=lambda v: v is None)
    segment_value: dict[str, Multiplier] = Field(default_factory=dict, exclude_if=lambda v: not v)
    ctr_multiplier: CtrMultiplier = Field(1.0, exclude_if=lambda v: v == 1.0)
    # what ``values`` are worth per (unset: per impression in single-item auctions, per click in
    # position auctions); with "conversion", each click or won impression converts with
    # probability ``conversion_rate``. Left out of ``to_dict`` when unset, like the fields above.
    value_per: Optional[ValuePer] = Field(None, exclude_if=lambda v: v is None)
    conversion_rate: Optional[Share] = Field(None, exclude_if=lambda v: v is None)
    # the strategy's parsed ``params`` and the table they were parsed from (set by the checks)
    _parsed: Optional[tuple[dict[str, Any], BaseModel]] = PrivateAttr(None)

    @field_validator("channel_budget_shares")
    @classmethod
    def _shares(cls, shares: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in shares.items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"channel budget shares must be in (0, 1] (got {bad}); "
                             "write the share of the total budget the channel may spend, e.g. 0.6")
        return shares

    def keep_params(self, parsed: BaseModel) -> None:
        """Keep ``parsed`` as the strategy parameters of the current ``params`` table."""
        self._parsed = (copy.deepcopy(self.params), parsed)

    def parsed_params(self) -> Optional[BaseModel]:
        """The kept parameters, unless ``params`` changed since they were parsed."""
        if self._parsed is not None and self._parsed[0] == self.params:
            return self._parsed[1]
        return None


class Channel(_Section):
    """An exchange with its own mechanism, reserve and traffic; unset fields follow the top level."""

    name: str = Field(min_length=1)
    auctions_per_round: Optional[Auctions] = None
    bidders_per_auction: Optional[int | Literal["all"]] = None
    populations: Optional[list[str]] = Field(None, min_length=1)
    mechanism: MechanismOverrides = Field(default_factory=MechanismOverrides)

    _bidders = field_validator("bidders_per_auction", mode="before")(classmethod(
        lambda cls, v: v if v is None else MarketSection._positive_or_all(v)))


@dataclass(frozen=True)
class ResolvedChannel:
    """A channel as it runs: the top-level defaults with the channel's own settings on top."""

    name: str
    mechanism: MechanismSection
    auctions_per_round: int
    bidders_per_auction: int | Literal["all"]
    populations: tuple[int, ...]  # indices of the populations taking part


class Segment(_Section):
    """A kind of impression (e.g. "news-mobile"): its share of every channel's auctions, an
    optional common value, one draw per auction multiplying every bidder's value, and an
    optional base click-through rate (``ctr``; None: 1, click probabilities as without segments),
    and optionally a ``share_curve``: per round of the traffic curve's cycle, a factor on the
    share (the round's shares are then renormalised to sum to 1)."""

    name: str = Field(min_length=1)
    share: Share
    common_value: Optional[Distribution] = None
    ctr: Optional[Share] = None
    share_curve: Optional[Annotated[list[Multiplier], Field(min_length=1, max_length=MAX_CURVE)]] = Field(
        None, exclude_if=lambda v: v is None)


class Traffic(_Section):
    """``[traffic]``: how many auctions each round plays (``curve``) and of which segments.

    The curve is relative volume per round, cycled and normalised to mean 1, so a channel's
    ``auctions_per_round`` stays its average over a cycle:

    >>> traffic = Traffic(curve=[1.0, 3.0], segments=[Segment(name="a", share=1.0)])
    >>> traffic.volume(0), traffic.volume(1), traffic.volume(2)
    (0.5, 1.5, 0.5)
    >>> traffic.auctions(1000, 1)
    1500
    """

    curve: Annotated[list[Multiplier], Field(min_length=1, max_length=MAX_CURVE)] = Field(
        default_factory=lambda: [1.0])
    segments: list[Segment] = Field(min_length=1, max_length=MAX_SEGMENTS)

    @field_validator("curve")
    @classmethod
    def _some_traffic(cls, curve: list[float]) -> list[float]:
        if mean_of(curve) <= 0:
            raise ValueError("the traffic curve is all zeros, so no auction would ever run; "
                             "give relative volumes with at least one above 0, e.g. [0.5, 1.0, 1.5]")
        return curve

    def volume(self, r: int) -> float:
        """Round ``r``'s volume: ``curve[r % len(curve)]`` over the curve's mean (the curve normalised to mean 1)."""
        return self.curve[r % len(self.curve)] / mean_of(self.curve)

    def auctions(self, total: int, r: int) -> int:
        """The auctions a channel of ``total`` auctions per round plays in round ``r``:
        ``total * volume(r)`` rounded to the nearest integer (Python's ``round``: ties to even)."""
        return int(round(total * self.volume(r)))

    def shares(self, r: int) -> list[float]:
        """The segments' weights in round ``r``: ``share x share_curve[r % len(share_curve)]`` (just
        ``share`` without a share curve); ``segment_counts`` splits by them, normalised."""
        return [s.share if s.share_curve is None else s.share * s.share_curve[r % len(s.share_curve)]
                for s in self.segments]

    def segment_counts(self, n: int, r: int = 0) -> list[int]:
        """Round ``r``'s ``n`` auctions split by the segments' shares (``shares(r)``), exactly: they
        sum to ``n`` (largest remainders; ``bidscape.scenario.traffic.largest_remainder``).

        >>> Traffic(segments=[Segment(name="a", share=0.6), Segment(name="b", share=0.4)]).segment_counts(7)
        [4, 3]
        """
        return largest_remainder(n, self.shares(r))


class Event(_Section):
    at_round: int = Field(ge=0)
    set: dict[str, Any] = Field(min_length=1)


class Scenario(TomlDocument, _Section):
    run: RunSection = Field(default_factory=RunSection)
    mechanism: MechanismSection = Field(default_factory=MechanismSection)
    market: MarketSection = Field(default_factory=MarketSection)
    populations: list[Population] = Field(min_length=1, max_length=limits.MAX_CODES)
    channels: list[Channel] = Field(default_factory=list, max_length=limits.MAX_CODES)
    events: list[Event] = Field(default_factory=list)
    traffic: Optional[Traffic] = Field(None, exclude_if=lambda v: v is None)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "scenario") -> "Scenario":
        scenario = validated(cls, raw, source, check_scenario)
        for population in scenario.populations:  # defaults filled in, as the strategies see them
            parsed = scenario.strategy_params(population)
            population.params = parsed.model_dump(mode="json")
            population.keep_params(parsed)
        return scenario

    @property
    def total_agents(self) -> int:
        return sum(p.size for p in self.populations)

    def resolved_channels(self) -> list[ResolvedChannel]:
        """The channels to run; without ``[[channels]]``, one channel named "main"."""
        everyone = tuple(range(len(self.populations)))
        if not self.channels:
            return [ResolvedChannel("main", self.mechanism, self.run.auctions_per_round,
                                    self.market.bidders_per_auction, everyone)]
        names = [p.name for p in self.populations]
        resolved = []
        for channel in self.channels:
            # the fields as set, not dumped: nested tables (ctr_prediction) stay models
            changes = {name: copy.deepcopy(value) for name, value in channel.mechanism if value is not None}
            resolved.append(ResolvedChannel(
                channel.name,
                self.mechanism.model_copy(update=changes),
                channel.auctions_per_round or self.run.auctions_per_round,
                channel.bidders_per_auction or self.market.bidders_per_auction,
                tuple(names.index(n) for n in channel.populations) if channel.populations else everyone,
            ))
        return resolved

    def eligible(self, population_index: int, segment_index: int) -> bool:
        """Whether the population's agents bid in the segment's auctions (``targets``; all when unset).
        Without ``[traffic]`` there is one segment, index 0, open to everyone."""
        name, targets = self._segment_name(segment_index), self.populations[population_index].targets
        return targets is None or name in targets

    def segment_multiplier(self, population_index: int, segment_index: int) -> float:
        """The factor on the population's values in the segment (``segment_value``; 1 when unset)."""
        name, values = self._segment_name(segment_index), self.populations[population_index].segment_value
        return float(values.get(name, 1.0))

    def click_factor(self, population_index: int, segment_index: int) -> float:
        """The factor on the population's click probabilities in the segment: the segment's ``ctr``
        (1 when unset) x the population's ``ctr_multiplier``; a bidder of quality ``q`` in slot ``k``
        is clicked with probability ``q x click_factor x slot_ctrs[k]``."""
        multiplier = float(self.populations[population_index].ctr_multiplier)
        self._segment_name(segment_index)  # IndexError for a segment that does not exist
        if self.traffic is None:
            return multiplier
        ctr = self.traffic.segments[segment_index].ctr
        return (1.0 if ctr is None else float(ctr)) * multiplier

    def conversion_rates(self) -> Optional[list[float]]:
        """Per population, its ``conversion_rate`` (NaN where it does not value conversions); None when
        no population values conversions, so the run writes no ``conversions`` column."""
        if all(p.value_per != "conversion" for p in self.populations):
            return None
        return [float(p.conversion_rate) if p.value_per == "conversion" else math.nan for p in self.populations]

    def _segment_name(self, segment_index: int) -> Optional[str]:
        if self.traffic is None:
            if segment_index != 0:
                raise IndexError(f"segment {segment_index}: without [traffic] there is only segment 0")
            return None
        return self.traffic.segments[segment_index].name

    def strategy_params(self, population: Population) -> BaseModel:
        """``population``'s strategy parameters: the ones parsed when the scenario was validated
        (parsed again only if ``population.params`` was changed since)."""
        parsed = population.parsed_params()
        if parsed is None:
            parsed = parse_params(population)
            population.keep_params(parsed)
        return parsed

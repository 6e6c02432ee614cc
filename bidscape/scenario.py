"""Scenario files: TOML in, a typed and validated ``Scenario`` out.

Every field is checked; a mistake becomes an ``InputError`` naming the field path, the
bad value and the fix, with a "did you mean" for misspelt keys and names:

>>> Scenario.from_dict({"run": {"rounds": 2, "auctions_per_round": 10},
...     "populations": [{"name": "a", "size": 4, "strategy": "truthfull",
...                      "values": {"dist": "uniform", "low": 0, "high": 1}}]})
Traceback (most recent call last):
...
bidscape.errors.InputError: scenario is invalid: populations[0].strategy: unknown strategy 'truthfull'. Fix: did you mean 'truthful'? use one of: adaptive_pacing, constant_shade, truthful (`bidscape list strategies`)
"""

from __future__ import annotations

import copy
import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bidscape import limits
from bidscape.errors import InputError, Problem, did_you_mean
from bidscape.markets.distributions import Constant, Distribution
from bidscape.names import RunName
from bidscape.toml_files import read_toml
from bidscape.validation import problems_from, validated

Amount = Annotated[float, Field(ge=0, allow_inf_nan=False), limits.amount()]
Rounds = Annotated[int, Field(ge=1), limits.at_most(limits.MAX_ROUNDS, "round numbers are 32-bit integers")]
Auctions = Annotated[int, Field(ge=1), limits.at_most(limits.MAX_AUCTIONS_PER_ROUND, "counts must stay exact")]
Ctrs = Annotated[list[float], Field(min_length=1, max_length=limits.MAX_SLOTS)]


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


class MechanismSection(_Section):
    type: str = "second_price"
    reserve: Amount = 0.0
    soft_floor: Amount = 0.0
    slot_ctrs: Ctrs = Field(default_factory=lambda: [1.0])
    pricing: Literal["click", "impression"] = "click"

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

    @field_validator("channel_budget_shares")
    @classmethod
    def _shares(cls, shares: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in shares.items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"channel budget shares must be in (0, 1] (got {bad}); "
                             "write the share of the total budget the channel may spend, e.g. 0.6")
        return shares


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


class Event(_Section):
    at_round: int = Field(ge=0)
    set: dict[str, Any] = Field(min_length=1)


class TomlDocument:
    """Reading, overriding and writing back a validated TOML document (a scenario, a market game).

    The class provides ``from_dict(raw, source)``: validation and its checks.
    """

    @classmethod
    def from_toml(cls, path: str | Path, overrides: list[str] | None = None):
        """Read, override (``key.path=value`` strings) and validate a file."""
        raw, source = read_toml(path)
        for override in overrides or []:
            apply_override(raw, override)
        return cls.from_dict(raw, source)

    def to_dict(self) -> dict[str, Any]:
        """The resolved document (defaults filled in), as it would be written in TOML."""
        return self.model_dump(mode="json", by_alias=True)

    def with_updates(self, updates: dict[str, Any], source: str = "scenario"):
        """A copy with ``{"dotted.path": value}`` applied, validated again (strictly: numpy numbers
        from Python code count as numbers, strings do not)."""
        raw = self.to_dict()
        for path, value in updates.items():
            set_path(raw, path, value.item() if isinstance(value, np.generic) else value)
        return type(self).from_dict(raw, source)


class Scenario(TomlDocument, _Section):
    run: RunSection = Field(default_factory=RunSection)
    mechanism: MechanismSection = Field(default_factory=MechanismSection)
    market: MarketSection = Field(default_factory=MarketSection)
    populations: list[Population] = Field(min_length=1, max_length=limits.MAX_CODES)
    channels: list[Channel] = Field(default_factory=list, max_length=limits.MAX_CODES)
    events: list[Event] = Field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "scenario") -> "Scenario":
        return _with_resolved_params(validated(cls, raw, source, _check_scenario))

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
            changes = channel.mechanism.model_dump(exclude_none=True)
            resolved.append(ResolvedChannel(
                channel.name,
                self.mechanism.model_copy(update=changes),
                channel.auctions_per_round or self.run.auctions_per_round,
                channel.bidders_per_auction or self.market.bidders_per_auction,
                tuple(names.index(n) for n in channel.populations) if channel.populations else everyone,
            ))
        return resolved

    def strategy_params(self, population: Population) -> BaseModel:
        from bidscape.bidders import STRATEGIES

        return STRATEGIES.get(population.strategy).Params.model_validate(population.params, strict=True)


# ---- overrides (`--set key.path=value`, `[[events]] set = {...}`) ----

def parse_value(text: str) -> Any:
    """A TOML value (number, bool, string, array, inline table); bare words stay strings."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict[str, Any], override: str) -> None:
    path, sep, text = override.partition("=")
    if not sep or not path.strip():
        raise InputError(Problem("--set", f"'{override}' is not of the form key.path=value",
                                 "write e.g. --set run.rounds=10"))
    set_path(raw, path.strip(), parse_value(text.strip()))


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set ``raw[a][b]... = value`` for ``path = "a.b..."``; list items by index or by name."""
    parts = path.split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part, where)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise InputError(Problem(path, f"'{'.'.join(parts[:depth])}' is a value, not a table",
                                     "set the value itself, or a field of a table"))


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    raise InputError(Problem(where, f"no item '{part}' in this list",
                             f"{did_you_mean(part, [str(n) for n in names])}use an index "
                             f"0..{len(items) - 1} or a name: {', '.join(map(str, names))}"))


# ---- checks beyond types ----

SETTABLE_DURING_RUN = (
    "mechanism.*", "market.*", "run.auctions_per_round", "run.auction_sample_rate",
    "populations.*.params.*", "populations.*.values", "populations.*.values.*",
    "channels.*.mechanism.*", "channels.*.auctions_per_round", "channels.*.bidders_per_auction",
)


def _check_scenario(scenario: Scenario) -> list[Problem]:
    """What the types cannot say; the events are checked once the rest is sound."""
    return _check_semantics(scenario) or _check_events(scenario)


def _check_semantics(scenario: Scenario) -> list[Problem]:
    from bidscape.bidders import STRATEGIES
    from bidscape.mechanisms import MECHANISMS

    problems: list[Problem] = []
    if scenario.mechanism.type not in MECHANISMS:
        problems.append(MECHANISMS.unknown(scenario.mechanism.type, "mechanism.type"))
    problems.extend(_check_channels(scenario))
    for i, channel in enumerate([] if problems else scenario.resolved_channels()):
        where = f"channels[{i}].mechanism" if scenario.channels else "mechanism"
        problems.extend(_check_mechanism_settings(channel.mechanism, where))
        agents = sum(scenario.populations[p].size for p in channel.populations)
        bidders = channel.bidders_per_auction
        if bidders != "all" and bidders > agents:
            field = f"channels[{i}].bidders_per_auction" if scenario.channels else "market.bidders_per_auction"
            problems.append(Problem(field, f"{bidders} bidders per auction but only {agents} agents"
                                    + (f" in channel '{channel.name}'" if scenario.channels else ""),
                                    f'use at most {agents}, or "all"'))
    seen: set[str] = set()
    for i, population in enumerate(scenario.populations):
        where = f"populations[{i}]"
        if population.name in seen:
            problems.append(Problem(f"{where}.name", f"population name '{population.name}' is used twice",
                                    "give each population its own name"))
        seen.add(population.name)
        if population.strategy not in STRATEGIES:
            problems.append(STRATEGIES.unknown(population.strategy, f"{where}.strategy"))
            continue
        strategy = STRATEGIES.get(population.strategy)
        try:
            strategy.Params.model_validate(population.params, strict=True)
        except ValidationError as error:
            problems.extend(problems_from(error, population.params, prefix=f"{where}.params",
                                           model=strategy.Params))
        if getattr(strategy, "experimental", False) and not scenario.run.experimental:
            problems.append(Problem(f"{where}.strategy", f"strategy '{population.strategy}' is experimental",
                                    "set experimental = true in [run] to use it"))
        problems.extend(strategy.scenario_problems(scenario, i, where))
        if strategy.needs_budget and population.budget is None:
            problems.append(Problem(f"{where}.budget", f"strategy '{population.strategy}' needs a budget",
                                    'add e.g. budget = { dist = "uniform", low = 50.0, high = 150.0 }'))
        if population.quality.quantile_table(1)[0] <= 0:
            problems.append(Problem(f"{where}.quality", "quality scores must be positive",
                                    "use a distribution above 0, e.g. { dist = \"constant\", value = 1.0 }"))
        channel_names = [c.name for c in scenario.channels]
        for channel_name in population.channel_budget_shares:
            if channel_name not in channel_names:
                problems.append(Problem(f"{where}.channel_budget_shares.{channel_name}",
                                        f"no channel named '{channel_name}'",
                                        f"{did_you_mean(channel_name, channel_names)}"
                                        + (f"use one of: {', '.join(channel_names)}" if channel_names
                                           else "add [[channels]] to the scenario, or remove the share")))
    return problems


def _check_mechanism_settings(mechanism: MechanismSection, where: str) -> list[Problem]:
    from bidscape.mechanisms import MECHANISMS

    problems: list[Problem] = []
    if mechanism.type not in MECHANISMS:
        return [MECHANISMS.unknown(mechanism.type, f"{where}.type")]
    if 0 < mechanism.soft_floor < mechanism.reserve:
        problems.append(Problem(f"{where}.soft_floor", f"soft floor {mechanism.soft_floor:g} is below the hard "
                                f"floor (reserve {mechanism.reserve:g}) and would have no effect",
                                "set soft_floor >= reserve, or 0 for none"))
    if MECHANISMS.get(mechanism.type).kind == "position":
        ctrs = mechanism.slot_ctrs
        if any(c <= 0 for c in ctrs) or any(a < b for a, b in zip(ctrs, ctrs[1:])):
            problems.append(Problem(f"{where}.slot_ctrs", f"position auctions need click-through rates that "
                                    f"are positive and do not increase down the page (got {ctrs})",
                                    "list them from the top slot down, e.g. [0.3, 0.2, 0.1]"))
    return problems


def _check_channels(scenario: Scenario) -> list[Problem]:
    problems: list[Problem] = []
    names = [p.name for p in scenario.populations]
    seen: set[str] = set()
    for i, channel in enumerate(scenario.channels):
        if channel.name in seen:
            problems.append(Problem(f"channels[{i}].name", f"channel name '{channel.name}' is used twice",
                                    "give each channel its own name"))
        seen.add(channel.name)
        for name in channel.populations or []:
            if name not in names:
                problems.append(Problem(f"channels[{i}].populations", f"no population named '{name}'",
                                        f"{did_you_mean(name, names)}use one of: {', '.join(names)}"))
    return problems


def _check_events(scenario: Scenario) -> list[Problem]:
    problems: list[Problem] = []
    raw = scenario.to_dict()
    raw["events"] = []
    before = scenario  # the settings as the events so far left them
    order = sorted(range(len(scenario.events)), key=lambda i: scenario.events[i].at_round)
    for i in order:
        event = scenario.events[i]
        if event.at_round >= scenario.run.rounds:
            problems.append(Problem(f"events[{i}].at_round", f"round {event.at_round} never comes: "
                                    f"the run has rounds 0..{scenario.run.rounds - 1}",
                                    f"use a round below {scenario.run.rounds}"))
            continue
        for path, value in event.set.items():
            if not any(fnmatch.fnmatchcase(path, pattern) for pattern in SETTABLE_DURING_RUN):
                problems.append(Problem(f'events[{i}].set."{path}"', f"'{path}' cannot change during a run",
                                        "set one of: " + ", ".join(SETTABLE_DURING_RUN)))
                continue
            try:
                set_path(raw, path, value)
            except InputError as error:
                problems.extend(Problem(f'events[{i}].set."{path}"', p.message, p.fix) for p in error.problems)
        try:
            after = Scenario.from_dict(copy.deepcopy(raw))
        except InputError as error:
            problems.extend(Problem(f"events[{i}] (at round {event.at_round}): {p.path}", p.message, p.fix)
                            for p in error.problems)
            continue
        problems.extend(_param_change_problems(before, after, f"events[{i}] (at round {event.at_round})"))
        before = after
    return problems


def _param_change_problems(before: Scenario, after: Scenario, where: str) -> list[Problem]:
    """What strategies cannot change mid-run (``Strategy.change_problems``), found before the run."""
    from bidscape.bidders import STRATEGIES

    changed = [p for p, (old, new) in enumerate(zip(before.populations, after.populations)) if old.params != new.params]
    return [problem for p in changed for problem in STRATEGIES.get(after.populations[p].strategy).change_problems(
        before.strategy_params(before.populations[p]), after.strategy_params(after.populations[p]),
        f"{where}: populations[{p}].params")]


def _with_resolved_params(scenario: Scenario) -> Scenario:
    resolved = scenario.model_copy(deep=True)
    for population in resolved.populations:
        population.params = scenario.strategy_params(population).model_dump(mode="json")
    return resolved

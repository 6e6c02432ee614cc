"""What the types cannot say: the scenario's names, channels, mechanisms and strategies fit
together, and its events can happen. These checks read the strategy and mechanism registries.

Each population's strategy parameters are parsed here, once, and kept on the population
(``Population.keep_params``).
"""

from __future__ import annotations

import copy
import fnmatch
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from bidscape.errors import InputError, Problem, did_you_mean
from bidscape.scenario.loading import set_path
from bidscape.scenario.messages import problems_from
from bidscape.scenario.traffic import smallest_draw, traffic_problems

if TYPE_CHECKING:
    from bidscape.scenario.schema import MechanismSection, Population, Scenario

SETTABLE_DURING_RUN = (
    "mechanism.*", "market.*", "run.auctions_per_round", "run.auction_sample_rate",
    "populations.*.params.*", "populations.*.values", "populations.*.values.*",
    "channels.*.mechanism.*", "channels.*.auctions_per_round", "channels.*.bidders_per_auction",
    "traffic.curve", "traffic.segments.*.share", "traffic.segments.*.common_value",
    "traffic.segments.*.common_value.*", "populations.*.targets", "populations.*.segment_value",
    "populations.*.segment_value.*", "traffic.segments.*.ctr", "populations.*.ctr_multiplier",
    "populations.*.conversion_rate", "traffic.segments.*.share_curve",
)


def check_scenario(scenario: Scenario) -> list[Problem]:
    """What the types cannot say; the events are checked once the rest is sound."""
    return _check_semantics(scenario) or _check_events(scenario)


def _check_semantics(scenario: Scenario) -> list[Problem]:
    from bidscape.bidders import STRATEGIES
    from bidscape.mechanisms import MECHANISMS

    problems: list[Problem] = []
    if scenario.mechanism.type not in MECHANISMS:
        problems.append(MECHANISMS.unknown(scenario.mechanism.type, "mechanism.type"))
    problems.extend(_check_channels(scenario))
    channels = None if problems else scenario.resolved_channels()
    problems.extend(traffic_problems(scenario, channels))
    for i, channel in enumerate(channels or []):
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
            population.keep_params(parse_params(population))
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
        if smallest_draw(population.quality) <= 0:
            problems.append(Problem(f"{where}.quality", "quality scores must be positive",
                                    "use a distribution above 0, e.g. { dist = \"constant\", value = 1.0 }"))
        problems.extend(_value_per_problems(scenario, i, channels or []))
        channel_names = [c.name for c in scenario.channels]
        for channel_name in population.channel_budget_shares:
            if channel_name not in channel_names:
                problems.append(Problem(f"{where}.channel_budget_shares.{channel_name}",
                                        f"no channel named '{channel_name}'",
                                        f"{did_you_mean(channel_name, channel_names)}"
                                        + (f"use one of: {', '.join(channel_names)}" if channel_names
                                           else "add [[channels]] to the scenario, or remove the share")))
    return problems


def _value_per_problems(scenario: Scenario, i: int, channels: list) -> list[Problem]:
    """``value_per`` fits the auctions the population bids in, and ``conversion_rate`` comes with
    "conversion" (and only with it). "click" needs clicks (position auctions); "impression" needs
    single-item auctions, since position auctions take values per click."""
    from bidscape.mechanisms import MECHANISMS

    population, where = scenario.populations[i], f"populations[{i}]"
    value_per, rate = population.value_per, population.conversion_rate
    if value_per == "conversion" and rate is None:
        return [Problem(f"{where}.conversion_rate", 'value_per = "conversion" needs a conversion rate',
                        "add conversion_rate = 0.05: the probability that a click (position auctions) or a "
                        "won impression (single-item auctions) converts")]
    if rate is not None and value_per != "conversion":
        return [Problem(f"{where}.conversion_rate", "conversion_rate is used only with value_per = \"conversion\" "
                        f"(value_per is {'unset' if value_per is None else repr(value_per)})",
                        'add value_per = "conversion" (values are then per conversion), or remove conversion_rate')]
    if value_per not in ("click", "impression"):
        return []
    for channel in channels:
        if i not in channel.populations or channel.mechanism.type not in MECHANISMS:
            continue
        position = MECHANISMS.get(channel.mechanism.type).capabilities.clicks
        market = f"channel '{channel.name}' runs" if scenario.channels else "the market runs"
        if value_per == "click" and not position:
            return [Problem(f"{where}.value_per", f'value_per = "click" but {market} {channel.mechanism.type}, '
                            "a single-item auction without clicks",
                            'leave value_per unset (values per impression), or use "conversion" with a '
                            "conversion_rate per won impression")]
        if value_per == "impression" and position:
            return [Problem(f"{where}.value_per", f'value_per = "impression" but {market} '
                            f"{channel.mechanism.type}, a position auction, where values are per click",
                            'write values per click (a value per impression shown over the click-through '
                            'rate) and leave value_per unset or "click"')]
    return []


def _check_mechanism_settings(mechanism: MechanismSection, where: str) -> list[Problem]:
    from bidscape.mechanisms import MECHANISMS

    problems: list[Problem] = []
    if mechanism.type not in MECHANISMS:
        return [MECHANISMS.unknown(mechanism.type, f"{where}.type")]
    if 0 < mechanism.soft_floor < mechanism.reserve:
        problems.append(Problem(f"{where}.soft_floor", f"soft floor {mechanism.soft_floor:g} is below the hard "
                                f"floor (reserve {mechanism.reserve:g}) and would have no effect",
                                "set soft_floor >= reserve, or 0 for none"))
    if MECHANISMS.get(mechanism.type).capabilities.slots:
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
            after = type(scenario).from_dict(copy.deepcopy(raw))
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


def parse_params(population: Population) -> BaseModel:
    """``population.params`` validated as its strategy's ``Params`` (pydantic's error if invalid)."""
    from bidscape.bidders import STRATEGIES

    return STRATEGIES.get(population.strategy).Params.model_validate(population.params, strict=True)

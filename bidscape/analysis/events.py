"""Where a scenario's events make the two arms of a what-if equal: the effective settings, round by round.

An arm's settings in round ``r`` are its base settings with every event at a round ``<= r``
applied, in round order (events of one round in file order), exactly as the engine fires
them. Two arms whose base settings differ on a key (the treated key) can still agree on it in
some rounds, when an event sets it to the same value in both; the comparison then measures the
effect over the other rounds only, diluted by the rounds where nothing differs. This module
finds those rounds, per treated key, and the events responsible.

>>> overlaps = equal_rounds(baseline_scenario_dict, treatment_scenario_dict)   # doctest: +SKIP
>>> [o.message() for o in overlaps]                                            # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bidscape.scenario import set_path

_IGNORED = ("run.seed", "run.name", "run.rounds")  # labels, and the length the comparison pairs anyway


@dataclass(frozen=True)
class Overlap:
    """A key on which the arms differ in some round but are equal in ``rounds`` (of ``total``)."""

    key: str
    rounds: tuple[int, ...]
    total: int
    events: tuple[str, ...] = field(default_factory=tuple)  # e.g. "baseline events[0] at round 5 sets it to 0.5"

    @property
    def everywhere(self) -> bool:
        return len(self.rounds) == self.total

    def message(self) -> str:
        where = "in every round" if self.everywhere else \
            f"in rounds {span(self.rounds)} ({len(self.rounds)} of {self.total})"
        why = f" because {'; '.join(self.events)}" if self.events else ""
        effect = ("the treatment changes nothing on it" if self.everywhere else
                  "the comparison measures its effect over the other rounds only, diluted over the whole run")
        return f"the arms are equal on {self.key} {where}{why}: {effect}"


def equal_rounds(baseline: dict[str, Any], treatment: dict[str, Any]) -> list[Overlap]:
    """Per key on which the arms' settings differ in at least one round: the rounds where they are equal.

    ``baseline`` and ``treatment`` are resolved scenario dicts (``Scenario.to_dict()``, or a
    run manifest's ``scenario``), events included. Keys equal in every round of both arms are
    not listed; nor are keys the arms never share a value on.
    """
    rounds = min(int(baseline["run"]["rounds"]), int(treatment["run"]["rounds"]))
    base_phases, treat_phases = _phases(baseline, rounds), _phases(treatment, rounds)
    starts = sorted({s for s, _ in base_phases} | {s for s, _ in treat_phases})
    equal: dict[str, list[int]] = {}
    differs: set[str] = set()
    for begin, end in zip(starts, starts[1:] + [rounds]):
        a, b = _at(base_phases, begin), _at(treat_phases, begin)
        for key in sorted(set(a) | set(b)):
            if key in _IGNORED or key.startswith("events"):
                continue
            if a.get(key) == b.get(key):
                equal.setdefault(key, []).extend(range(begin, end))
            else:
                differs.add(key)
    return [Overlap(key, tuple(equal[key]), rounds, tuple(_events_setting(key, baseline, treatment)))
            for key in sorted(differs) if equal.get(key)]


def identical(baseline: dict[str, Any], treatment: dict[str, Any]) -> bool:
    """True when the arms' settings are the same in every round: the treatment changes nothing."""
    rounds = min(int(baseline["run"]["rounds"]), int(treatment["run"]["rounds"]))
    base_phases, treat_phases = _phases(baseline, rounds), _phases(treatment, rounds)
    starts = sorted({s for s, _ in base_phases} | {s for s, _ in treat_phases})
    return all(_without_ignored(_at(base_phases, s)) == _without_ignored(_at(treat_phases, s)) for s in starts)


def drop_event_settings(scenario: dict[str, Any], keys: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``scenario`` without the event settings of ``keys`` (an event left with nothing to set is dropped),
    and one line per setting removed, e.g. ``events[0] at round 5 set mechanism.reserve = 0.5``."""
    scenario = copy.deepcopy(scenario)
    kept, removed = [], []
    for i, event in enumerate(scenario.get("events") or []):
        settings = {}
        for path, value in event["set"].items():
            if path in keys:
                removed.append(f"events[{i}] at round {event['at_round']} set {path} = {value!r}")
            else:
                settings[path] = value
        if settings:
            kept.append({**event, "set": settings})
    scenario["events"] = kept
    return scenario, removed


def span(rounds: tuple[int, ...] | list[int]) -> str:
    """Rounds as ranges: (0, 1, 2, 5) -> '0-2, 5'."""
    parts, start = [], None
    for i, r in enumerate(rounds):
        if start is None:
            start = r
        if i + 1 == len(rounds) or rounds[i + 1] != r + 1:
            parts.append(str(start) if start == r else f"{start}-{r}")
            start = None
    return ", ".join(parts)


def _phases(scenario: dict[str, Any], rounds: int) -> list[tuple[int, dict[str, Any]]]:
    """(first round, flat settings) from round 0 and from each round where an event fires."""
    events = sorted(scenario.get("events") or [], key=lambda e: e["at_round"])  # stable: file order in a round
    raw = copy.deepcopy(scenario)
    raw["events"] = []
    phases = [(0, _flat(raw))]
    for at in sorted({e["at_round"] for e in events if e["at_round"] < rounds}):
        for event in events:
            if event["at_round"] == at:
                for path, value in event["set"].items():
                    set_path(raw, path, copy.deepcopy(value))
        if at == 0:
            phases = []
        phases.append((at, _flat(raw)))
    return phases


def _at(phases: list[tuple[int, dict[str, Any]]], round_: int) -> dict[str, Any]:
    return [settings for start, settings in phases if start <= round_][-1]


def _without_ignored(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if k not in _IGNORED and not k.startswith("events")}


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths as ``--set`` and events write them (list items by name when they have one)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    if isinstance(node, list) and node and all(isinstance(i, dict) and "name" in i for i in node):
        out = {}
        for item in node:
            out.update(_flat(item, f"{prefix}{item['name']}."))
        return out
    return {prefix[:-1]: node}


def _events_setting(key: str, baseline: dict[str, Any], treatment: dict[str, Any]) -> list[str]:
    found: dict[str, list[str]] = {}  # the event, and the arms that have it
    for arm, scenario in (("baseline", baseline), ("treatment", treatment)):
        for i, event in enumerate(scenario.get("events") or []):
            for path, value in event["set"].items():
                if path == key or key.startswith(path + ".") or path.startswith(key + "."):
                    found.setdefault(f"events[{i}] at round {event['at_round']} sets {path} = {value!r}", []).append(arm)
    return [f"{what} in {'both arms' if len(arms) == 2 else 'the ' + arms[0]}" for what, arms in found.items()]

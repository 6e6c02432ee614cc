"""Sweep files: TOML in, a validated ``SweepSpec`` (variants x seeds, every scenario resolved) out.

>>> spec = SweepSpec.from_scenario("data/scenarios/reserve_price.toml",            # doctest: +SKIP
...                                {"baseline": {}, "high": {"mechanism.reserve": 0.5}}, [1, 2], "pair")
>>> [v.name for v in spec.variants], spec.seeds                                    # doctest: +SKIP
(['baseline', 'high'], [1, 2])

Every variant's scenario is validated when the spec is built, so a bad override stops the
sweep before any run starts, with an ``InputError`` naming the variant.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bidscape import limits
from bidscape.errors import InputError, Problem
from bidscape.games import game_of
from bidscape.names import MAX_NAME, RULE, FolderName, name_problem, safe_folder_name
from bidscape.scenario import Scenario, read_toml, validated
from bidscape.sweep.names import check_variant_names, grid_names

_SECTIONS = ("run", "mechanism", "market")


# ---- the file, as pydantic models (unknown keys rejected, like scenario files) ----

class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # numbers are numbers, strings strings


class SweepTable(_Table):
    name: Optional[FolderName] = None  # the sweep folder's name (default: the file's name)
    scenario: str = Field(min_length=1)
    seeds: list[int]
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> list[int]:
        return parse_seeds(value)


class VariantTable(_Table):
    name: str = Field(min_length=1)
    set: dict[str, Any] = Field(default_factory=dict)


class SweepFile(_Table):
    sweep: SweepTable
    grid: Optional[dict[str, list[Any]]] = None
    variants: Optional[list[VariantTable]] = None


def parse_seeds(value: Any) -> list[int]:
    """``n`` -> seeds 1..n; a list of distinct seeds >= 0 stays as it is."""
    def whole(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if whole(value):
        if value < 1:
            raise ValueError(f"a seed count must be at least 1 (got {value}); write e.g. seeds = 4 (seeds 1..4)")
        if value > limits.MAX_SWEEP_RUNS:
            raise ValueError(f"a seed count must be at most {limits.MAX_SWEEP_RUNS} (one run folder each; got "
                             f"{value}); write fewer seeds, e.g. seeds = 20")
        return list(range(1, value + 1))
    if isinstance(value, list):
        if not value:
            raise ValueError("the list of seeds is empty; list at least one, e.g. seeds = [1, 2, 3]")
        bad = [x for x in value if not whole(x) or x < 0]
        if bad:
            raise ValueError(f"seeds must be whole numbers >= 0 (got {bad[0]!r}); write e.g. seeds = [3, 7, 11]")
        twice = sorted({x for x in value if value.count(x) > 1})
        if twice:
            raise ValueError(f"seed {twice[0]} is listed twice; list each seed once")
        return list(value)
    raise ValueError(f"seeds must be a count or a list of seeds (got {value!r}); "
                     "write e.g. seeds = 4 (seeds 1..4) or seeds = [3, 7, 11]")


# ---- the resolved spec ----

@dataclass(frozen=True)
class Variant:
    """One set of overrides on the base scenario, validated: ``scenario`` is what runs."""

    name: str
    overrides: dict[str, Any]  # everything applied to the base scenario (sweep-wide set included)
    scenario: Scenario
    values: dict[str, Any]  # swept key -> this variant's value (the index columns)


@dataclass(frozen=True)
class SweepSpec:
    """A sweep ready to run: variants x seeds, one run each (same seed = same auctions)."""

    name: str
    variants: list[Variant]
    seeds: list[int]
    swept_keys: list[str]
    scenario_file: Optional[str] = None  # the base scenario's path, when it came from a file
    common: dict[str, Any] = field(default_factory=dict)  # the sweep file's [sweep] set

    @classmethod
    def from_scenario(cls, scenario: Scenario | str | Path, variants: dict[str, dict[str, Any]],
                      seeds: list[int], name: str, *, swept_keys: Optional[list[str]] = None,
                      common: Optional[dict[str, Any]] = None,
                      scenario_file: Optional[str] = None) -> "SweepSpec":
        """Variants (name -> ``{"dotted.path": value}``) of one scenario, x seeds.

        ``swept_keys`` (the index's value columns) default to every key a variant sets.
        """
        if not isinstance(scenario, Scenario):
            scenario_file = scenario_file or str(scenario)
            scenario = _read_scenario(Path(scenario), "scenario")
        try:
            seeds = parse_seeds(list(seeds) if not isinstance(seeds, int) else seeds)
        except ValueError as error:
            message, _, fix = str(error).partition("; ")
            raise InputError(Problem("seeds", message, fix)) from None
        if not variants:
            raise InputError(Problem("variants", "a sweep needs at least one variant",
                                     'give e.g. {"baseline": {}}'))
        check_sweep_size(len(variants), len(seeds), "variants")
        problem = name_problem(name)
        if problem:  # the name is the default sweep folder's (runs/NAME)
            raise InputError(Problem("sweep.name", f"{problem} (got {name!r})",
                                     RULE.format(max=MAX_NAME) + ', e.g. name = "reserve-sweep"'))
        check_variant_names(list(variants), "variants")
        for variant_name, overrides in variants.items():
            check_overrides(overrides, f'variant "{variant_name}"')
        if swept_keys is None:
            swept_keys = list(dict.fromkeys(key for overrides in variants.values() for key in overrides))
        resolved = [_resolve(name, variant_name, scenario, overrides, swept_keys)
                    for variant_name, overrides in variants.items()]
        return cls(name, resolved, seeds, list(swept_keys), scenario_file, dict(common or {}))

    @property
    def runs(self) -> list[tuple[Variant, int]]:
        """Every (variant, seed), variant by variant."""
        return [(variant, seed) for variant in self.variants for seed in self.seeds]

    def to_json(self) -> dict[str, Any]:
        """The resolved spec as written to ``sweep.json`` (without version and time)."""
        return _plain({
            "name": self.name,
            "scenario_file": self.scenario_file,
            "seeds": self.seeds,
            "set": self.common,
            "swept_keys": self.swept_keys,
            "variants": [{"name": v.name, "set": v.overrides, "values": v.values, "scenario": v.scenario.to_dict()}
                         for v in self.variants],
        })

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a sweep folder to resume: name, seeds, variant names and scenarios."""
        return fingerprint_of(self.to_json())


def fingerprint_of(spec_json: dict[str, Any]) -> dict[str, Any]:
    return {"name": spec_json.get("name"), "seeds": spec_json.get("seeds"),
            "variants": [{"name": v.get("name"), "scenario": v.get("scenario")}
                         for v in spec_json.get("variants") or []]}


# ---- loading a sweep file ----

def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file; every variant's scenario is resolved and checked."""
    path = Path(path)
    source = str(path)
    raw, _ = read_toml(path, "sweep file", "an example is data/sweeps/reserve.toml")
    unquoted = [key for key, value in (raw.get("grid") or {}).items() if isinstance(value, dict)]
    if isinstance(raw.get("grid"), dict) and unquoted:  # [grid] a.b = [...] is a table a, not the key "a.b"
        key = unquoted[0]
        inner = next(iter(raw["grid"][key]), "field")
        raise InputError(Problem(f"grid.{key}", "is a table, not a list of values",
                                 f'quote dotted keys: "{key}.{inner}" = [...], not {key}.{inner} = [...]'), source)
    parsed = validated(SweepFile, raw, source, _check_shape)
    table = parsed.sweep
    name = table.name or safe_folder_name(path.stem, "sweep")
    if parsed.grid is not None:  # before the grid's points are listed
        check_sweep_size(math.prod(len(values) for values in parsed.grid.values()), len(table.seeds), "grid", source)
    scenario_path = Path(table.scenario)
    if not scenario_path.is_absolute():
        scenario_path = path.parent / scenario_path
    scenario = _read_scenario(scenario_path, source)
    if parsed.grid is not None:
        keys = list(parsed.grid)
        names = grid_names(parsed.grid)
        variants = {variant_name: {**table.set, **dict(zip(keys, point))}
                    for variant_name, point in zip(names, itertools.product(*parsed.grid.values()))}
    else:
        keys = list(dict.fromkeys(key for v in parsed.variants for key in v.set))
        variants = {v.name: {**table.set, **v.set} for v in parsed.variants}
    return SweepSpec.from_scenario(scenario, variants, table.seeds, name, swept_keys=keys,
                                   common=table.set, scenario_file=os.path.normpath(scenario_path))


def _read_scenario(path: Path, source: str) -> Scenario:
    try:
        raw, scenario_source = read_toml(path, examples="write its path relative to the sweep file's folder",
                                         field="sweep.scenario")
    except InputError as error:
        raise InputError(error.problems, error.source or source) from None
    game = game_of(raw)
    if game is not None:
        raise InputError(Problem("sweep.scenario", f"'{path}' is a {game.label}; sweeps run auction scenarios",
                                 "sweep an auction scenario (one with [[populations]])"), source)
    return Scenario.from_dict(raw, scenario_source)


def _check_shape(parsed: SweepFile) -> list[Problem]:
    """Checks beyond types: grid or variants, well-formed keys, names, no clashes."""
    problems: list[Problem] = []
    has_grid, has_variants = parsed.grid is not None, parsed.variants is not None
    if has_grid and has_variants:
        return [Problem("grid", "a sweep has a [grid] or [[variants]], not both",
                        "keep one: write the grid points as variants, or split the sweep into two files")]
    if not has_grid and not has_variants:
        return [Problem("", "the sweep has no [grid] and no [[variants]]",
                        'add a [grid] table ("mechanism.reserve" = [0.0, 0.5]) or [[variants]] '
                        'with a name and a set table')]
    problems.extend(_override_problems(parsed.sweep.set, "sweep.set"))
    if has_grid:
        if not parsed.grid:
            problems.append(Problem("grid", "the grid is empty", 'add e.g. "mechanism.reserve" = [0.0, 0.5]'))
        for key, values in parsed.grid.items():
            where = f'grid."{key}"'
            problems.extend(_override_problems({key: None}, "grid"))
            if not values:
                problems.append(Problem(where, "has no values", "list at least one value"))
            seen: set[str] = set()
            for value in values:
                text = json.dumps(value, sort_keys=True, default=str)
                if text in seen:
                    problems.append(Problem(where, f"lists {value!r} twice", "list each value once"))
                seen.add(text)
            if key in parsed.sweep.set:
                problems.append(Problem(where, "is also set in [sweep] set", "remove it from one of them"))
    else:
        if not parsed.variants:
            problems.append(Problem("variants", "the list of variants is empty", "add [[variants]] tables"))
        try:
            check_variant_names([v.name for v in parsed.variants], "variants")
        except InputError as error:
            problems.extend(error.problems)
        for i, variant in enumerate(parsed.variants):
            problems.extend(_override_problems(variant.set, f"variants[{i}].set"))
    return problems


def check_sweep_size(variants: int, seeds: int, where: str, source: str = "") -> None:
    """At most ``MAX_SWEEP_RUNS`` runs (one folder each), checked before any is listed."""
    runs = variants * seeds
    if runs > limits.MAX_SWEEP_RUNS:
        raise InputError(Problem(where, f"{variants:,} variant(s) x {seeds:,} seed(s) = {runs:,} runs, more than "
                                 f"the {limits.MAX_SWEEP_RUNS:,} a sweep may hold (one run folder each)",
                                 "sweep fewer values or seeds, or split the sweep into several files"), source)


def check_overrides(overrides: dict[str, Any], where: str) -> None:
    problems = _override_problems(overrides, where)
    if problems:
        raise InputError(problems)


def _override_problems(overrides: dict[str, Any], where: str) -> list[Problem]:
    problems = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            problems.append(Problem(f'{where}."{key}"', "is not a dotted key path", 'write e.g. "mechanism.reserve"'))
        elif key == "run.seed":
            problems.append(Problem(f'{where}."{key}"', "the seed of each run comes from the sweep's seeds",
                                    "remove it and list the seeds in [sweep] seeds"))
        elif key in _SECTIONS and isinstance(value, dict):
            inner = next(iter(value), "field")
            problems.append(Problem(f"{where}.{key}", f"replaces the whole [{key}] table",
                                    f'quote dotted keys: "{key}.{inner}" = ..., not {key}.{inner} = ...'))
    return problems


def _resolve(sweep_name: str, variant_name: str, base: Scenario, overrides: dict[str, Any],
             swept_keys: list[str]) -> Variant:
    source = f"variant '{variant_name}' of sweep '{sweep_name}'"
    try:
        scenario = base.with_updates(copy.deepcopy(overrides), source=source)
    except InputError as error:  # errors from set_path carry no source: name the variant
        raise InputError(error.problems, source) from None
    resolved = scenario.to_dict()
    values = {}
    for key in swept_keys:
        found, value = get_path(resolved, key)
        values[key] = value if found else overrides.get(key)
    return Variant(variant_name, _plain(overrides), scenario, _plain(values))


def get_path(raw: Any, path: str) -> tuple[bool, Any]:
    """``(True, raw[a][b]...)`` for ``path = "a.b..."`` (list items by index or name), else ``(False, None)``."""
    node = raw
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list):
            names = [item.get("name") for item in node if isinstance(item, dict)]
            if part.isdigit() and int(part) < len(node):  # as set_path finds items: index, then name
                node = node[int(part)]
            elif part in names:
                node = node[names.index(part)]
            else:
                return False, None
        else:
            return False, None
    return True, node


def _plain(value: Any) -> Any:
    """JSON-ready (TOML dates become strings), so specs compare as they are stored."""
    return json.loads(json.dumps(value, default=str))

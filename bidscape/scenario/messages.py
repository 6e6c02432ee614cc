"""Validation errors users can act on: a document validated as a pydantic model, and pydantic's
errors as ``Problem``s naming the field, the bad value and the fix ("did you mean" for typos).

Scenarios, market games, sweep files and strategy parameters all go through ``validated``
(or ``problems_from``), so their messages read alike.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from bidscape.errors import InputError, Problem, did_you_mean
from bidscape.markets.distributions import DISTRIBUTION_NAMES

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], raw: Any, source: str,
              check: Callable[[M], list[Problem]] = lambda parsed: []) -> M:
    """``raw`` validated as ``model``; pydantic's errors, or else ``check``'s problems, as one InputError."""
    try:
        parsed = model.model_validate(raw)
    except ValidationError as error:
        raise InputError(problems_from(error, raw, model=model), source) from None
    problems = check(parsed)
    if problems:
        raise InputError(problems, source)
    return parsed


def problems_from(error: ValidationError, raw: Any, prefix: str = "", *,
                   model: type[BaseModel]) -> list[Problem]:
    """pydantic's errors as ``Problem``s naming the field and the fix ("did you mean" for typos);
    ``model`` is the model validated (its keys are the suggestions)."""
    problems = []
    items = error.errors(include_url=False)
    # a misspelt required key is one mistake: report the unknown key, not also the missing one
    misspelt = {(item["loc"][:-1], match) for item in items if item["type"] == "extra_forbidden"
                for match in difflib.get_close_matches(str(item["loc"][-1]),
                                                       _allowed_keys(model, item["loc"][:-1], raw), 1, 0.6)}
    for item in items:
        if item["type"] == "missing" and (item["loc"][:-1], item["loc"][-1]) in misspelt:
            continue
        loc = [part for part in item["loc"] if part not in DISTRIBUTION_NAMES or isinstance(part, int)]
        # discriminator tags appear in loc only right after a distribution field
        path = _render_path(prefix, loc)
        value = item.get("input")
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, item["loc"][:-1], raw)
            key = str(item["loc"][-1])
            problems.append(Problem(path, f"unknown key '{key}'",
                                    f"{did_you_mean(key, allowed)}allowed keys here: {', '.join(allowed)}"
                                    if allowed else "remove it: this table takes no keys"))
        elif kind == "missing":
            problems.append(Problem(path, "required field is missing",
                                    f"add `{loc[-1]} = ...`" if loc else "add it"))
        elif kind == "union_tag_invalid":
            problems.append(Problem(path + ".dist", f"unknown distribution '{item['ctx']['tag']}'",
                                    f"{did_you_mean(item['ctx']['tag'], DISTRIBUTION_NAMES)}"
                                    f"use one of: {', '.join(DISTRIBUTION_NAMES)}"))
        elif kind == "union_tag_not_found":
            problems.append(Problem(path, "a distribution needs a `dist` key",
                                    f'add dist = one of {", ".join(DISTRIBUTION_NAMES)}, e.g. '
                                    '{ dist = "uniform", low = 0.0, high = 1.0 }'))
        elif kind == "literal_error":
            expected = item["ctx"]["expected"]
            options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
            problems.append(Problem(path, f"{value!r} is not allowed",
                                    f"{did_you_mean(value, options)}use one of: {expected}"))
        else:
            message = item["msg"].removeprefix("Value error, ")
            message = message[0].lower() + message[1:] if message else message
            message, _, fix = message.partition("; ")  # validators write "what is wrong; the fix"
            shown = f" (got {value!r})" if not isinstance(value, (dict, list)) and "(got" not in message else ""
            problems.append(Problem(path, message + shown, fix or _fix_for(kind, item.get("ctx", {}))))
    return problems


def _fix_for(kind: str, ctx: dict[str, Any]) -> str:
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        for key in ("ge", "gt", "le", "lt"):
            if key in ctx:
                return f"use a value {bounds[kind]} {ctx[key]}"
    kinds = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a quoted string"}
    if kind.split("_")[0] in kinds:
        return f"write {kinds[kind.split('_')[0]]}"
    if kind == "finite_number":
        return "write a finite number"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a table: a [section] or { key = value, ... }"
    if kind == "list_type":
        return "write an array: [ ... ]"
    if kind == "too_short":
        return "add at least one item"
    if kind == "too_long" and "max_length" in ctx:
        return f"use at most {ctx['max_length']} items"
    return ""


def _render_path(prefix: str, loc: list[Any]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...], raw: Any) -> list[str]:
    """The keys allowed at ``loc`` (walking models, lists and distribution tags)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        current = _field_model(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or name for name, f in current.model_fields.items())
    return []


def _field_model(model: Any, part: str) -> Any:
    if isinstance(model, list):  # distribution union: pick the tagged member
        return next((m for m in model if part == m.model_fields["dist"].annotation.__args__[0]), None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    field = model.model_fields.get(part) or next(
        (f for f in model.model_fields.values() if f.alias == part), None)
    if field is None:
        return None
    return _unwrap(field.annotation)


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin is list:
        return _unwrap(args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        members = [_unwrap(a) for a in args if a is not type(None)]
        if len(members) == 1:
            return members[0]
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(models) == 1:
            return models[0]
        return models or None
    return annotation

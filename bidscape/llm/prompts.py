"""What the language model is told, and what it must answer.

One prompt per archetype per round: a ``Situation`` (numbers only, no clocks) rendered
with fixed number formats, so that the same market state always gives the same bytes,
and so the same cache key. The answer must be one JSON object matching ``reply_model``:

    {"multiplier": 0.85, "reason": "spending ahead of the budget rate"}
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

DEFAULT_SYSTEM_PROMPT = (
    "You are the bidding proxy of a group of advertisers with similar values and budgets in a "
    "repeated online ad auction. In each round, every advertiser of the group bids its bid "
    "multiplier times its value for each impression it takes part in, capped by the budget it has "
    "left. You set one bid multiplier for the whole group for the coming round. Aim for the most "
    "total value minus spend over the whole run: do not run out of budget early, and remember that "
    "budget left at the end of the run is worth nothing. Answer with one JSON object and nothing "
    'else: {{"multiplier": <number from {low} to {high}>, "reason": "<one line, at most '
    '{reason_chars} characters>"}}.'
)


class InvalidReply(ValueError):
    """The model's answer is not one JSON object matching the reply schema."""


@dataclass(frozen=True)
class Situation:
    """One archetype's state before a round: everything its prompt says."""

    population: str
    archetype: int  # 0-based
    archetypes: int
    label: str  # e.g. "value_scale 0.8..1.0 (bin 1 of 2), budget 20..40 (bin 1 of 2)"
    mechanism: Optional[str]
    round: int  # 0-based
    rounds: int
    members: int
    budget_per_member: float  # mean budget for the run; inf when unlimited
    budget_left_share: float  # mean over members of remaining / budget; nan when unlimited
    budget_left_per_member: float  # mean remaining budget; inf when unlimited
    last_spend: Optional[float]  # last round, summed over members; None in the first round
    last_wins: Optional[float]
    last_value: Optional[float]
    multiplier: float  # applied in the last round (the initial one before the first)
    low: float
    high: float

    @property
    def rounds_left(self) -> int:
        """Rounds still to play, the coming one included."""
        return self.rounds - self.round


def number(x: Optional[float]) -> str:
    """Fixed formatting of every number in a prompt (6 significant digits)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "unlimited"
    text = format(float(x), ".6g")
    return "0" if text == "-0" else text


def share(x: float) -> str:
    if math.isnan(x):
        return "n/a (no budget)"
    return f"{x:.4f}"


def render_user_prompt(s: Situation) -> str:
    lines = [
        f"population: {s.population}",
        f"archetype: {s.archetype + 1} of {s.archetypes} ({s.label})",
        f"members: {s.members}",
        f"mechanism: {s.mechanism or 'unknown'}",
        f"round: {s.round + 1} of {s.rounds}",
        f"rounds left including this one: {s.rounds_left}",
        f"budget per member for the run: {number(s.budget_per_member)}",
        f"budget left per member: {number(s.budget_left_per_member)}",
        f"budget left share: {share(s.budget_left_share)}",
    ]
    if s.last_spend is None:
        lines.append("last round: none yet (first round)")
    else:
        members = max(s.members, 1)
        wins = s.last_wins or 0.0
        price = s.last_spend / wins if wins > 0 else None
        lines += [
            f"last round spend per member: {number(s.last_spend / members)}",
            f"last round wins per member: {number(wins / members)}",
            f"last round value per member: {number((s.last_value or 0.0) / members)}",
            f"last round mean price: {number(price)}",
        ]
    lines += [
        f"current multiplier: {s.multiplier:.4f}",
        f"allowed multiplier range: {s.low:.4f} to {s.high:.4f}",
        "Reply with the JSON object only.",
    ]
    return "\n".join(lines)


def system_prompt(low: float, high: float, reason_chars: int, override: Optional[str] = None) -> str:
    """The default system prompt with the bounds filled in, or ``override`` as given.

    An override may use ``{low}``, ``{high}`` and ``{reason_chars}`` placeholders.
    """
    template = DEFAULT_SYSTEM_PROMPT if override is None else override
    try:
        return template.format(low=f"{low:.4f}", high=f"{high:.4f}", reason_chars=reason_chars)
    except (KeyError, IndexError, ValueError):
        return template  # an override with other braces is sent as written


def build_messages(system: str, situation: Situation) -> list[dict[str, str]]:
    return [{"role": "system", "content": system},
            {"role": "user", "content": render_user_prompt(situation)}]


# ---- the reply ----

class _ReplyBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("reason", check_fields=False)
    @classmethod
    def _one_line(cls, reason: str) -> str:
        if "\n" in reason or "\r" in reason:
            raise ValueError("reason must be one line")
        return reason


@lru_cache(maxsize=64)
def reply_model(low: float, high: float, reason_chars: int) -> type[BaseModel]:
    """The pydantic model of a valid reply for these bounds."""
    return create_model(
        "ProxyReply",
        __base__=_ReplyBase,
        multiplier=(float, Field(ge=low, le=high, allow_inf_nan=False,
                                 description="bid multiplier for every member of the archetype")),
        reason=(str, Field(max_length=reason_chars, description="why, in one line")),
    )


def reply_json_schema(low: float, high: float, reason_chars: int, bounds: bool = False) -> dict[str, Any]:
    """The JSON schema sent as ``response_format`` in ``json_mode = "json_schema"`` (``strict``).

    Only keywords of the subset every strict structured-output implementation accepts
    (no ``maxLength``, ``minimum``, ``maximum``): the bounds are stated in descriptions
    and enforced by ``parse_reply``. ``bounds=True`` (``json_mode = "json_schema_bounds"``)
    adds them as keywords too, for servers whose grammar enforces them: llama.cpp cuts the
    reason at ``maxLength``, so a small model's rambling reason can no longer run past the
    token limit and leave the JSON unclosed (it does not enforce a number's bounds).
    """
    multiplier: dict[str, Any] = {"type": "number", "description": f"bid multiplier, from {low:g} to {high:g}"}
    reason: dict[str, Any] = {"type": "string", "description": f"why, in one line of at most {reason_chars} characters"}
    if bounds:
        multiplier.update(minimum=low, maximum=high)
        reason["maxLength"] = reason_chars
    return {
        "type": "object",
        "properties": {"multiplier": multiplier, "reason": reason},
        "required": ["multiplier", "reason"],
        "additionalProperties": False,
    }


_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_reply(text: str, low: float, high: float, reason_chars: int) -> tuple[float, str]:
    """``(multiplier, reason)`` from the model's answer, or ``InvalidReply`` saying why.

    Surrounding whitespace and one Markdown code fence are tolerated; anything else that
    is not exactly the schema's object (extra keys, a string multiplier, a number out of
    range, a reason with a line break or too long) is invalid.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # ValueError: also integers of more than 4300 digits
        why = error.msg if isinstance(error, json.JSONDecodeError) else str(error).split(":")[0]
        raise InvalidReply(f"not JSON ({why})") from None
    if not isinstance(data, dict):
        raise InvalidReply(f"expected a JSON object, got {type(data).__name__}")
    try:
        reply = reply_model(low, high, reason_chars).model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}"
                             for e in error.errors(include_url=False))
        raise InvalidReply(f"schema violation ({problems})") from None
    return float(reply.multiplier), reply.reason

"""The largest numbers a scenario may ask for, and why each bound is where it is.

Money. Every amount a scenario sets (values, value scales, budgets, reserves, quality
scores, market-game prices) is at most ``MAX_AMOUNT`` = 1e15, and every bid multiplier at
most ``MAX_MULTIPLIER`` = 1e6. A bid (multiplier x value x value scale) is then below 1e36;
a round of at most ``MAX_AUCTIONS_PER_ROUND`` auctions x ``MAX_SLOTS`` slots pays less than
1e51, and a run of at most ``MAX_ROUNDS`` rounds less than 1e61: far below float64's largest
number (1.8e308), with room left for squares (variances) in the analysis. Within these
bounds money cannot overflow; a strategy that still produces a non-finite amount stops the
run at that round (``bidscape.loop.finite``).

Counts. Round numbers are stored as 32-bit integers, population and channel codes as
16-bit ones, and counts of agents, auctions and slot impressions must stay exact in
float64 sums (below 2^53 ~ 9e15).

Each bound is a pydantic validator (``at_most``) whose message states the bound and the
reason, so the scenario's error names the field, the value and the fix.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_AMOUNT = 1e15
MAX_MULTIPLIER = 1e6
MAX_AGENTS = 10**12  # per population and in all; ~200 bytes each: beyond any machine's memory
MAX_ROUNDS = 2**31 - 1  # the round column is int32
MAX_AUCTIONS_PER_ROUND = 10**12  # x MAX_SLOTS slot impressions per round stay below 2^53
MAX_SLOTS = 1000
MAX_CODES = 2**15 - 1  # populations and channels: int16 codes in the tables
MAX_UNITS = 10**6  # market games: units per trader (the value table is traders x units)
MAX_SWEEP_RUNS = 100_000  # variants x seeds in one sweep: one folder each

AMOUNT_REASON = "larger amounts can overflow float64 in a run's totals"
MULTIPLIER_REASON = "a larger multiplier can overflow float64 in a run's totals"

# A lognormal's draws are unbounded; bound the one-in-1e17 draw (8.5 standard deviations).
LOGNORMAL_TAIL_Z = 8.5


def at_most(limit: float, reason: str) -> AfterValidator:
    """A validator: the value (or each number of a list) is at most ``limit``, because ``reason``."""
    shown = str(limit) if isinstance(limit, int) else f"{limit:g}"

    def check(value: Any) -> Any:
        for number in value if isinstance(value, list) else [value]:
            if number is not None and number > limit:
                raise ValueError(f"must be at most {shown} ({reason}); use a value <= {shown}")
        return value

    return AfterValidator(check)


def amount() -> AfterValidator:
    """Values, value scales, budgets, reserves, prices: at most ``MAX_AMOUNT``."""
    return at_most(MAX_AMOUNT, AMOUNT_REASON)


def multiplier() -> AfterValidator:
    """Bid multipliers: at most ``MAX_MULTIPLIER``."""
    return at_most(MAX_MULTIPLIER, MULTIPLIER_REASON)


def exp_text(log_e: float) -> str:
    """``e^x`` for messages, also where it is too big for a float."""
    if not log_e < math.log(1.7e308):
        return "more than float64 can hold (1.8e308)"
    return f"about {math.exp(log_e):.2g}"


Multiplier = Annotated[float, multiplier()]  # a bid multiplier parameter of a strategy

"""What a mechanism is to the engine: a single-item auction with a jitted price rule.

A single-item auction sells one impression to the highest bid that reaches the reserve.
Allocation (highest bid, random tie-break) and exact budget enforcement are shared by
every single-item rule in ``bidscape.engine.kernel``; a rule only sets the price. Each
rule comes twice: a numba ``cfunc`` for the kernel and a plain-Python function written
independently, which the reference implementation uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from numba import cfunc

from bidscape.engine.kernel import PRICE_RULE_SIGNATURE


@dataclass(frozen=True)
class SingleItemAuction:
    name: str
    summary: str
    price_rule: Any  # numba cfunc: price(top_bid, second_bid, reserve) -> float
    reference_price: Callable[[float, float, float], float]


def price_rule(function: Callable[[float, float, float], float]) -> Any:
    """Compile ``price(top_bid, second_bid, reserve)`` for the kernel (cached on disk)."""
    return cfunc(PRICE_RULE_SIGNATURE, cache=True)(function)

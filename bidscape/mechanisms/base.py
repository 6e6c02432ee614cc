"""What a mechanism is to the engine: a single-item auction with a price rule.

A single-item auction sells one impression to the highest bid that reaches the reserve.
Allocation (highest bid, random tie-break) and exact budget enforcement are shared by
every single-item rule in ``bidscape.engine.kernel``. The jitted kernel prices with two
weights, ``max(top_weight * top_bid + second_weight * second_bid, reserve)``; each rule
also comes as a plain-Python function, written independently, that the reference
implementation uses and the tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class SingleItemAuction:
    name: str
    summary: str
    top_weight: float
    second_weight: float
    reference_price: Callable[[float, float, float], float]  # (top_bid, second_bid, reserve) -> price

    def __post_init__(self) -> None:
        if min(self.top_weight, self.second_weight) < 0 or self.top_weight + self.second_weight > 1:
            raise ValueError(f"mechanism '{self.name}': price weights must be >= 0 and sum to at most 1, "
                             "so that no winner pays more than its bid")

    @property
    def price_weights(self) -> tuple[float, float]:
        return self.top_weight, self.second_weight

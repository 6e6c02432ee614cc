"""Generalised second price (GSP) position auction.

Bidders are ranked by bid x quality; the bidder in slot ``s`` pays, per click, the
least bid that keeps its slot: the next-ranked score divided by its own quality
(``b[s+1] * q[s+1] / q[s]``), or its reserve if higher. See
``bidscape.engine.positions`` for clicks and pricing per impression.

>>> from bidscape.mechanisms.gsp import MECHANISM
>>> # slot 0 of ctrs (0.3, 0.1); others' scores 0.6 and 0.2; quality 2; no reserve
>>> MECHANISM.reference_price_per_click(0, [0.6, 0.2], 2.0, 0.0, [0.3, 0.1])
0.3
"""

from typing import Sequence

from bidscape.mechanisms.base import PositionAuction


def _reference(slot: int, other_scores: Sequence[float], quality: float, floor: float,
               ctrs: Sequence[float]) -> float:
    # to stay in slot `slot`, the score must reach the best score among the others below it
    beaten = other_scores[slot] if slot < len(other_scores) else 0.0
    return max(beaten / quality, floor)


MECHANISM = PositionAuction(
    name="gsp",
    summary="position auction: rank by bid x quality, pay per click the next score / own quality",
    vcg=False,
    reference_price_per_click=_reference,
)

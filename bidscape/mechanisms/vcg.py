"""Vickrey-Clarke-Groves (VCG) position auction.

Bidders are ranked by bid x quality; each pays its externality: the clicks its
presence takes from the bidders below it, valued at their bids. With reserves, the
threshold for each lower slot is the reserve if higher (the Myerson payment), so
truthful bidding stays dominant. Per click, for the bidder in slot ``s`` with quality
``q``: ``sum_{t >= s} (ctr[t] - ctr[t+1]) * max(next_score(t) / q, reserve) / ctr[s]``.

That is VCG while the ranking is the efficient assignment. When click probabilities
``min(1, q * ctr)`` are capped at 1 it may not be, and the engine assigns the slots
efficiently and charges that assignment's VCG prices instead (``bidscape.engine.capped``,
``docs/mechanisms.md``); this function is the price of the uncapped case.

>>> from bidscape.mechanisms.vcg import MECHANISM
>>> # slot 0 of ctrs (0.3, 0.1); others' scores 0.6 and 0.2; quality 2; no reserve
>>> round(MECHANISM.reference_price_per_click(0, [0.6, 0.2], 2.0, 0.0, [0.3, 0.1]), 6)
0.233333
"""

from typing import Sequence

from bidscape.mechanisms.base import PositionAuction


def _reference(slot: int, other_scores: Sequence[float], quality: float, floor: float,
               ctrs: Sequence[float]) -> float:
    # Being in slot `slot` rather than slot t+1 costs the others, for each t >= slot, the
    # clicks ctr[t] - ctr[t+1] that the bidder ranked t-th among the others would get.
    total = 0.0
    for t in range(slot, len(ctrs)):
        below = ctrs[t + 1] if t + 1 < len(ctrs) else 0.0
        threshold = other_scores[t] if t < len(other_scores) else 0.0
        total += (ctrs[t] - below) * max(threshold / quality, floor)
    return total / ctrs[slot]


MECHANISM = PositionAuction(
    name="vcg",
    summary="position auction: rank by bid x quality, each winner pays its externality (truthful)",
    vcg=True,
    reference_price_per_click=_reference,
)

"""First-price auction: the highest bid at or above the reserve wins and pays its bid.

>>> from bidscape.mechanisms.first_price import MECHANISM
>>> MECHANISM.reference_price(0.8, 0.5, 0.2)
0.8
"""

from bidscape.mechanisms.base import SingleItemAuction


def _reference(top_bid: float, second_bid: float, third_bid: float) -> float:
    return top_bid


MECHANISM = SingleItemAuction(
    name="first_price",
    summary="highest bid wins and pays its bid",
    top_weight=1.0,
    second_weight=0.0,
    reference_price=_reference,
)

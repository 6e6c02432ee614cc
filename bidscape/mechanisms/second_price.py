"""Second-price (Vickrey) auction: the winner pays the second-highest bid (or the reserve).

>>> from bidscape.mechanisms.second_price import MECHANISM
>>> MECHANISM.reference_price(0.8, 0.5, 0.2)
0.5
"""

from bidscape.mechanisms.base import SingleItemAuction


def _reference(top_bid: float, second_bid: float, third_bid: float) -> float:
    return second_bid


MECHANISM = SingleItemAuction(
    name="second_price",
    summary="highest bid wins and pays the second-highest bid or the reserve, whichever is higher",
    top_weight=0.0,
    second_weight=1.0,
    reference_price=_reference,
)

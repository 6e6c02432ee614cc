"""Second-price (Vickrey) auction with a reserve: the winner pays max(second bid, reserve).

>>> from bidscape.mechanisms.second_price import MECHANISM
>>> MECHANISM.reference_price(0.8, 0.5, 0.6)
0.6
"""

from bidscape.mechanisms.base import SingleItemAuction


def _reference(top_bid: float, second_bid: float, reserve: float) -> float:
    return second_bid if second_bid > reserve else reserve


MECHANISM = SingleItemAuction(
    name="second_price",
    summary="highest bid wins and pays the second-highest bid or the reserve, whichever is higher",
    top_weight=0.0,
    second_weight=1.0,
    reference_price=_reference,
)

"""Third-price auction: the highest bid wins and pays the third-highest bid (or the reserve).

A teaching mechanism: with independent private values bidding above one's value is
the equilibrium (for n bidders with U[0,1] values, b(v) = (n-1)/(n-2) v), and by
revenue equivalence it raises the same expected revenue as first and second price.

>>> from bidscape.mechanisms.third_price import MECHANISM
>>> MECHANISM.reference_price(0.8, 0.5, 0.2)
0.2
"""

from bidscape.mechanisms.base import SingleItemAuction


def _reference(top_bid: float, second_bid: float, third_bid: float) -> float:
    return third_bid


MECHANISM = SingleItemAuction(
    name="third_price",
    summary="highest bid wins and pays the third-highest bid or the reserve, whichever is higher",
    top_weight=0.0,
    second_weight=0.0,
    third_weight=1.0,
    reference_price=_reference,
)

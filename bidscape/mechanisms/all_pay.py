"""All-pay auction: the highest bid wins, and every bidder at or above the reserve pays its bid.

A teaching mechanism (contests, lobbying, R&D races). With n bidders and U[0,1]
values the symmetric equilibrium bid is b(v) = (n-1)/n v^n, and expected revenue is
again (n-1)/(n+1), as revenue equivalence predicts. Losers' payments count in the
market's revenue and in their own spend, not in ``price`` of the auction sample
(which is what the winner paid).

>>> from bidscape.mechanisms.all_pay import MECHANISM
>>> MECHANISM.reference_price(0.8, 0.5, 0.2), MECHANISM.all_pay
(0.8, True)
"""

from bidscape.mechanisms.base import SingleItemAuction


def _reference(top_bid: float, second_bid: float, third_bid: float) -> float:
    return top_bid


MECHANISM = SingleItemAuction(
    name="all_pay",
    summary="highest bid wins; every bidder at or above the reserve pays its own bid",
    top_weight=1.0,
    second_weight=0.0,
    all_pay=True,
    reference_price=_reference,
)

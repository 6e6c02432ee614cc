"""Truthful bidding: bid your value (capped by the remaining budget).

Dominant in a second-price auction without budgets.
"""

from bidscape.bidders.base import Strategy


class Truthful(Strategy):
    name = "truthful"
    summary = "bid = value (multiplier 1)"

    def decide(self, round_index: int) -> None:
        self.agents.multiplier[:] = 1.0

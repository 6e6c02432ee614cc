"""Bidding strategies, registered by the names scenario files use (``populations.strategy``)."""

from bidscape.bidders.adaptive_pacing import AdaptivePacing
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.bidders.constant_shade import ConstantShade
from bidscape.bidders.truthful import Truthful
from bidscape.registry import Registry

STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "strategies")
for _strategy in (Truthful, ConstantShade, AdaptivePacing):
    STRATEGIES.register(_strategy.name, _strategy)

__all__ = ["STRATEGIES", "Strategy", "PopulationView", "RoundFeedback"]

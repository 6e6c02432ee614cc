"""Conformance checks that run whole scenarios: ``check_strategy`` (every bidding strategy's
invariants, on small markets). Mechanisms are checked on their own, below the round loop
(``bidscape.mechanisms.conformance.check_mechanism``)."""

from bidscape.conformance.strategies import StrategyReport, check_strategy

__all__ = ["check_strategy", "StrategyReport"]

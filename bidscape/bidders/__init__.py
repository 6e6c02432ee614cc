"""Bidding strategies, registered by the names scenario files use (``populations.strategy``)."""

from bidscape.bidders.adaptive_pacing import AdaptivePacing
from bidscape.bidders.agency import Agency
from bidscape.bidders.base import PopulationView, RoundFeedback, Strategy
from bidscape.bidders.constant_shade import ConstantShade
from bidscape.bidders.epsilon_greedy import EpsilonGreedy
from bidscape.bidders.external import External
from bidscape.bidders.exp3 import Exp3
from bidscape.bidders.hedge import Hedge
from bidscape.bidders.llm_proxy import LlmProxy
from bidscape.bidders.multi_channel import MultiChannel
from bidscape.bidders.pid_pacing import PidPacing
from bidscape.bidders.segment_pacing import SegmentPacing
from bidscape.bidders.rl_policy import RLPolicy
from bidscape.bidders.target_cpa import TargetCpa
from bidscape.bidders.target_roi import TargetRoi
from bidscape.bidders.thompson import Thompson
from bidscape.bidders.throttling import Throttling
from bidscape.bidders.truthful import Truthful
from bidscape.bidders.ucb1 import Ucb1
from bidscape.registry import Registry

STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "strategies")
for _strategy in (Truthful, ConstantShade, AdaptivePacing, SegmentPacing, TargetRoi, TargetCpa, PidPacing, Throttling,
                  MultiChannel, Agency, EpsilonGreedy, Ucb1, Thompson, Exp3, Hedge, RLPolicy, External, LlmProxy):
    STRATEGIES.register(_strategy.name, _strategy)

__all__ = ["STRATEGIES", "Strategy", "PopulationView", "RoundFeedback"]

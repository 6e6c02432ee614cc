"""The policy network and its observations, as ``bidscape.rl`` users know them.

They live in ``bidscape.bidders.rl_network`` (the model layer), because the ``rl_policy``
strategy runs them; training (``bidscape.rl.train``) and the environment import them from
there too. Importing this module imports torch.
"""

from bidscape.bidders.rl_network import (EMA_DECAY, FEATURE_HIGH, FEATURES, FORMAT, FORMAT_VERSION,
                                         ObservationBuilder, Policy, load_policy, observation_bounds,
                                         save_policy)

__all__ = ["EMA_DECAY", "FEATURES", "FEATURE_HIGH", "FORMAT", "FORMAT_VERSION", "ObservationBuilder", "Policy",
           "load_policy", "observation_bounds", "save_policy"]

"""The round loop (the run layer): market state, rounds of auctions, strategies between them.

- ``state``: ``MarketState``, every agent's arrays, built from a scenario.
- ``simulation``: ``Simulation``, one ``step()`` per round.
- ``counterfactuals``: the full-information feedback some learners get.
- ``records``: what a round writes through ``bidscape.outputs``.
- ``finite``: the check that a round's money stayed finite.

It imports the model (scenario, markets, mechanisms, bidders) and the kernels, never the
layers above it (analysis, sweeps, CLI, dashboard).
"""

"""Analysis of bidscape runs with polars: market and bidder metrics, comparisons with confidence intervals.

>>> from bidscape import analysis
>>> analysis.market("runs/demo")                        # doctest: +SKIP   per round
>>> analysis.populations("runs/demo", by=("round", "population"))  # doctest: +SKIP
>>> analysis.headline("sweeps/reserve")                 # doctest: +SKIP   one row per run
>>> analysis.segment_metrics("runs/segments")           # doctest: +SKIP

See ``bidscape.analysis.metrics`` for the definitions.
"""

from bidscape.analysis.metrics import (HEADLINE, agent_sample, headline, market, populations, price_histogram,
                                       prices)
from bidscape.analysis.segments import segment_metrics, segment_population_metrics
from bidscape.analysis.sources import RunRef, groups_of, runs_of

__all__ = ["HEADLINE", "RunRef", "agent_sample", "groups_of", "headline", "market", "populations",
           "price_histogram", "prices", "runs_of", "segment_metrics",
           "segment_population_metrics"]

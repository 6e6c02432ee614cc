"""Target cost per acquisition: maximise conversions subject to spend <= cpa x conversions.

The population's values are read as expected conversions: write the scenario's
``values`` as conversion probabilities (and ``value_scale`` as conversions per
"success", usually 1), so the value an agent wins in a round is its expected number
of conversions ``C``. The bidder maximises ``C`` over the run subject to

    S <= cpa * C     (cost per acquisition at most ``cpa``)   and   S <= B  (optional budget),

which is the return-on-spend problem of ``target_roi`` with ``tau = 1 / cpa``
(Aggarwal, Badanidiyuru & Mehta 2019). Its bid per auction is

    bid = (1 + lambda) / (lambda / cpa + mu) * p_conversion,

so ``lambda -> inf`` gives the textbook tCPA bid ``cpa x p_conversion``, and a smaller
``lambda`` bids above it while the realised CPA stays under target. The dual variables
and their updates are ``target_roi``'s (``DualConstrainedBidder``): projected
subgradient steps after each round, dual descent as in Balseiro, Lu & Mirrokni (2020).

    [[populations]]
    strategy = "target_cpa"
    values = { dist = "uniform", low = 0.0, high = 0.1 }   # conversion probabilities
    params = { cpa = 4.0 }
"""

from __future__ import annotations

from pydantic import Field

from bidscape.bidders.target_roi import DualConstrainedBidder, DualParams


class TargetCpaParams(DualParams):
    cpa: float = Field(gt=0, allow_inf_nan=False,
                       description="cost per conversion to meet over the run: spend <= cpa x conversions")


class TargetCpa(DualConstrainedBidder):
    name = "target_cpa"
    summary = ("conversion maximiser with spend <= cpa x conversions (and a budget): "
               "target_roi with target 1/cpa, values read as conversion probabilities")
    Params = TargetCpaParams
    params: TargetCpaParams

    def ros_target(self) -> float:
        return 1.0 / self.params.cpa

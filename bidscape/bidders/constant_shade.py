"""Constant shading: bid a fixed fraction (or multiple) of the value.

With ``n`` bidders, values U[0, 1] and no budgets, ``multiplier = (n - 1) / n`` is the
symmetric equilibrium of the first-price auction.

    [[populations]]
    strategy = "constant_shade"
    params = { multiplier = 0.875 }
"""

from pydantic import BaseModel, ConfigDict, Field

from bidscape import limits
from bidscape.bidders.base import Strategy


class ConstantShadeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    multiplier: limits.Multiplier = Field(ge=0, allow_inf_nan=False, description="bid = multiplier x value")


class ConstantShade(Strategy):
    name = "constant_shade"
    summary = "bid = multiplier x value, multiplier fixed (params.multiplier)"
    Params = ConstantShadeParams

    def decide(self, round_index: int) -> None:
        self.agents.multiplier[:] = self.params.multiplier

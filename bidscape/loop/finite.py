"""Money stays finite: a round whose revenue or welfare is not a finite number stops the run there.

The scenario's bounds (``bidscape.limits``) keep every amount finite; this is the check for
what they cannot see (a strategy's own arithmetic, a third-party mechanism). It costs three
``isfinite`` calls per round on totals the round has already summed: every price an agent
pays is in its channel's revenue and every value it wins in the welfare, so a NaN or an
infinity anywhere in spend or value shows there. Only when one does are the agents
searched, to name the population.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from bidscape.engine.kernel import SPEND, VALUE

if TYPE_CHECKING:
    from bidscape.loop.simulation import RoundResult, Simulation


class NonFiniteMoney(ArithmeticError):
    """A round produced a NaN or infinite amount of money (spend, value, revenue or welfare)."""


def check_round(simulation: "Simulation", result: "RoundResult") -> None:
    """Raise ``NonFiniteMoney`` naming the round, channel and population if the round's money is not finite."""
    if math.isfinite(result.revenue) and math.isfinite(result.welfare) and math.isfinite(result.max_welfare):
        return
    raise NonFiniteMoney(_describe(simulation, result))


def _describe(simulation: "Simulation", result: "RoundResult") -> str:
    state = simulation.state
    where = f"round {result.round}"
    for c, channel in enumerate(result.channels):
        totals = channel.totals
        bad = [(name, x) for name, x in (("revenue", totals.revenue), ("welfare", totals.welfare),
                                           ("max_welfare", totals.max_welfare)) if not math.isfinite(x)]
        if not bad:
            continue
        where += f", channel '{channel.name}' ({bad[0][0]} {bad[0][1]})"
        outcomes = state.channel_outcomes[c]
        for p, name in enumerate(state.population_names):
            part = state.population_slice(p)
            spend, value = outcomes[part, SPEND].sum(), outcomes[part, VALUE].sum()
            if not (np.isfinite(spend) and np.isfinite(value)):
                strategy = simulation.scenario.populations[p].strategy
                where += (f": population '{name}' (strategy '{strategy}') spent {spend} for a value of {value}; "
                          f"its mean bid multiplier was {state.multiplier[part].mean():.3g}")
                break
        break
    return (f"money stopped being a finite number in {where}. Bids are multiplier x value x value scale: "
            "check the strategy's parameters and the population's values and value_scale")

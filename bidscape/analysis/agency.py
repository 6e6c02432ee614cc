"""An agency's clients coordinated and independent, the same auctions replayed (``compare_independent``).

The agency strategy itself is ``bidscape.bidders.agency``; this runs a scenario twice to
measure what coordination gives each client (docs/learners.md).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bidscape.bidders.agency import Agency
from bidscape.errors import InputError, Problem
from bidscape.loop.simulation import Simulation


def compare_independent(scenario, population: str) -> pl.DataFrame:
    """Each client's utility with its agency coordinating and bidding independently.

    Both runs use the scenario's seed, so the auctions, participants and values are the
    same (common random numbers). With ``pacing = "dual"`` the independent arm is
    ``adaptive_pacing`` with the same parameters. Columns: ``agent``, ``agency``,
    ``utility_agency``, ``utility_independent``, ``gain``.
    """
    names = [p.name for p in scenario.populations]
    if population not in names:
        raise InputError(Problem("population", f"no population named '{population}'",
                                 f"use one of: {', '.join(names)}"))
    index = names.index(population)
    if scenario.populations[index].strategy != Agency.name:
        raise InputError(Problem(f"populations[{index}].strategy", f"population '{population}' does not use "
                                 "the agency strategy", 'set strategy = "agency"'))
    utilities = []
    for coordinate in (True, False):
        arm = scenario.with_updates({f"populations.{population}.params.coordinate": coordinate})
        simulation = Simulation(arm)
        part = simulation.state.population_slice(index)
        total = np.zeros(part.stop - part.start)
        while not simulation.finished:
            simulation.step()
            total += simulation.state.value[part] - simulation.state.spend[part]
        simulation.close()
        utilities.append(total)
    size = scenario.populations[index].params.get("clients_per_agency", 2)
    clients = np.arange(utilities[0].size)
    return pl.DataFrame({
        "agent": clients + part.start,
        "agency": clients // size,
        "utility_agency": utilities[0],
        "utility_independent": utilities[1],
        "gain": utilities[0] - utilities[1],
    })

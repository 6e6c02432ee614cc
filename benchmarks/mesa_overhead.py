"""What driving a market from Mesa costs per round: `MarketModel.step` against a plain `Simulation.step`.

Run from the repository root (needs the mesa extra):

    python benchmarks/mesa_overhead.py            # the demo market (100k agents) and a 1M-agent version
    python benchmarks/mesa_overhead.py --rounds 6

For each market it plays the same scenario twice: with a bare ``Simulation`` and through
``bidscape.mesa.MarketModel`` (with and without cohorts binned by budget). "Wrapper" is,
round by round, ``MarketModel.step`` minus the ``Simulation.step`` inside it: Mesa's and
the cohorts' own time, much less noisy than the difference of two runs. Medians in ms.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bidscape import Scenario
from bidscape.loop.simulation import Simulation
from bidscape.mesa import MarketModel

DEMO = Path(__file__).resolve().parent.parent / "data" / "scenarios" / "demo.toml"


def per_round(scenario: Scenario, **model_options) -> tuple[float, float, float]:
    simulation, plain = Simulation(scenario), []
    while not simulation.finished:
        start = time.perf_counter()
        simulation.step()
        plain.append(time.perf_counter() - start)
    model, inner, outer = MarketModel(scenario, **model_options), [], []
    step = model.simulation.step

    def timed(*args):
        start = time.perf_counter()
        result = step(*args)
        inner.append(time.perf_counter() - start)
        return result

    model.simulation.step = timed
    while model.running:
        start = time.perf_counter()
        model.step()
        outer.append(time.perf_counter() - start)
    median = lambda x: 1e3 * float(np.median(x))  # noqa: E731
    return median(plain), median(outer), median(np.subtract(outer, inner))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    demo = Scenario.from_toml(DEMO).with_updates({"run.rounds": args.rounds, "run.record_agents": "none"})
    MarketModel(demo.with_updates({"run.rounds": 2, "run.auctions_per_round": 1000})).run_model()  # compile
    big = demo.with_updates({"populations.paced.size": 800_000, "populations.brand.size": 200_000})
    print(f"{'market':<12} {'cohorts':<22} {'plain ms':>9} {'mesa ms':>9} {'wrapper ms':>11}")
    for label, scenario in (("100k agents", demo), ("1M agents", big)):
        for options in ({}, {"cohorts_by": ("budget",)}):
            plain, mesa, wrapper = per_round(scenario, **options)
            print(f"{label:<12} {str(options.get('cohorts_by', 'per population')):<22} "
                  f"{plain:9.1f} {mesa:9.1f} {wrapper:11.2f}")


if __name__ == "__main__":
    main()

"""bidscape: fast, exact agent-based simulation of auctions and markets.

>>> import bidscape
>>> scenario = bidscape.Scenario.from_toml("data/scenarios/pacing.toml")  # doctest: +SKIP
>>> result = bidscape.run(scenario, out="runs/pacing")                 # doctest: +SKIP
>>> result.market                                                     # doctest: +SKIP
"""

__version__ = "0.1.0"

from bidscape.errors import InputError  # noqa: E402
from bidscape.scenario import Scenario  # noqa: E402


def run(*args, **kwargs):
    """Run a scenario; see ``bidscape.api.run`` (imported lazily to keep start-up fast)."""
    from bidscape.api import run as _run

    return _run(*args, **kwargs)


def check_mechanism(*args, **kwargs):
    """Check a mechanism's invariants; see ``bidscape.mechanisms.conformance.check_mechanism``."""
    from bidscape.mechanisms.conformance import check_mechanism as _check

    return _check(*args, **kwargs)


def check_strategy(*args, **kwargs):
    """Check a strategy's invariants; see ``bidscape.conformance.strategies.check_strategy``."""
    from bidscape.conformance import check_strategy as _check

    return _check(*args, **kwargs)


def __getattr__(name: str):
    if name == "Run":
        from bidscape.api import Run

        return Run
    raise AttributeError(f"module 'bidscape' has no attribute '{name}'")


__all__ = ["Scenario", "InputError", "run", "Run", "check_mechanism", "check_strategy", "__version__"]

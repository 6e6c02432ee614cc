"""Mesa integration: a bidscape market as a Mesa model (``pip install 'bidscape[mesa]'``).

>>> from bidscape.mesa import MarketModel                                   # doctest: +SKIP
>>> model = MarketModel("data/scenarios/reserve_price.toml", seed=1)        # doctest: +SKIP
>>> model.intervene(5, {"mechanism.reserve": 0.5})                          # doctest: +SKIP
>>> model.run_model()                                                       # doctest: +SKIP
>>> model.datacollector.get_model_vars_dataframe()                          # doctest: +SKIP

One ``step()`` is one round; see docs/mesa.md.
"""

# ``import mesa`` below is the top-level Mesa package (imports are absolute), not this one.
try:
    import mesa as _mesa
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("bidscape.mesa needs Mesa 3: install the mesa extra: pip install 'bidscape[mesa]'") from error

if int(str(getattr(_mesa, "__version__", "0")).split(".")[0]) < 3:  # pragma: no cover
    raise ImportError(f"bidscape.mesa needs Mesa >= 3.0 (found {_mesa.__version__}): "
                      "install the mesa extra: pip install 'bidscape[mesa]'")

from bidscape.mesa.cohorts import CohortAgent, Cohorts  # noqa: E402
from bidscape.mesa.model import MarketModel, load_scenario  # noqa: E402

__all__ = ["MarketModel", "CohortAgent", "Cohorts", "load_scenario"]

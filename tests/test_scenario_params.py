"""Strategy parameters are parsed once, when the scenario is validated, and kept on it."""

from __future__ import annotations

import pytest

from bidscape.bidders import STRATEGIES
from bidscape.scenario import Scenario

RAW = {"run": {"rounds": 4, "auctions_per_round": 10},
       "populations": [{"name": "a", "size": 4, "strategy": "adaptive_pacing", "params": {"step": 0.2},
                        "values": {"dist": "uniform", "low": 0, "high": 1},
                        "budget": {"dist": "constant", "value": 5.0}},
                       {"name": "b", "size": 4, "strategy": "truthful",
                        "values": {"dist": "uniform", "low": 0, "high": 1}}],
       "events": [{"at_round": 2, "set": {"populations.a.params.step": 0.3}}]}


@pytest.fixture
def parses(monkeypatch):
    """How often adaptive_pacing's parameters are validated."""
    params = STRATEGIES.get("adaptive_pacing").Params
    calls = []
    original = params.model_validate.__func__
    monkeypatch.setattr(params, "model_validate",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    return calls


def test_a_population_s_parameters_are_validated_once(parses):
    scenario = Scenario.from_dict(RAW)
    validated = len(parses)
    assert validated == 2  # the scenario, and the scenario as the event leaves it
    first = scenario.strategy_params(scenario.populations[0])
    assert first.step == 0.2 and scenario.strategy_params(scenario.populations[0]) is first
    assert len(parses) == validated


def test_the_kept_parameters_follow_a_changed_table():
    scenario = Scenario.from_dict(RAW)
    population = scenario.populations[0]
    population.params = {**population.params, "step": 0.5}
    assert scenario.strategy_params(population).step == 0.5


def test_to_dict_writes_the_parameters_with_defaults_filled_in():
    scenario = Scenario.from_dict(RAW)
    params = scenario.to_dict()["populations"][0]["params"]
    assert params == STRATEGIES.get("adaptive_pacing").Params(step=0.2).model_dump(mode="json")
    assert Scenario.from_dict(scenario.to_dict()) == scenario

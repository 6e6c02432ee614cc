"""Scenario files: TOML in, a typed and validated ``Scenario`` out.

- ``schema``: the tables as pydantic models (``Scenario``, its sections, ``ResolvedChannel``);
- ``loading``: reading a TOML file, ``--set key.path=value`` overrides, ``TomlDocument``;
- ``checks``: what the types cannot say (names, channels, strategies, events);
- ``traffic``: segments and traffic (``[traffic]``): the split by share and its checks;
- ``messages``: pydantic's errors as ``Problem``s a user can act on.

Every field is checked; a mistake becomes an ``InputError`` naming the field path, the
bad value and the fix, with a "did you mean" for misspelt keys and names:

>>> Scenario.from_dict({"run": {"rounds": 2, "auctions_per_round": 10}, "market": {"bidders_per_auction": 2},
...     "populations": [{"name": "a", "size": 4, "strategy": "truthfull",
...                      "values": {"dist": "uniform", "low": 0, "high": 1}}]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
bidscape.errors.InputError: scenario is invalid: populations[0].strategy: unknown strategy 'truthfull'. Fix: did you mean 'truthful'? use one of: adaptive_pacing, ... (`bidscape list strategies`)
"""

from bidscape.scenario.checks import SETTABLE_DURING_RUN
from bidscape.scenario.loading import TomlDocument, apply_override, parse_value, read_toml, set_path
from bidscape.scenario.messages import problems_from, validated
from bidscape.scenario.schema import (Amount, Auctions, Channel, Ctrs, Event, MarketSection,
                                      MechanismOverrides, MechanismSection, Population,
                                      ResolvedChannel, Rounds, RunSection, Scenario, Segment, Traffic)

__all__ = ["Scenario", "RunSection", "MechanismSection", "MechanismOverrides", "MarketSection",
           "Population", "Channel", "Traffic", "Segment", "ResolvedChannel", "Event",
           "Amount", "Auctions", "Rounds", "Ctrs",
           "TomlDocument", "read_toml", "parse_value", "apply_override", "set_path",
           "SETTABLE_DURING_RUN", "validated", "problems_from"]

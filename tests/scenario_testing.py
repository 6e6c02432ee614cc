"""What the scenario tests share: the one problem a bad scenario must give."""

from __future__ import annotations

import pytest

from bidscape import InputError, Scenario
from bidscape.errors import Problem


def one_problem(raw: dict) -> Problem:
    """The single problem ``raw`` is rejected with; it must name a fix."""
    with pytest.raises(InputError) as raised:
        Scenario.from_dict(raw)
    problems = raised.value.problems
    assert len(problems) == 1, raised.value.render()
    assert problems[0].fix, raised.value.render()
    return problems[0]

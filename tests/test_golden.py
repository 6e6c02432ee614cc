"""Golden outputs: the tables of a fixed set of scenarios are byte-identical to those recorded
in ``tests/golden/digests.json``, on one thread and on two.

A refactoring must leave every byte as it was. A deliberate change of outputs (a fix, a new
column) regenerates the digests with ``python -m tests.golden.cases`` and says why in its
commit message.
"""

from __future__ import annotations

import json

import numba
import pytest

from tests.golden.cases import DIGESTS, cases, play

RECORDED = json.loads(DIGESTS.read_text())


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    if request.param > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"numba allows {numba.config.NUMBA_NUM_THREADS} thread(s) here")
    before = numba.get_num_threads()
    numba.set_num_threads(request.param)
    yield request.param
    numba.set_num_threads(before)


def test_the_golden_set_is_complete(tmp_path):
    assert sorted(cases(tmp_path)) == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_outputs_are_byte_identical(name, threads, tmp_path):
    raw = cases(tmp_path)[name]
    assert play(name, raw, tmp_path) == RECORDED[name]

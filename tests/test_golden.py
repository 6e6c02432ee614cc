"""Golden outputs: the tables of a fixed set of scenarios are byte-identical to those recorded
in ``tests/golden/digests.json``, on one thread and on two.

A refactoring must leave every byte as it was. A deliberate change of outputs (a fix, a new
column) regenerates the digests with ``python -m tests.golden.cases`` and says why in its
commit message.
"""

from __future__ import annotations

import json

import pytest

from bidscape.engine import pipeline

from tests.golden.cases import DIGESTS, cases, play

RECORDED = json.loads(DIGESTS.read_text())


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, monkeypatch):
    # small chunks, so that the drawing thread runs ahead many times even in these small rounds
    monkeypatch.setattr(pipeline, "CHUNK", 1_000)
    return request.param


def test_the_golden_set_is_complete(tmp_path):
    assert sorted(cases(tmp_path)) == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_outputs_are_byte_identical(name, threads, tmp_path):
    raw = cases(tmp_path)[name]
    assert play(name, raw, tmp_path, threads) == RECORDED[name]

"""The two-thread pipeline (``bidscape.engine.pipeline``): every chunk drawn before it is cleared, in
order, whatever happens on either thread; usable again after a fork."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from bidscape.engine.pipeline import Pipeline


def record(pipeline: Pipeline, n: int, bidders: int = 2):
    drawn, cleared = [], []

    def draw(lo, count, who, population, values):
        who[:count * bidders] = np.arange(lo, lo + count).repeat(bidders)
        drawn.append((lo, count))

    def clear(lo, count, who, population, values):
        assert np.array_equal(who[:count * bidders], np.arange(lo, lo + count).repeat(bidders))  # its own draws
        cleared.append((lo, count))

    pipeline.run(n, bidders, draw, clear)
    return drawn, cleared


@pytest.mark.parametrize("n", [0, 1, 6, 7, 50])
def test_every_chunk_is_drawn_then_cleared_in_order(n):
    pipeline = Pipeline(chunk=7)
    drawn, cleared = record(pipeline, n)
    expected = [(lo, min(7, n - lo)) for lo in range(0, n, 7)]
    assert cleared == expected and sorted(drawn) == expected
    pipeline.close()


def test_a_failing_clear_waits_for_the_draw_ahead_and_raises():
    pipeline = Pipeline(chunk=3)
    finished = []

    def draw(lo, count, *buffers):
        finished.append(lo)

    def clear(lo, count, who, population, values):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pipeline.run(9, 1, draw, clear)
    assert finished == [0, 3]  # the chunk drawn ahead had finished before the error left run()
    pipeline.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_on_a_thread_of_its_own():
    pipeline = Pipeline(chunk=4)
    record(pipeline, 20)  # the parent's drawing thread exists now
    pid = os.fork()
    if pid == 0:  # the child: no threads survive a fork, so a stale pool would never run the draws
        signal.alarm(30)  # a hang ends the child (SIGALRM), and the test fails instead of hanging
        try:
            _, cleared = record(pipeline, 20)
            os._exit(0 if len(cleared) == 5 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pipeline.close()

"""Exact clearing on two threads: one draws the next chunk of auctions while the other clears this one.

Every random number is a hash (``bidscape.engine.rng``), so who takes part in an auction and
at what value does not depend on the market's state: the draws of chunk ``k + 1`` can be made
while chunk ``k`` is cleared. The clearing itself stays in arrival order on one thread, each
payment charged before the next auction, so outputs are byte-identical to one thread's
(tests/test_golden.py runs both). Drawing is about half of a round's work, so two threads
can approach 2x; more threads would have nothing left to overlap, so the pipeline uses two.

The kernels it runs release the GIL (``draws.draw_auctions``, ``kernel.clear_drawn``,
``positions.clear_positions_drawn``); a mechanism hands it two closures.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np

CHUNK = 8192  # auctions per chunk: ~1.5 MB of draws at 8 bidders, ~0.5 ms of work

Draw = Callable[[int, int, np.ndarray, np.ndarray, np.ndarray], None]  # (first, count, who, population, values)
Clear = Callable[[int, int, np.ndarray, np.ndarray, np.ndarray], None]  # (first, count, who, population, values)


class Pipeline:
    """A drawing thread, and the two sets of buffers it fills in turn."""

    def __init__(self, chunk: Optional[int] = None):
        self.chunk = chunk or CHUNK
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pid = 0
        self._buffers: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def _drawing_thread(self) -> ThreadPoolExecutor:
        """The pool of one thread, started on first use and again in a forked child (which has no threads)."""
        if self._pool is None or self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="bidscape-draws")
            self._pid = os.getpid()
        return self._pool

    def _pair(self, bidders: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        pair = self._buffers.get(bidders)
        if pair is None:
            size = self.chunk * bidders
            pair = self._buffers[bidders] = [(np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size))
                                             for _ in range(2)]
        return pair

    def run(self, n_auctions: int, bidders: int, draw: Draw, clear: Clear) -> None:
        """Clear auctions ``0 .. n_auctions - 1`` of a batch: ``draw`` a chunk ahead, ``clear`` in order."""
        if n_auctions <= 0:
            return
        pair = self._pair(bidders)
        starts = range(0, n_auctions, self.chunk)
        sizes = [min(self.chunk, n_auctions - lo) for lo in starts]
        draw(0, sizes[0], *pair[0])
        for k, lo in enumerate(starts):
            ahead = None
            if k + 1 < len(sizes):
                ahead = self._drawing_thread().submit(draw, starts[k + 1], sizes[k + 1], *pair[(k + 1) % 2])
            try:
                clear(lo, sizes[k], *pair[k % 2])
            finally:
                if ahead is not None:
                    ahead.result()  # the buffers are reused: never leave a draw running

    def beside(self, there: Callable[[], None], here: Callable[[], None]) -> None:
        """Run ``there`` on the drawing thread while ``here`` runs on this one (two halves of one job,
        such as the counterfactual replay split by agents); return when both are done."""
        future = self._drawing_thread().submit(there)
        try:
            here()
        finally:
            future.result()

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.shutdown(wait=True)
        self._pool = None

"""A round's full-information feedback: what each multiplier of a learner's grid would have won.

For the populations whose strategy has a grid (``Strategy.counterfactual_grid``) and whose
channels all run a mechanism declaring ``capabilities.replayable``, every batch the kernel
clears is replayed (``bidscape.engine.counterfactual``) to price each grid bid against the
other bidders of the same auction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from bidscape.engine import counterfactual
from bidscape.engine.draws import SCAN_DEDUP_MAX
from bidscape.mechanisms import MECHANISMS, Outcomes

if TYPE_CHECKING:
    from bidscape.loop.simulation import ChannelPlay, Simulation


@dataclass
class Counterfactuals:
    """A round's full-information feedback for the populations whose strategy has a grid.

    A population gets counterfactuals only when every channel it bids in is a single-item
    auction whose price does not depend on the third bid (``bidscape.engine.counterfactual``).
    """

    grid_of: np.ndarray  # int64[P]: row of ``grids`` per population, -1 = none
    row_base: np.ndarray  # int64[P]: agent a of population p is row a - row_base[p]
    rows: dict[int, slice]  # population -> its rows
    arms: np.ndarray  # int64[G]
    grids: np.ndarray  # float64[G, K]
    peaks: np.ndarray  # float64[G]: each grid's largest multiplier (a bid that loses with it loses with all)
    utility: np.ndarray  # float64[rows, K + 1]: utility per arm, then auctions taken part in
    # (per_agent int64[P], first_row int64[P]): rows per agent (S for learners with one arm set per
    # segment, ``Strategy.uses_segments``) and each population's first row; None when all have one
    stride: Optional[tuple[np.ndarray, np.ndarray]] = None
    split: int = 0  # with two threads, one replays the learners below this agent, the other the rest
    marks: Optional[np.ndarray] = None  # the second thread's dedup marks (more than SCAN_DEDUP_MAX bidders)

    @classmethod
    def for_round(cls, sim: "Simulation", previous: Optional["Counterfactuals"] = None) -> Optional["Counterfactuals"]:
        """This round's counterfactuals, or None; ``previous`` (last round's) lends its utility array when
        the shape is unchanged, zeroed: a fresh one per round costs a page fault per 4 KB inside the replay
        (feedback arrays are views of this round's state, as ``RoundFeedback`` says)."""
        wanted = {p: g for p, s in enumerate(sim.strategies) if (g := s.counterfactual_grid()) is not None}
        if not wanted:
            return None
        for channel in sim.channels():
            if not MECHANISMS.get(channel.mechanism.type).capabilities.replayable:
                for p in channel.populations:
                    wanted.pop(p, None)
        if not wanted:
            return None
        state = sim.state
        width = max(len(g) for g in wanted.values())
        grid_of = np.full(len(sim.strategies), -1, np.int64)
        row_base = np.zeros(len(sim.strategies), np.int64)
        grids = np.zeros((len(wanted), width))
        arms = np.zeros(len(wanted), np.int64)
        rows: dict[int, slice] = {}
        per_agent = np.ones(len(sim.strategies), np.int64)
        first_row = np.zeros(len(sim.strategies), np.int64)
        next_row = 0
        for g, (p, grid) in enumerate(sorted(wanted.items())):
            part = state.population_slice(p)
            if p in state.segment_users:
                per_agent[p] = state.segment_multiplier.shape[1]
            grid_of[p] = g
            grids[g, :len(grid)] = grid
            arms[g] = len(grid)
            row_base[p] = part.start - next_row
            first_row[p] = next_row
            size = (part.stop - part.start) * int(per_agent[p])
            rows[p] = slice(next_row, next_row + size)
            next_row += size
        stride = (per_agent, first_row) if np.any(per_agent > 1) else None
        shape = (next_row, width + 1)
        if previous is not None and previous.utility.shape == shape:
            utility = previous.utility
            utility.fill(0.0)
        else:
            utility = np.zeros(shape)
        return cls(grid_of, row_base, rows, arms, grids, grids.max(axis=1), utility, stride,
                   _middle_learner(sim, wanted))

    def replay(self, play: "ChannelPlay", out: Outcomes, first: int, n: int) -> None:
        if not play.mechanism.capabilities.replayable or not np.any(self.grid_of[play.market.ranges[:, 2]] >= 0):
            return
        m = play.market
        rule = play.mechanism.rule(play.settings)
        common = (out.winner[:n, 0], out.bid[:n, 0], out.next_bid[:n, 0], self.row_base, self.grid_of, self.grids,
                  self.arms, self.peaks, self.utility, m.modifiers.replayed())
        bidders = play.channel.bidders_per_auction
        if bidders == "all":
            counterfactual.counterfactual_all(rule, play.mechanism.all_pay, play.key, first, n, m.ranges,
                                              m.bid_state, m.value_tables, *common)
            return

        def agents(lo: int, hi: int, marked: np.ndarray) -> None:
            counterfactual.counterfactual_sampled(rule, play.mechanism.all_pay, play.key, first, n, bidders,
                                                  m.ranges, m.bid_state, m.value_tables, marked, *common, m.context,
                                                  self.stride, lo, hi)

        end = m.bid_state.shape[0]
        if m.pipeline is None:
            agents(0, end, m.marked)
        else:  # two threads, each replaying half of the learners (draws above SCAN_DEDUP_MAX bidders mark agents)
            marked = m.marked
            if bidders > SCAN_DEDUP_MAX:  # the draws mark agents there: the second thread needs its own
                if self.marks is None or self.marks.shape != m.marked.shape:
                    self.marks = np.zeros_like(m.marked)
                marked = self.marks
            m.pipeline.beside(lambda: agents(self.split, end, marked), lambda: agents(0, self.split, m.marked))

    def of(self, p: int) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        if p not in self.rows:
            return None, None
        g = self.grid_of[p]
        return self.utility[self.rows[p], :self.arms[g]], self.utility[self.rows[p], -1]


def _middle_learner(sim: "Simulation", populations) -> int:
    """The agent with half of the learning populations' agents below it."""
    spans = sorted((sim.state.population_slice(p).start, sim.state.population_slice(p).stop) for p in populations)
    half = sum(stop - start for start, stop in spans) // 2
    for start, stop in spans:
        if half < stop - start:
            return start + half
        half -= stop - start
    return spans[-1][1]

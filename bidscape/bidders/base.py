"""How strategies meet the engine.

A strategy controls one population. Between rounds it sets each agent's bid multiplier
(``decide``), and after the round it learns from per-agent aggregates (``observe``).
Within a round the kernel bids ``min(multiplier * value, remaining_budget)`` for every
agent, auction by auction, so strategies never run per auction and never per agent in
Python: they work on whole arrays.

A new strategy is one module with a ``Strategy`` subclass (its parameters a pydantic
model in ``Params``) plus one line in ``bidscape/bidders/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from bidscape.engine.modifiers import Modifier


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class PopulationView:
    """Array views of one population's agents (slices of the market state, no copies)."""

    name: str
    rounds: int  # rounds in the run
    budget: np.ndarray  # per run; inf when unlimited
    remaining_budget: np.ndarray
    value_scale: np.ndarray
    multiplier: np.ndarray  # written by ``decide``
    first_agent: int = 0  # global index of the population's first agent
    channel_names: tuple[str, ...] = ("main",)
    # The per-auction bid modifiers (``bidscape.engine.modifiers``) a strategy declares in
    # ``Strategy.modifiers``, None unless some population's strategy does:
    # Modifier.PARTICIPATION, written each round: each agent takes part in each auction it is
    # drawn for with this probability (throttling).
    participation: Optional[np.ndarray] = None
    # Modifier.CHANNEL_CAPS: per channel, what each agent may still spend there (inf = no cap).
    channel_caps: Optional[tuple[np.ndarray, ...]] = None
    # Modifier.GROUPS, set in ``__init__``: agents with the same group >= 0 never bid against
    # each other (only the highest bid of a group in an auction counts).
    group: Optional[np.ndarray] = None
    # For strategies that declare ``uses_segments`` in a market with ``[traffic]``: float64[n, S],
    # each agent's bid multiplier per segment (on top of ``multiplier``; 1 = as the value), in the
    # order of ``segment_names``; else None.
    segment_multiplier: Optional[np.ndarray] = None
    segment_names: tuple[str, ...] = ()
    # each segment's share of traffic at the start of the run, 0 where the population does not target it
    segment_shares: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        return self.budget.shape[0]


@dataclass(frozen=True)
class RoundFeedback:
    """What each agent of the population got in one round.

    Every array is a read-only view of the engine's state for this round, reused by the next one:
    copy what a strategy keeps past ``observe``.
    """

    round: int
    spend: np.ndarray
    wins: np.ndarray
    value: np.ndarray
    remaining_budget: np.ndarray
    clicks: Optional[np.ndarray] = None
    # float64[C, n] per channel: spend, wins and value of each agent there this round
    channel_spend: Optional[np.ndarray] = None
    channel_wins: Optional[np.ndarray] = None
    channel_value: Optional[np.ndarray] = None
    # For strategies with a ``counterfactual_grid``: float64[n, K], each agent's utility this
    # round had it bid ``grid[k] x value`` in every auction it took part in, the others'
    # bids held fixed (full-information feedback); None otherwise.
    counterfactual: Optional[np.ndarray] = None
    # auctions each agent took part in this round (counted with counterfactuals), else None
    participations: Optional[np.ndarray] = None
    # float64[S, n] per segment (strategies that declare ``uses_segments``, with ``[traffic]``):
    # spend, wins and value of each agent there this round, summed over channels; else None.
    # With ``contexts = "segment"`` learners, ``counterfactual`` and ``participations`` have a row
    # per agent and segment (agent-major: row ``i * S + s``).
    segment_spend: Optional[np.ndarray] = None
    segment_wins: Optional[np.ndarray] = None
    segment_value: Optional[np.ndarray] = None


class Strategy:
    """Base class of strategies: ``Params`` validates the scenario's ``params`` table."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    needs_budget: ClassVar[bool] = False
    # The per-auction bid modifiers the strategy writes (``Modifier``): the market allocates their
    # arrays (``PopulationView``) and the kernels apply them, only when some strategy declares them.
    modifiers: ClassVar[frozenset[Modifier]] = frozenset()
    # Extra Arrow tables this strategy writes into the run folder with ``emit`` (name -> schema).
    # Strategies that share a table name must declare the same schema.
    tables: ClassVar[dict[str, pa.Schema]] = {}
    experimental: ClassVar[bool] = False  # needs ``[run] experimental = true``

    @classmethod
    def scenario_problems(cls, scenario: Any, index: int, where: str) -> list:
        """Problems (``bidscape.errors.Problem``) with using this strategy for population ``index``."""
        return []

    @classmethod
    def uses_segments(cls, params: BaseModel) -> bool:
        """Whether, with these parameters, the strategy bids per segment of a market with ``[traffic]``
        (writes ``agents.segment_multiplier``) and learns from per-segment feedback."""
        return False

    @classmethod
    def bytes_per_agent(cls, params: BaseModel, channels: int) -> int:
        """Memory this strategy keeps per agent, for the size estimate (``bidscape.sizing``): a few
        float64 arrays by default (pacing keeps three)."""
        return 64

    @classmethod
    def change_problems(cls, old: BaseModel, new: BaseModel, where: str) -> list:
        """Problems with an event changing this strategy's parameters from ``old`` to ``new`` mid-run.

        Checked when the scenario is validated, so ``set_params`` never meets them in a run.
        """
        return []

    def __init__(self, params: BaseModel, agents: PopulationView, rng: np.random.Generator):
        self.params = params
        self.agents = agents
        self.rng = rng
        self._emit: Optional[Callable[[str, dict[str, Any]], None]] = None

    def counterfactual_grid(self) -> Optional[np.ndarray]:
        """Multipliers whose counterfactual utilities ``observe`` should get, or None."""
        return None

    def regret(self) -> Optional[np.ndarray]:
        """Each agent's regret so far against its best fixed multiplier in hindsight, or None."""
        return None

    def emit(self, table: str, columns: dict[str, Any]) -> None:
        """Append rows to one of this strategy's ``tables`` (dropped when the run is not recorded)."""
        if table not in self.tables:
            raise KeyError(f"strategy '{self.name}' did not declare a table '{table}' in ``tables``")
        if self._emit is not None:
            self._emit(table, columns)

    def close(self) -> None:
        """The run is over (or failed): release connections, flush caches."""

    def set_params(self, params: BaseModel) -> None:
        """New parameters from a scheduled event; learned state is kept."""
        self.params = params

    def decide(self, round_index: int) -> None:
        """Write ``self.agents.multiplier`` for the coming round."""
        raise NotImplementedError

    def observe(self, feedback: RoundFeedback) -> None:
        """Learn from the round just played (do not change multipliers here)."""

"""Streams an auction run's outcomes to its folder (the contract in DESIGN.md, section 3).

The tables and their columns are defined here; the folder's life (lock, manifest states,
replacing an old run, reading after a kill) is ``folder.py``. The Arrow files are IPC
(Feather v2), zstd-compressed, written one record batch at a time, so memory stays flat in
the number of rounds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from bidscape.outputs.folder import RunFolder

OUTPUT_FILES = ("manifest.json", "market.arrow", "populations.arrow", "agents.arrow", "auctions.arrow")

_NAME = pa.dictionary(pa.int16(), pa.string())  # population and channel names, stored once per batch

MARKET_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("channel", _NAME),
    ("auctions", pa.int64()),
    ("sold", pa.int64()),  # filled slot impressions (single item: auctions sold)
    ("revenue", pa.float64()),
    ("welfare", pa.float64()),
    ("max_welfare", pa.float64()),  # welfare of the efficient allocations of the same auctions (values, bids aside)
    ("mean_price", pa.float64()),
    ("reserve", pa.float64()),
    ("soft_floor", pa.float64()),
    ("mechanism", pa.string()),
    ("bidders_per_auction", pa.int64()),
    ("clicks", pa.int64()),  # position auctions; null for single-item auctions
    ("slot_impressions", pa.list_(pa.int64())),  # per slot, top slot first
    ("slot_clicks", pa.list_(pa.int64())),
    ("slot_revenue", pa.list_(pa.float64())),
])

POPULATIONS_SCHEMA = pa.schema([  # one row per round, channel and population, whatever record_agents says
    ("round", pa.int32()),
    ("channel", _NAME),
    ("population", _NAME),
    ("agents", pa.int64()),
    ("participations", pa.float64()),  # expected auctions entered: auctions x bidders x agents / eligible agents
    ("spend", pa.float64()),
    ("wins", pa.float64()),
    ("value", pa.float64()),
    ("utility", pa.float64()),
    ("clicks", pa.int64()),  # null for single-item auctions
    # the population as a whole, after the round (the same in every channel's row):
    ("budget", pa.float64()),  # total budget; null when unlimited
    ("budget_remaining", pa.float64()),  # total; null when unlimited
    ("multiplier", pa.float64()),  # mean
    ("regret", pa.float64()),  # mean regret so far; null when the strategy records none
    ("liquid_welfare", pa.float64()),  # so far: sum over agents of min(budget, value won so far)
])

AGENT_BATCH_ROWS = 1 << 18  # agents.arrow record batches: readers find a round's rows a batch at a time

AGENT_COLUMNS = ("spend", "wins", "value", "utility", "budget_remaining", "multiplier", "clicks", "regret")


def agents_schema() -> pa.Schema:
    return pa.schema(
        [("round", pa.int32()), ("agent", pa.int64()), ("population", _NAME), ("channel", _NAME)]
        + [(c, pa.int64() if c == "clicks" else pa.float64()) for c in AGENT_COLUMNS]
        + [("agents", pa.int64())]
    )


AUCTIONS_SCHEMA = pa.schema([
    ("round", pa.int32()),
    ("channel", _NAME),
    ("auction", pa.int64()),
    ("slot", pa.int16()),  # one row per slot of a position auction; 0 for single-item auctions
    ("winner", pa.int64()),  # -1 when unsold or the slot is empty
    ("price", pa.float64()),  # what the winner paid in this auction
    ("top_bid", pa.float64()),  # single item: the highest bid; position: the slot winner's bid
    ("second_bid", pa.float64()),  # single item: the second bid; position: the next-ranked bid
    ("winner_value", pa.float64()),  # null when unsold or the slot is empty
    ("clicks", pa.int64()),  # position auctions; null for single-item auctions
])


class Recorder(RunFolder):
    """An auction run's folder: market, agents and auctions tables."""

    def __init__(self, out: Path, scenario: dict[str, Any], population_names: list[str],
                 version: str, overwrite: bool = False, channel_names: tuple[str, ...] = ("main",),
                 extra_tables: Optional[dict[str, pa.Schema]] = None, *, resume: bool = False):
        # names first: once the folder is claimed, nothing may fail outside RunFolder's own guard
        self.population_names = population_names
        self._population_dictionary = pa.array(population_names, pa.string())
        self._channel_dictionary = pa.array(list(channel_names), pa.string())
        self._codes = {"population": {name: code for code, name in enumerate(population_names)},
                       "channel": {name: code for code, name in enumerate(channel_names)}}
        self._dictionaries = {"population": self._population_dictionary, "channel": self._channel_dictionary}
        super().__init__(out, {"market": MARKET_SCHEMA, "populations": POPULATIONS_SCHEMA, "agents": agents_schema(),
                               "auctions": AUCTIONS_SCHEMA, **(extra_tables or {})}, scenario, version, overwrite,
                         resume=resume)

    def _names(self, column: str, names) -> pa.DictionaryArray:
        """Population or channel names, encoded against the run's one dictionary for that column (an
        Arrow file holds one dictionary per column, so every batch must share it)."""
        codes = pa.array([self._codes[column][name] for name in names], pa.int16())
        return pa.DictionaryArray.from_arrays(codes, self._dictionaries[column])

    def write_market(self, columns: dict[str, Any]) -> None:
        columns = {**columns, "channel": self._names("channel", columns["channel"])}
        self.write_batch("market", pa.record_batch(columns, schema=MARKET_SCHEMA))

    def write_agents(self, columns: dict[str, Any], population_codes, channel_codes) -> None:
        batch = self._named_batch("agents", columns, population_codes, channel_codes, nullable=("regret", "clicks"))
        for first in range(0, max(batch.num_rows, 1), AGENT_BATCH_ROWS):
            self.write_batch("agents", batch.slice(first, AGENT_BATCH_ROWS))

    def write_populations(self, columns: dict[str, Any], population_codes, channel_codes) -> None:
        self.write_batch("populations", self._named_batch("populations", columns, population_codes, channel_codes,
                                                          nullable=("budget", "budget_remaining", "regret", "clicks")))

    def _named_batch(self, table: str, columns: dict[str, Any], population_codes, channel_codes,
                     nullable: tuple[str, ...]) -> pa.RecordBatch:
        """A batch with population and channel names from their codes; NaN in ``nullable`` columns is null."""
        schema = self._schemas[table]
        named = {k: _conform(v, schema.field(k).type, k in nullable) for k, v in columns.items()}
        named["population"] = pa.DictionaryArray.from_arrays(pa.array(population_codes, pa.int16()),
                                                             self._population_dictionary)
        named["channel"] = pa.DictionaryArray.from_arrays(pa.array(channel_codes, pa.int16()),
                                                          self._channel_dictionary)
        return pa.record_batch(named, schema=self._schemas[table])

    def write_table(self, table: str, columns: dict[str, Any]) -> None:
        """Rows of a strategy's own table (``Strategy.tables``); population and channel names as strings."""
        named = {k: self._names(k, v) if k in self._codes and not isinstance(v, pa.Array) else v
                 for k, v in columns.items()}
        self.write_batch(table, pa.record_batch(named, schema=self._schemas[table]))

    def write_auctions(self, columns: dict[str, Any]) -> None:
        channel = pa.DictionaryArray.from_arrays(pa.array(columns["channel"], pa.int16()), self._channel_dictionary)
        unsold = np.asarray(columns["winner"]) < 0
        conformed = {k: _conform(v, AUCTIONS_SCHEMA.field(k).type, False) for k, v in columns.items() if k != "channel"}
        conformed["winner_value"] = pa.array(columns["winner_value"], pa.float64(), mask=unsold)
        self.write_batch("auctions", pa.record_batch({**conformed, "channel": channel}, schema=AUCTIONS_SCHEMA))


def _conform(column: Any, kind: pa.DataType, nullable: bool) -> pa.Array:
    """``column`` as an Arrow array of the file's type for it (NaN as null where ``nullable``)."""
    if isinstance(column, pa.Array):
        return column if column.type == kind else column.cast(kind)
    return pa.array(column, kind, from_pandas=nullable)


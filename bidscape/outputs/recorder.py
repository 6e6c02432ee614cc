"""Streams an auction run's outcomes to its folder (the contract in DESIGN.md, section 3).

The tables and their columns are defined in ``columns.py``; the folder's life (lock, manifest
states, replacing an old run, reading after a kill) is ``folder.py``. The Arrow files are IPC
(Feather v2), zstd-compressed, written one record batch at a time, so memory stays flat in
the number of rounds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from bidscape.outputs.columns import (AGENT_BATCH_ROWS, AUCTIONS_SCHEMA, MARKET_SCHEMA, NULLABLE, POPULATIONS_SCHEMA,
                                      agents_schema)
from bidscape.outputs.folder import RunFolder


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
        batch = self._named_batch("agents", columns, population_codes, channel_codes, nullable=NULLABLE["agents"])
        for first in range(0, max(batch.num_rows, 1), AGENT_BATCH_ROWS):
            self.write_batch("agents", batch.slice(first, AGENT_BATCH_ROWS))

    def write_populations(self, columns: dict[str, Any], population_codes, channel_codes) -> None:
        self.write_batch("populations", self._named_batch("populations", columns, population_codes, channel_codes,
                                                          nullable=NULLABLE["populations"]))

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
        schema = self._schemas["auctions"]  # with a segment column in markets with traffic
        conformed = {k: _conform(v, schema.field(k).type, False) for k, v in columns.items() if k != "channel"}
        conformed["winner_value"] = pa.array(columns["winner_value"], pa.float64(), mask=unsold)
        self.write_batch("auctions", pa.record_batch({**conformed, "channel": channel}, schema=schema))


def _conform(column: Any, kind: pa.DataType, nullable: bool) -> pa.Array:
    """``column`` as an Arrow array of the file's type for it (NaN as null where ``nullable``)."""
    if isinstance(column, pa.Array):
        return column if column.type == kind else column.cast(kind)
    return pa.array(column, kind, from_pandas=nullable)

